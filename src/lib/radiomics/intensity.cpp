// IBSI 1 sections 2.4-2.5 (re-segmentation, discretisation) and 3.2-3.5 (local intensity,
// intensity statistics, intensity histogram, intensity-volume histogram).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "ctbmd/errors.hpp"
#include "radiomics/common.hpp"

namespace ctbmd::radiomics {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Levels of an intensity-volume histogram: it is a cumulative count, not a matrix.
constexpr int kMaxIvhLevels = 1 << 20;

std::vector<double> maskedValues(const RoiImage& roi) {
  std::vector<double> v;
  for (std::size_t k = 0; k < roi.intensity.size(); ++k)
    if (roi.int_mask[k]) v.push_back(roi.intensity[k]);
  return v;
}

// Linear interpolation between order statistics (Hyndman-Fan type 7, numpy's default).
double quantileSorted(const std::vector<double>& s, double q) {
  if (s.empty()) return kNaN;
  const double h = (double(s.size()) - 1.0) * q;
  const auto lo = std::size_t(std::floor(h));
  const std::size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (h - double(lo)) * (s[hi] - s[lo]);
}

// The statistics shared by the intensity statistics (raw values) and the intensity histogram
// (discretised levels): IBSI 3.3.1-3.3.17.
struct Moments {
  double mean, var, skew, kurt, median, min, p10, p90, max, iqr, range, mad, rmad, medad, cov, qcod;
};

Moments moments(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const double n = double(v.size());
  Moments m{};
  m.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double m2 = 0, m3 = 0, m4 = 0;
  for (double x : v) {
    const double d = x - m.mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  m.var = m2;
  m.skew = m2 > 0 ? m3 / std::pow(m2, 1.5) : 0.0;
  m.kurt = m2 > 0 ? m4 / (m2 * m2) - 3.0 : 0.0;
  m.median = quantileSorted(v, 0.5);
  m.min = v.front();
  m.max = v.back();
  m.p10 = quantileSorted(v, 0.10);
  m.p90 = quantileSorted(v, 0.90);
  const double p25 = quantileSorted(v, 0.25), p75 = quantileSorted(v, 0.75);
  m.iqr = p75 - p25;
  m.range = m.max - m.min;
  double mad = 0, medad = 0;
  for (double x : v) {
    mad += std::fabs(x - m.mean);
    medad += std::fabs(x - m.median);
  }
  m.mad = mad / n;
  m.medad = medad / n;
  // Robust mean absolute deviation: over the voxels between the 10th and 90th percentiles.
  double rsum = 0;
  std::size_t rn = 0;
  for (double x : v)
    if (x >= m.p10 && x <= m.p90) {
      rsum += x;
      ++rn;
    }
  const double rmean = rn ? rsum / double(rn) : kNaN;
  double rdev = 0;
  for (double x : v)
    if (x >= m.p10 && x <= m.p90) rdev += std::fabs(x - rmean);
  m.rmad = rn ? rdev / double(rn) : kNaN;
  m.cov = std::sqrt(m.var) / m.mean;
  m.qcod = (p75 - p25) / (p75 + p25);
  return m;
}

void appendMoments(FeatureList& out, const std::string& p, const Moments& m) {
  out.push_back({p + "mean", m.mean});
  out.push_back({p + "var", m.var});
  out.push_back({p + "skew", m.skew});
  out.push_back({p + "kurt", m.kurt});
  out.push_back({p + "median", m.median});
  out.push_back({p + "min", m.min});
  out.push_back({p + "p10", m.p10});
  out.push_back({p + "p90", m.p90});
  out.push_back({p + "max", m.max});
}
}  // namespace

const char* toString(Discretisation d) {
  switch (d) {
    case Discretisation::none:
      return "none";
    case Discretisation::fixed_bin_size:
      return "fixed-bin-size";
    case Discretisation::fixed_bin_number:
      return "fixed-bin-number";
  }
  return "?";
}

Discretisation discretisationFromString(const std::string& s) {
  if (s == "none") return Discretisation::none;
  if (s == "fixed-bin-size" || s == "fbs") return Discretisation::fixed_bin_size;
  if (s == "fixed-bin-number" || s == "fbn") return Discretisation::fixed_bin_number;
  throw std::invalid_argument("unknown discretisation '" + s +
                              "' (expected none, fixed-bin-size or fixed-bin-number)");
}

std::size_t resegment(RoiImage& roi, const Settings& s) {
  std::size_t left = 0;
  for (std::size_t k = 0; k < roi.intensity.size(); ++k) {
    if (!roi.int_mask[k]) continue;
    const double x = roi.intensity[k];
    if ((!std::isnan(s.reseg_min) && x < s.reseg_min) || (!std::isnan(s.reseg_max) && x > s.reseg_max))
      roi.int_mask[k] = 0;
  }
  if (s.outlier_sigma > 0) {
    const auto v = maskedValues(roi);
    if (!v.empty()) {
      const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
      double var = 0;
      for (double x : v) var += (x - mean) * (x - mean);
      const double sd = std::sqrt(var / double(v.size()));
      for (std::size_t k = 0; k < roi.intensity.size(); ++k)
        if (roi.int_mask[k] && std::fabs(roi.intensity[k] - mean) > s.outlier_sigma * sd) roi.int_mask[k] = 0;
    }
  }
  for (uint8_t m : roi.int_mask) left += m ? 1 : 0;
  return left;
}

LevelImage discretise(const RoiImage& roi, const Settings& s, int max_levels) {
  LevelImage out;
  out.grid = roi.grid;
  out.morph_mask = roi.morph_mask;
  out.level.assign(roi.grid.size(), 0);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (std::size_t k = 0; k < roi.intensity.size(); ++k)
    if (roi.int_mask[k]) {
      lo = std::min(lo, roi.intensity[k]);
      hi = std::max(hi, roi.intensity[k]);
    }
  if (!(lo <= hi)) return out;  // empty intensity mask: no levels
  int max_level = 0;
  for (std::size_t k = 0; k < roi.intensity.size(); ++k) {
    if (!roi.int_mask[k]) continue;
    const double x = roi.intensity[k];
    int g = 0;
    switch (s.discretisation) {
      case Discretisation::none:
        g = int(std::lround(x));
        out.lowest = 1.0;
        out.width = 1.0;
        if (g < 1 || std::fabs(x - g) > 1e-6)
          throw InputError("discretisation 'none' needs integer grey levels >= 1 inside the ROI (found " +
                           std::to_string(x) + "); for CT use fixed-bin-size or fixed-bin-number");
        break;
      case Discretisation::fixed_bin_size: {
        const double base = std::isnan(s.reseg_min) ? lo : s.reseg_min;
        g = int(std::floor((x - base) / s.bin_width)) + 1;
        out.lowest = base;
        out.width = s.bin_width;
        break;
      }
      case Discretisation::fixed_bin_number:
        g = hi > lo ? int(std::floor(s.bin_count * (x - lo) / (hi - lo))) + 1 : 1;
        g = std::min(g, s.bin_count);
        out.lowest = lo;
        out.width = hi > lo ? (hi - lo) / s.bin_count : 1.0;
        break;
    }
    out.level[k] = g;
    max_level = std::max(max_level, g);
  }
  out.levels = s.discretisation == Discretisation::fixed_bin_number ? s.bin_count : max_level;
  if (out.levels > max_levels)
    throw InputError(
        std::to_string(out.levels) + " grey levels after discretisation (at most " +
        std::to_string(max_levels) +
        "): the texture matrices would not fit; use a wider --bin-width or a re-segmentation range");
  return out;
}

FeatureList statisticsFeatures(const RoiImage& roi) {
  FeatureList out;
  const auto v = maskedValues(roi);
  if (v.empty()) return out;
  const Moments m = moments(v);
  appendMoments(out, "stat_", m);
  double energy = 0;
  for (double x : v) energy += x * x;
  out.push_back({"stat_iqr", m.iqr});
  out.push_back({"stat_range", m.range});
  out.push_back({"stat_mad", m.mad});
  out.push_back({"stat_rmad", m.rmad});
  out.push_back({"stat_medad", m.medad});
  out.push_back({"stat_cov", m.cov});
  out.push_back({"stat_qcod", m.qcod});
  out.push_back({"stat_energy", energy});
  out.push_back({"stat_rms", std::sqrt(energy / double(v.size()))});
  return out;
}

FeatureList localIntensityFeatures(const RoiImage& roi) {
  // IBSI 3.2: the mean intensity in a 1 cm^3 sphere (radius 6.2035 mm) around a voxel centre,
  // over every image voxel whose centre lies inside it, in the ROI or not.
  const double radius = 10.0 * std::cbrt(3.0 / (4.0 * M_PI));
  const Grid& g = roi.grid;
  const int rx = int(std::floor(radius / g.spacing[0])), ry = int(std::floor(radius / g.spacing[1])),
            rz = int(std::floor(radius / g.spacing[2]));
  std::vector<detail::Offset> sphere;
  for (int dz = -rz; dz <= rz; ++dz)
    for (int dy = -ry; dy <= ry; ++dy)
      for (int dx = -rx; dx <= rx; ++dx) {
        const double d2 =
            std::pow(dx * g.spacing[0], 2) + std::pow(dy * g.spacing[1], 2) + std::pow(dz * g.spacing[2], 2);
        if (d2 <= radius * radius + 1e-9) sphere.push_back({dx, dy, dz});
      }
  auto sphereMean = [&](int x, int y, int z) {
    double s = 0;
    int n = 0;
    for (const auto& o : sphere) {
      const int a = x + o[0], b = y + o[1], c = z + o[2];
      if (!g.inside(a, b, c)) continue;
      s += roi.intensity[g.index(a, b, c)];
      ++n;
    }
    return s / n;
  };
  double max_int = -std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < roi.intensity.size(); ++k)
    if (roi.int_mask[k]) max_int = std::max(max_int, roi.intensity[k]);
  double local = -std::numeric_limits<double>::infinity(), global = local;
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const std::size_t k = g.index(x, y, z);
        if (!roi.int_mask[k]) continue;
        const double m = sphereMean(x, y, z);
        global = std::max(global, m);
        if (roi.intensity[k] == max_int) local = std::max(local, m);
      }
  if (!std::isfinite(global)) return {};
  return {{"loc_peak_loc", local}, {"loc_peak_glob", global}};
}

