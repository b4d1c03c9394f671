#pragma once
#include <cmath>

namespace ctbmd {
template <typename A, typename B>
bool sameGrid(const A* a, const B* b, double tol_mm) {
  const auto sa = a->GetLargestPossibleRegion().GetSize();
  const auto sb = b->GetLargestPossibleRegion().GetSize();
  for (unsigned i = 0; i < 3; ++i) {
    if (sa[i] != sb[i]) return false;
    if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > tol_mm) return false;
    if (std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > tol_mm) return false;
    for (unsigned j = 0; j < 3; ++j)
      if (std::abs(a->GetDirection()[i][j] - b->GetDirection()[i][j]) > 1e-5) return false;
  }
  return true;
}
}  // namespace ctbmd
