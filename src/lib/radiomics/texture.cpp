// IBSI 1 sections 3.6 (grey level co-occurrence matrix) and 3.7 (grey level run length
// matrix), each in the six aggregation variants: 2D averaged / slice-merged, 2.5D
// direction-merged / merged, 3D averaged / merged. One pass per slice and direction builds the
// matrices; the variants are sums of them.
#include <algorithm>
#include <cmath>
#include <limits>

#include "radiomics/common.hpp"

namespace ctbmd::radiomics {

using detail::CountMatrix;
using detail::Offset;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::string>& glcmNames() {
  static const std::vector<std::string> n{
      "joint_max",    "joint_avg",         "joint_var",     "joint_entr", "diff_avg",
      "diff_var",     "diff_entr",         "sum_avg",       "sum_var",    "sum_entr",
      "energy",       "contrast",          "dissimilarity", "inv_diff",   "inv_diff_norm",
      "inv_diff_mom", "inv_diff_mom_norm", "inv_var",       "corr",       "auto_corr",
      "clust_tend",   "clust_shade",       "clust_prom",    "info_corr1", "info_corr2"};
  return n;
}

const std::vector<std::string>& glrlmNames() {
  static const std::vector<std::string> n{"sre",    "lre",    "lgre",   "hgre",      "srlge", "srhge",
                                          "lrlge",  "lrhge",  "glnu",   "glnu_norm", "rlnu",  "rlnu_norm",
                                          "r_perc", "gl_var", "rl_var", "rl_entr"};
  return n;
}

// The 25 co-occurrence features of a symmetric count matrix (IBSI 3.6.1-3.6.25).
std::vector<double> glcmFromCounts(const CountMatrix& m) {
  const double total = m.total();
  if (total <= 0) return {};
  const int ng = m.rows;
  std::vector<double> pi(std::size_t(ng), 0.0), pj(std::size_t(ng), 0.0);
  std::vector<double> pminus(std::size_t(ng), 0.0), pplus(std::size_t(2 * ng + 1), 0.0);
  double jmax = 0, javg = 0, jent = 0, energy = 0, contrast = 0, dissim = 0, autoc = 0;
  for (int a = 0; a < ng; ++a)
    for (int b = 0; b < ng; ++b) {
      const double p = m.at(a, b) / total;
      if (p == 0) continue;
      const double i = a + 1, j = b + 1;
      pi[std::size_t(a)] += p;
      pj[std::size_t(b)] += p;
      pminus[std::size_t(std::abs(a - b))] += p;
      pplus[std::size_t(a + b + 2)] += p;
      jmax = std::max(jmax, p);
      javg += i * p;
      jent -= p * std::log2(p);
      energy += p * p;
      contrast += (i - j) * (i - j) * p;
      dissim += std::fabs(i - j) * p;
      autoc += i * j * p;
    }
  double mu_i = 0, mu_j = 0;
  for (int a = 0; a < ng; ++a) {
    mu_i += (a + 1) * pi[std::size_t(a)];
    mu_j += (a + 1) * pj[std::size_t(a)];
  }
  double var_i = 0, var_j = 0, hx = 0, hy = 0;
  for (int a = 0; a < ng; ++a) {
    var_i += (a + 1 - mu_i) * (a + 1 - mu_i) * pi[std::size_t(a)];
    var_j += (a + 1 - mu_j) * (a + 1 - mu_j) * pj[std::size_t(a)];
    hx -= detail::log2safe(pi[std::size_t(a)]) * pi[std::size_t(a)];
    hy -= detail::log2safe(pj[std::size_t(a)]) * pj[std::size_t(a)];
  }
  double jvar = 0, cov = 0, tend = 0, shade = 0, prom = 0, hxy1 = 0, hxy2 = 0;
  for (int a = 0; a < ng; ++a)
    for (int b = 0; b < ng; ++b) {
      const double p = m.at(a, b) / total;
      const double q = pi[std::size_t(a)] * pj[std::size_t(b)];
      if (q > 0) hxy2 -= q * std::log2(q);
      if (p == 0) continue;
      const double i = a + 1, j = b + 1;
      jvar += (i - javg) * (i - javg) * p;
      cov += (i - mu_i) * (j - mu_j) * p;
      const double s = i + j - mu_i - mu_j;
      tend += s * s * p;
      shade += s * s * s * p;
      prom += s * s * s * s * p;
      hxy1 -= p * std::log2(q);
    }
  double davg = 0, dent = 0, idiff = 0, idiffn = 0, idm = 0, idmn = 0, ivar = 0;
  for (int k = 0; k < ng; ++k) {
    const double p = pminus[std::size_t(k)];
    davg += k * p;
    dent -= detail::log2safe(p) * p;
    idiff += p / (1.0 + k);
    idiffn += p / (1.0 + double(k) / ng);
    idm += p / (1.0 + double(k) * k);
    idmn += p / (1.0 + double(k) * k / (double(ng) * ng));
    if (k > 0) ivar += p / (double(k) * k);
  }
  double dvar = 0;
  for (int k = 0; k < ng; ++k) dvar += (k - davg) * (k - davg) * pminus[std::size_t(k)];
  double savg = 0, sent = 0;
  for (int k = 2; k <= 2 * ng; ++k) {
    savg += k * pplus[std::size_t(k)];
    sent -= detail::log2safe(pplus[std::size_t(k)]) * pplus[std::size_t(k)];
  }
  double svar = 0;
  for (int k = 2; k <= 2 * ng; ++k) svar += (k - savg) * (k - savg) * pplus[std::size_t(k)];
  const double sd = std::sqrt(var_i * var_j);
  const double corr = sd > 0 ? cov / sd : kNaN;
  const double hmax = std::max(hx, hy);
  const double ic1 = hmax > 0 ? (jent - hxy1) / hmax : kNaN;
  const double ic2 = std::sqrt(std::max(0.0, 1.0 - std::exp(-2.0 * (hxy2 - jent))));
  return {jmax,  javg,   jvar, jent, davg, dvar, dent,  savg, svar,  sent, energy, contrast, dissim,
          idiff, idiffn, idm,  idmn, ivar, corr, autoc, tend, shade, prom, ic1,    ic2};
}

bool inRoi(const LevelImage& img, int x, int y, int z) {
  return img.grid.inside(x, y, z) && img.level[img.grid.index(x, y, z)] > 0;
}

// Co-occurrence counts along `d` (both orders), over voxel pairs whose first voxel lies in
// slices [z0, z1).
CountMatrix cooccurrence(const LevelImage& img, const Offset& d, int z0, int z1) {
  CountMatrix m(img.levels, img.levels);
  const Grid& g = img.grid;
  for (int z = z0; z < z1; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const int a = img.level[g.index(x, y, z)];
        if (a <= 0 || !inRoi(img, x + d[0], y + d[1], z + d[2])) continue;
        const int b = img.level[g.index(x + d[0], y + d[1], z + d[2])];
        m.at(a - 1, b - 1) += 1;
        m.at(b - 1, a - 1) += 1;
      }
  return m;
}

// Run-length counts along `d` for runs that start in slices [z0, z1) (in-plane runs stay in
// their slice).
CountMatrix runLengths(const LevelImage& img, const Offset& d, int z0, int z1) {
  CountMatrix m(img.levels, 1);
  const Grid& g = img.grid;
  for (int z = z0; z < z1; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const int a = img.level[g.index(x, y, z)];
        if (a <= 0) continue;
        const int px = x - d[0], py = y - d[1], pz = z - d[2];
        if (inRoi(img, px, py, pz) && img.level[g.index(px, py, pz)] == a) continue;  // not a start
        int len = 1;
        int cx = x + d[0], cy = y + d[1], cz = z + d[2];
        while (inRoi(img, cx, cy, cz) && img.level[g.index(cx, cy, cz)] == a) {
          ++len;
          cx += d[0];
          cy += d[1];
          cz += d[2];
        }
        m.grow(len);
        m.at(a - 1, len - 1) += 1;
      }
  return m;
}

std::size_t roiVoxels(const LevelImage& img, int z0, int z1) {
  std::size_t n = 0;
  const std::size_t plane = std::size_t(img.grid.nx) * std::size_t(img.grid.ny);
  for (std::size_t k = std::size_t(z0) * plane; k < std::size_t(z1) * plane; ++k) n += img.level[k] > 0;
  return n;
}

// The six aggregation variants of one matrix kind. `build(d, z0, z1)` makes the matrix of one
// direction over a slab; `features(m, voxels)` its feature vector, `voxels` the N_v the
// matrix stands for (a merged matrix of k directions stands for k N_v).
template <class Build, class Features>
void sixVariants(const LevelImage& img, const std::string& prefix, const std::vector<std::string>& names,
                 Build build, Features features, FeatureList& out) {
  const auto& dirs = detail::volumeDirections();  // the first 4 lie in-plane
  const int nz = img.grid.nz;
  detail::Averager avg2d, comb2d;
  std::vector<CountMatrix> per_dir(dirs.size());
  for (int z = 0; z < nz; ++z) {
    const double nv = double(roiVoxels(img, z, z + 1));
    if (nv == 0) continue;
    CountMatrix slice_sum;
    for (std::size_t k = 0; k < 4; ++k) {
      CountMatrix m = build(dirs[k], z, z + 1);
      if (m.total() > 0) avg2d.add(features(m, nv));
      slice_sum.add(m);
      per_dir[k].add(m);
    }
    if (slice_sum.total() > 0) comb2d.add(features(slice_sum, 4 * nv));
  }
  const double nv = double(roiVoxels(img, 0, nz));
  detail::Averager avg25, avg3d;
  CountMatrix all25, all3d;
  for (std::size_t k = 0; k < dirs.size(); ++k) {
    if (k >= 4) per_dir[k] = build(dirs[k], 0, nz);
    if (k < 4) {
      if (per_dir[k].total() > 0) avg25.add(features(per_dir[k], nv));
      all25.add(per_dir[k]);
    }
    if (per_dir[k].total() > 0) avg3d.add(features(per_dir[k], nv));
    all3d.add(per_dir[k]);
  }
  const std::size_t n = names.size();
  detail::appendNamed(out, prefix, names, "_2D_avg", avg2d.mean(n));
  detail::appendNamed(out, prefix, names, "_2D_comb", comb2d.mean(n));
  detail::appendNamed(out, prefix, names, "_2_5D_avg", avg25.mean(n));
  detail::appendNamed(out, prefix, names, "_2_5D_comb",
                      all25.total() > 0 ? features(all25, 4 * nv) : std::vector<double>(n, kNaN));
  detail::appendNamed(out, prefix, names, "_3D_avg", avg3d.mean(n));
  detail::appendNamed(
      out, prefix, names, "_3D_comb",
      all3d.total() > 0 ? features(all3d, double(dirs.size()) * nv) : std::vector<double>(n, kNaN));
}
}  // namespace

FeatureList glcmFeatures(const LevelImage& img) {
  FeatureList out;
  if (img.levels <= 0) return out;
  sixVariants(
      img, "cm_", glcmNames(), [&](const Offset& d, int z0, int z1) { return cooccurrence(img, d, z0, z1); },
      [](const CountMatrix& m, double) { return glcmFromCounts(m); }, out);
  return out;
}

FeatureList glrlmFeatures(const LevelImage& img) {
  FeatureList out;
  if (img.levels <= 0) return out;
  sixVariants(
      img, "rlm_", glrlmNames(), [&](const Offset& d, int z0, int z1) { return runLengths(img, d, z0, z1); },
      [](const CountMatrix& m, double nv) { return detail::zoneLikeFeatures(m, nv, false); }, out);
  return out;
}

}  // namespace ctbmd::radiomics