FeatureList histogramFeatures(const LevelImage& img) {
  FeatureList out;
  std::vector<double> v;
  std::vector<double> hist(std::size_t(img.levels) + 1, 0.0);
  for (int g : img.level)
    if (g > 0) {
      v.push_back(g);
      hist[std::size_t(g)] += 1;
    }
  if (v.empty()) return out;
  const Moments m = moments(v);
  appendMoments(out, "ih_", m);
  // Mode: the most frequent level; ties go to the one nearest the mean (IBSI 3.4.10).
  int mode = 1;
  for (int i = 1; i <= img.levels; ++i)
    if (hist[std::size_t(i)] > hist[std::size_t(mode)] ||
        (hist[std::size_t(i)] == hist[std::size_t(mode)] && std::fabs(i - m.mean) < std::fabs(mode - m.mean)))
      mode = i;
  out.push_back({"ih_mode", double(mode)});
  out.push_back({"ih_iqr", m.iqr});
  out.push_back({"ih_range", m.range});
  out.push_back({"ih_mad", m.mad});
  out.push_back({"ih_rmad", m.rmad});
  out.push_back({"ih_medad", m.medad});
  out.push_back({"ih_cov", m.cov});
  out.push_back({"ih_qcod", m.qcod});
  double entropy = 0, uniformity = 0;
  const double n = double(v.size());
  for (int i = 1; i <= img.levels; ++i) {
    const double p = hist[std::size_t(i)] / n;
    entropy -= detail::log2safe(p) * p;
    uniformity += p * p;
  }
  out.push_back({"ih_entropy", entropy});
  out.push_back({"ih_uniformity", uniformity});
  // Histogram gradient (IBSI 3.4.20-23): central differences, one-sided at the ends, on the
  // counts of levels 1..N_g.
  const int ng = img.levels;
  auto grad = [&](int i) {
    if (ng == 1) return 0.0;
    if (i == 1) return hist[2] - hist[1];
    if (i == ng) return hist[std::size_t(ng)] - hist[std::size_t(ng - 1)];
    return (hist[std::size_t(i + 1)] - hist[std::size_t(i - 1)]) / 2.0;
  };
  int gmax = 1, gmin = 1;
  for (int i = 1; i <= ng; ++i) {
    if (grad(i) > grad(gmax)) gmax = i;
    if (grad(i) < grad(gmin)) gmin = i;
  }
  out.push_back({"ih_max_grad", grad(gmax)});
  out.push_back({"ih_max_grad_g", double(gmax)});
  out.push_back({"ih_min_grad", grad(gmin)});
  out.push_back({"ih_min_grad_g", double(gmin)});
  return out;
}

