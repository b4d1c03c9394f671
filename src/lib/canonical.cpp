#include "ctbmd/canonical.hpp"

#include <cmath>

#include "ctbmd/image.hpp"

namespace ctbmd {

AxisMap canonicalAxisMap(const itk::ImageBase<3>* img) {
  AxisMap m;
  const auto& d = img->GetDirection();
  bool used[3] = {false, false, false};
  for (int j = 0; j < 3; ++j) {  // original axis j
    int best = 0;
    for (int i = 1; i < 3; ++i)
      if (std::abs(d[i][j]) > std::abs(d[best][j])) best = i;
    if (used[best] || std::abs(d[best][j]) < 0.5)
      throw InputError(
          "image axes are too oblique to tell which one is superior-inferior "
          "(direction matrix far from any axis-aligned orientation); resample it "
          "to an axial orientation first");
    used[best] = true;
    m.perm[best] = j;
    m.flip[best] = d[best][j] < 0;
  }
  auto sz = img->GetLargestPossibleRegion().GetSize();
  for (int a = 0; a < 3; ++a) m.orig_size[a] = sz[a];
  m.orig_origin = img->GetOrigin();
  m.orig_spacing = img->GetSpacing();
  m.orig_direction = img->GetDirection();
  return m;
}

const CanonicalCache& canonicalOf(const Scan& scan) {
  auto& c = scan.canonical_cache;
  if (!c || c->source != scan.image.GetPointer()) {
    auto fresh = std::make_shared<CanonicalCache>();
    fresh->source = scan.image.GetPointer();
    fresh->map = canonicalAxisMap(scan.image.GetPointer());
    fresh->image = toCanonicalView<int16_t>(scan.image.GetPointer(), fresh->map);
    c = fresh;
  }
  return *c;
}

AxisMap axisMapForCode(const itk::ImageBase<3>* canonical, const std::string& code) {
  // Target direction: columns from the code. Target axis j points along world axis w(j)
  // with sign s(j). Canonical axis a == world axis a; so perm[a] = j with w(j) == a.
  auto dir = directionFromCode(code);
  AxisMap m;
  auto csz = canonical->GetLargestPossibleRegion().GetSize();
  for (int j = 0; j < 3; ++j)
    for (int a = 0; a < 3; ++a)
      if (dir[a][j] != 0) {
        m.perm[a] = j;
        m.flip[a] = dir[a][j] < 0;
        m.orig_size[j] = csz[a];
        m.orig_spacing[j] = canonical->GetSpacing()[a];
      }
  m.orig_direction = dir;
  // Origin: world position of the target index (0,0,0) = canonical index with, per axis a,
  // c[a] = flip ? n-1 : 0.
  itk::Index<3> ci;
  for (int a = 0; a < 3; ++a) ci[a] = m.flip[a] ? static_cast<long>(csz[a]) - 1 : 0;
  canonical->TransformIndexToPhysicalPoint(ci, m.orig_origin);
  return m;
}

}  // namespace ctbmd
