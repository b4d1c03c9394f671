// Naming QC along the column (internal/naming.hpp).
#include "internal/naming.hpp"

#include <cstdio>

namespace ctbmd::naming {

namespace {
bool named(const Segment& s) { return s.label >= 8 && s.label != 26; }
}  // namespace

std::vector<SegmentFlag> checkLengths(const std::vector<Segment>& segs, CountedFrom from, const LengthParams& p) {
  std::vector<SegmentFlag> out;
  const int n = static_cast<int>(segs.size());
  auto complete = [&](int j) { return j >= 0 && j < n && !segs[j].partial && !segs[j].sacral; };
  for (int i = 0; i < n; ++i) {
    if (!complete(i) || !named(segs[i])) continue;
    double sum = 0;
    int cnt = 0;
    for (int j : {i - 1, i + 1})
      if (complete(j)) {
        sum += segs[j].length_mm;
        ++cnt;
      }
    if (cnt == 0) continue;
    const double pred = sum / cnt;
    if (segs[i].length_mm < p.max_ratio * pred) continue;
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "body %.0f mm long against %.0f mm predicted by its neighbours (%.2f x, limit %.2f): a "
                  "disc may have been missed inside it",
                  segs[i].length_mm, pred, segs[i].length_mm / pred, p.max_ratio);
    out.push_back({i, "suspected_merge", buf});
    if (from == CountedFrom::Both || from == CountedFrom::None) continue;
    const int step = from == CountedFrom::Above ? 1 : -1;  // the far side of the body from the anchor
    for (int j = i + step; j >= 0 && j < n; j += step)
      if (named(segs[j]))
        out.push_back({j, "named_across_merge",
                       std::string("named by counting ") + (step > 0 ? "down" : "up") +
                           " across a suspected merged body: the name may be one level off"});
  }
  return out;
}

}  // namespace ctbmd::naming