LevelImage ivhLevels(const RoiImage& roi, const Settings& s) {
  if (!s.ivh.own) return discretise(roi, s, kMaxIvhLevels);
  if (s.ivh.method != Discretisation::none) {
    Settings t = s;
    t.discretisation = s.ivh.method;
    t.bin_width = s.ivh.bin_width;
    t.bin_count = s.ivh.bin_count;
    return discretise(roi, t, kMaxIvhLevels);
  }
  // 'none': every integer intensity its own level, from the lowest present.
  LevelImage out;
  out.grid = roi.grid;
  out.morph_mask = roi.morph_mask;
  out.level.assign(roi.grid.size(), 0);
  double lo = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < roi.intensity.size(); ++k)
    if (roi.int_mask[k]) lo = std::min(lo, roi.intensity[k]);
  if (!std::isfinite(lo)) return out;
  const long base = std::lround(lo);
  for (std::size_t k = 0; k < roi.intensity.size(); ++k) {
    if (!roi.int_mask[k]) continue;
    const double x = roi.intensity[k];
    if (std::fabs(x - std::round(x)) > 1e-6)
      throw InputError("IVH discretisation 'none' needs integer intensities (found " + std::to_string(x) +
                       "); interpolated HU are rounded unless --no-round");
    const long g = std::lround(x) - base + 1;
    if (g > kMaxIvhLevels) throw InputError("the ROI's intensities span more than 2^20 levels");
    out.level[k] = int(g);
    out.levels = std::max(out.levels, int(g));
  }
  out.lowest = double(base);
  out.width = 1.0;
  return out;
}

