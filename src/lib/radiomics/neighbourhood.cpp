// IBSI 1 sections 3.10 (neighbourhood grey tone difference matrix) and 3.11 (neighbouring grey
// level dependence matrix), Chebyshev distance 1, neighbours counted only inside the ROI;
// 2D per slice (features averaged over slices), 2.5D (slices merged), 3D.
#include <algorithm>
#include <cmath>
#include <limits>

#include "radiomics/common.hpp"

namespace ctbmd::radiomics {

using detail::CountMatrix;
using detail::Offset;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Ngtdm {
  std::vector<double> s, n;  // per level: sum |i - neighbourhood mean|, voxel count
  explicit Ngtdm(int levels) : s(std::size_t(levels), 0.0), n(std::size_t(levels), 0.0) {}
  void add(const Ngtdm& o) {
    for (std::size_t k = 0; k < s.size(); ++k) {
      s[k] += o.s[k];
      n[k] += o.n[k];
    }
  }
};

Ngtdm ngtdm(const LevelImage& img, const std::vector<Offset>& nb, int z0, int z1) {
  Ngtdm m(img.levels);
  const Grid& g = img.grid;
  for (int z = z0; z < z1; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const int lv = img.level[g.index(x, y, z)];
        if (lv <= 0) continue;
        double sum = 0;
        int count = 0;
        for (const auto& o : nb) {
          const int a = x + o[0], b = y + o[1], c = z + o[2];
          if (!g.inside(a, b, c)) continue;
          const int l = img.level[g.index(a, b, c)];
          if (l <= 0) continue;
          sum += l;
          ++count;
        }
        if (count == 0) continue;  // no neighbour in the ROI: not part of the matrix
        m.s[std::size_t(lv - 1)] += std::fabs(lv - sum / count);
        m.n[std::size_t(lv - 1)] += 1;
      }
  return m;
}

// Coarseness, contrast, busyness, complexity, strength (IBSI 3.10.1-3.10.5).
std::vector<double> ngtdmFeatures(const Ngtdm& m) {
  double nvc = 0;
  for (double x : m.n) nvc += x;
  if (nvc <= 0) return std::vector<double>(5, kNaN);
  const std::size_t ng = m.n.size();
  std::vector<double> p(ng);
  int ngp = 0;
  double ssum = 0, ps = 0;
  for (std::size_t k = 0; k < ng; ++k) {
    p[k] = m.n[k] / nvc;
    if (p[k] > 0) ++ngp;
    ssum += m.s[k];
    ps += p[k] * m.s[k];
  }
  double c2 = 0, bden = 0, complexity = 0, strength_num = 0;
  for (std::size_t a = 0; a < ng; ++a) {
    if (p[a] == 0) continue;
    for (std::size_t b = 0; b < ng; ++b) {
      if (p[b] == 0) continue;
      const double i = double(a + 1), j = double(b + 1);
      c2 += p[a] * p[b] * (i - j) * (i - j);
      bden += std::fabs(i * p[a] - j * p[b]);
      complexity += std::fabs(i - j) * (p[a] * m.s[a] + p[b] * m.s[b]) / (p[a] + p[b]);
      strength_num += (p[a] + p[b]) * (i - j) * (i - j);
    }
  }
  const double coarseness = ps > 0 ? 1.0 / ps : kNaN;
  const double contrast = ngp > 1 ? c2 / (double(ngp) * (ngp - 1)) * ssum / nvc : 0.0;
  const double busyness = bden > 0 ? ps / bden : 0.0;
  const double strength = ssum > 0 ? strength_num / ssum : 0.0;
  return {coarseness, contrast, busyness, complexity / nvc, strength};
}

// Dependence counts: column j - 1 holds voxels with j - 1 same-level neighbours in the ROI.
CountMatrix ngldm(const LevelImage& img, const std::vector<Offset>& nb, int z0, int z1) {
  CountMatrix m(img.levels, int(nb.size()) + 1);
  const Grid& g = img.grid;
  for (int z = z0; z < z1; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const int lv = img.level[g.index(x, y, z)];
        if (lv <= 0) continue;
        int k = 0;
        for (const auto& o : nb) {
          const int a = x + o[0], b = y + o[1], c = z + o[2];
          if (g.inside(a, b, c) && img.level[g.index(a, b, c)] == lv) ++k;
        }
        m.at(lv - 1, k) += 1;
      }
  return m;
}

double roiCount(const LevelImage& img, int z0, int z1) {
  double n = 0;
  const std::size_t plane = std::size_t(img.grid.nx) * std::size_t(img.grid.ny);
  for (std::size_t k = std::size_t(z0) * plane; k < std::size_t(z1) * plane; ++k) n += img.level[k] > 0;
  return n;
}
}  // namespace

FeatureList ngtdmFeatures(const LevelImage& img) {
  FeatureList out;
  if (img.levels <= 0) return out;
  static const std::vector<std::string> names{"coarseness", "contrast", "busyness", "complexity", "strength"};
  const auto nb2 = detail::neighbourhood(false), nb3 = detail::neighbourhood(true);
  detail::Averager avg;
  Ngtdm merged(img.levels);
  for (int z = 0; z < img.grid.nz; ++z) {
    const Ngtdm m = ngtdm(img, nb2, z, z + 1);
    double nvc = 0;
    for (double x : m.n) nvc += x;
    if (nvc == 0) continue;
    avg.add(ngtdmFeatures(m));
    merged.add(m);
  }
  detail::appendNamed(out, "ngt_", names, "_2D", avg.mean(names.size()));
  detail::appendNamed(out, "ngt_", names, "_2_5D", ngtdmFeatures(merged));
  detail::appendNamed(out, "ngt_", names, "_3D", ngtdmFeatures(ngtdm(img, nb3, 0, img.grid.nz)));
  return out;
}

FeatureList ngldmFeatures(const LevelImage& img) {
  FeatureList out;
  if (img.levels <= 0) return out;
  static const std::vector<std::string> names{
      "lde",       "hde",  "lgce",      "hgce",    "ldlge",  "ldhge",  "hdlge",   "hdhge",    "glnu",
      "glnu_norm", "dcnu", "dcnu_norm", "dc_perc", "gl_var", "dc_var", "dc_entr", "dc_energy"};
  const auto nb2 = detail::neighbourhood(false), nb3 = detail::neighbourhood(true);
  detail::Averager avg;
  CountMatrix merged;
  double nv_all = 0;
  for (int z = 0; z < img.grid.nz; ++z) {
    const double nv = roiCount(img, z, z + 1);
    if (nv == 0) continue;
    const CountMatrix m = ngldm(img, nb2, z, z + 1);
    avg.add(detail::zoneLikeFeatures(m, nv, true));
    merged.add(m);
    nv_all += nv;
  }
  detail::appendNamed(out, "ngl_", names, "_2D", avg.mean(names.size()));
  detail::appendNamed(
      out, "ngl_", names, "_2_5D",
      nv_all > 0 ? detail::zoneLikeFeatures(merged, nv_all, true) : std::vector<double>(names.size(), kNaN));
  detail::appendNamed(
      out, "ngl_", names, "_3D",
      detail::zoneLikeFeatures(ngldm(img, nb3, 0, img.grid.nz), roiCount(img, 0, img.grid.nz), true));
  return out;
}

}  // namespace ctbmd::radiomics