FeatureList ivhFeatures(const LevelImage& img) {
  const double lowest = img.lowest, width = img.width;
  // IBSI 3.5 on the discretised intensities: level g stands for lowest + (g - 1) * width.
  std::vector<double> counts(std::size_t(img.levels) + 2, 0.0);
  double n = 0;
  int gmin = img.levels + 1, gmax = 0;
  for (int g : img.level)
    if (g > 0) {
      counts[std::size_t(g)] += 1;
      n += 1;
      gmin = std::min(gmin, g);
      gmax = std::max(gmax, g);
    }
  if (n == 0) return {};
  // nu[g]: fraction of the volume at level >= g.
  std::vector<double> nu(std::size_t(img.levels) + 2, 0.0);
  for (int g = img.levels; g >= 1; --g)
    nu[std::size_t(g)] = nu[std::size_t(g) + 1] + counts[std::size_t(g)] / n;
  auto intensityOf = [&](int g) { return lowest + (g - 1) * width; };
  const double imin = intensityOf(gmin), imax = intensityOf(gmax);
  auto volumeAtFraction = [&](double gamma) {  // V_x: fraction with intensity fraction >= gamma
    if (imax == imin) return 1.0;
    double v = 0;
    for (int g = gmin; g <= gmax; ++g)
      if ((intensityOf(g) - imin) / (imax - imin) >= gamma - 1e-12) v += counts[std::size_t(g)] / n;
    return v;
  };
  auto intensityAtVolume = [&](double x) {  // I_x: lowest level whose nu is at most x
    for (int g = gmin; g <= gmax; ++g)
      if (nu[std::size_t(g)] <= x + 1e-12) return intensityOf(g);
    return intensityOf(gmax + 1);
  };
  const double v10 = volumeAtFraction(0.10), v90 = volumeAtFraction(0.90);
  const double i10 = intensityAtVolume(0.10), i90 = intensityAtVolume(0.90);
  return {{"ivh_v10", v10},
          {"ivh_v90", v90},
          {"ivh_i10", i10},
          {"ivh_i90", i90},
          {"ivh_diff_v10_v90", v10 - v90},
          {"ivh_diff_i10_i90", i10 - i90}};
}

}  // namespace ctbmd::radiomics
