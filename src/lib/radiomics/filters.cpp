// IBSI 2 convolutional filters: Laplacian of Gaussian and the undecimated separable wavelet
// transform. Both are separable: one 1-D pass per axis through an index map for the boundary.
#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include "ctbmd/radiomics.hpp"

namespace ctbmd::radiomics {

const char* toString(Boundary b) {
  switch (b) {
    case Boundary::mirror:
      return "mirror";
    case Boundary::nearest:
      return "nearest";
    case Boundary::zero:
      return "zero";
    case Boundary::periodic:
      return "periodic";
  }
  return "?";
}

Boundary boundaryFromString(const std::string& s) {
  if (s == "mirror" || s == "symmetric" || s == "reflect") return Boundary::mirror;
  if (s == "nearest") return Boundary::nearest;
  if (s == "zero" || s == "constant") return Boundary::zero;
  if (s == "periodic" || s == "wrap") return Boundary::periodic;
  throw std::invalid_argument("unknown boundary '" + s + "' (expected mirror, nearest, zero or periodic)");
}

namespace {

// Index of sample i of a line of n under the boundary rule; -1 means "zero".
long mapIndex(long i, long n, Boundary b) {
  if (i >= 0 && i < n) return i;
  switch (b) {
    case Boundary::zero:
      return -1;
    case Boundary::nearest:
      return i < 0 ? 0 : n - 1;
    case Boundary::periodic:
      return ((i % n) + n) % n;
    case Boundary::mirror: {
      const long period = 2 * n;
      long k = ((i % period) + period) % period;
      return k < n ? k : period - 1 - k;
    }
  }
  return -1;
}

// out[n] = sum_j kernel[j] * in[n + shift - j] along `axis` (a correlation with the reversed
// kernel), through the boundary rule.
Volume filterAxis(const Volume& in, int axis, const std::vector<double>& kernel, long shift, Boundary b) {
  Volume out;
  out.grid = in.grid;
  out.v.assign(in.v.size(), 0.0);
  const Grid& g = in.grid;
  const long n[3] = {g.nx, g.ny, g.nz};
  const long stride[3] = {1, g.nx, long(g.nx) * g.ny};
  const long len = n[axis], st = stride[axis];
  std::vector<double> line(static_cast<std::size_t>(len)), res(static_cast<std::size_t>(len));
  const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
  for (long p = 0; p < n[a2]; ++p)
    for (long q = 0; q < n[a1]; ++q) {
      const long base = p * stride[a2] + q * stride[a1];
      for (long i = 0; i < len; ++i) line[std::size_t(i)] = in.v[std::size_t(base + i * st)];
      for (long i = 0; i < len; ++i) {
        double s = 0;
        for (std::size_t j = 0; j < kernel.size(); ++j) {
          if (kernel[j] == 0) continue;
          const long k = mapIndex(i + shift - long(j), len, b);
          if (k >= 0) s += kernel[j] * line[std::size_t(k)];
        }
        res[std::size_t(i)] = s;
      }
      for (long i = 0; i < len; ++i) out.v[std::size_t(base + i * st)] = res[std::size_t(i)];
    }
  return out;
}

// A sampled Gaussian (sum 1) of sigma voxels, radius r, or its second derivative
// phi(x) (x^2 - sigma^2) / sigma^4 (scipy's _gaussian_kernel1d).
std::vector<double> gaussianKernel(double sigma, int radius, int order) {
  std::vector<double> k(std::size_t(2 * radius + 1));
  double sum = 0;
  for (int x = -radius; x <= radius; ++x)
    sum += k[std::size_t(x + radius)] = std::exp(-0.5 * x * x / (sigma * sigma));
  for (auto& v : k) v /= sum;
  if (order == 2)
    for (int x = -radius; x <= radius; ++x)
      k[std::size_t(x + radius)] *= (double(x) * x - sigma * sigma) / (sigma * sigma * sigma * sigma);
  return k;
}

int radiusFor(double sigma_vox, double truncate) { return int(truncate * sigma_vox + 0.5); }

// Decomposition low-pass filters (pywt's dec_lo); the high-pass is the quadrature mirror
// hi[k] = (-1)^(k+1) lo[F-1-k].
const std::map<std::string, std::vector<double>>& lowPass() {
  static const std::map<std::string, std::vector<double>> w{
      {"haar", {0.7071067811865476, 0.7071067811865476}},
      {"db2", {-0.12940952255126037, 0.2241438680420134, 0.8365163037378079, 0.48296291314453416}},
      {"db3",
       {0.03522629188570953, -0.08544127388202666, -0.13501102001025458, 0.45987750211849154,
        0.8068915093110925, 0.33267055295008263}},
      {"db4",
       {-0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309,
        -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965}},
      {"sym2", {-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025}},
      {"sym3",
       {0.035226291882100656, -0.08544127388224149, -0.13501102001039084, 0.4598775021193313,
        0.8068915093133388, 0.3326705529509569}},
      {"sym4",
       {-0.07576571478927333, -0.02963552764599851, 0.49761866763201545, 0.8037387518059161,
        0.29785779560527736, -0.09921954357684722, -0.012603967262037833, 0.0322231006040427}},
      {"coif1",
       {-0.015655728135791993, -0.07273261951252645, 0.3848648468648578, 0.8525720202116004,
        0.3378976624574818, -0.07273261951252645}},
      {"coif2",
       {-0.000720549445520347, -0.0018232088709110323, 0.005611434819368834, 0.02368017194684777,
        -0.05943441864643109, -0.07648859907828076, 0.4170051844232391, 0.8127236354494135,
        0.3861100668227629, -0.0673725547237256, -0.04146493678687178, 0.01638733646320364}},
  };
  return w;
}

const std::vector<double>& lowPassOf(const std::string& name) {
  const auto it = lowPass().find(name);
  if (it == lowPass().end()) {
    std::string list;
    for (const auto& n : waveletNames()) list += (list.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown wavelet '" + name + "' (offered: " + list + ")");
  }
  return it->second;
}

// `in` extended by `pad` voxels on every side under the boundary rule, and the inverse.
Volume padVolume(const Volume& in, int pad, Boundary b) {
  Volume out;
  out.grid = in.grid;
  out.grid.nx += 2 * pad;
  out.grid.ny += 2 * pad;
  out.grid.nz += 2 * pad;
  out.v.assign(out.grid.size(), 0.0);
  const Grid& g = in.grid;
  for (int z = 0; z < out.grid.nz; ++z) {
    const long sz = mapIndex(z - pad, g.nz, b);
    for (int y = 0; y < out.grid.ny; ++y) {
      const long sy = mapIndex(y - pad, g.ny, b);
      for (int x = 0; x < out.grid.nx; ++x) {
        const long sx = mapIndex(x - pad, g.nx, b);
        if (sx < 0 || sy < 0 || sz < 0) continue;
        out.v[out.grid.index(x, y, z)] = in.v[g.index(int(sx), int(sy), int(sz))];
      }
    }
  }
  return out;
}

Volume cropVolume(const Volume& in, int pad, const Grid& g) {
  Volume out;
  out.grid = g;
  out.v.resize(g.size());
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) out.v[g.index(x, y, z)] = in.v[in.grid.index(x + pad, y + pad, z + pad)];
  return out;
}

// The filter dilated for `level` (2^(level-1) - 1 zeros between taps, and after the last, as
// pywt's swt: length F * 2^(level-1)).
std::vector<double> dilate(const std::vector<double>& f, int level) {
  const std::size_t step = std::size_t(1) << (level - 1);
  std::vector<double> d(f.size() * step, 0.0);
  for (std::size_t i = 0; i < f.size(); ++i) d[i * step] = f[i];
  return d;
}
}  // namespace

Volume laplacianOfGaussian(const Volume& in, double sigma_mm, double truncate, Boundary b) {
  if (!(sigma_mm > 0)) throw std::invalid_argument("LoG sigma must be > 0 mm");
  Volume out;
  out.grid = in.grid;
  out.v.assign(in.v.size(), 0.0);
  for (int axis = 0; axis < 3; ++axis) {
    Volume t = in;
    for (int a = 0; a < 3; ++a) {
      const double s = sigma_mm / in.grid.spacing[std::size_t(a)];
      const int r = radiusFor(s, truncate);
      t = filterAxis(t, a, gaussianKernel(s, r, a == axis ? 2 : 0), r, b);
    }
    const double h = in.grid.spacing[std::size_t(axis)];
    for (std::size_t k = 0; k < out.v.size(); ++k) out.v[k] += t.v[k] / (h * h);
  }
  return out;
}

const std::vector<std::string>& waveletNames() {
  static const std::vector<std::string> n = [] {
    std::vector<std::string> v;
    for (const auto& [k, f] : lowPass()) v.push_back(k);
    return v;
  }();
  return n;
}

std::vector<std::pair<std::string, Volume>> waveletSubbands(const Volume& in, const std::string& wavelet,
                                                            int level, Boundary b) {
  if (level < 1 || level > 4) throw std::invalid_argument("wavelet level must be 1-4");
  // Beyond the edge the *image* is extended once (by the whole support of all levels), so a
  // level's input near the edge is the decomposition of the extended image, not an extension of
  // the previous level's output; periodic is the transform's own circular definition.
  if (b != Boundary::periodic) {
    const int pad = waveletSupportVoxels(wavelet, level);
    auto bands = waveletSubbands(padVolume(in, pad, b), wavelet, level, Boundary::periodic);
    for (auto& [name, vol] : bands) vol = cropVolume(vol, pad, in.grid);
    return bands;
  }
  const auto& lo = lowPassOf(wavelet);
  std::vector<double> hi(lo.size());
  for (std::size_t k = 0; k < lo.size(); ++k) hi[k] = ((k % 2) ? 1.0 : -1.0) * lo[lo.size() - 1 - k];
  Volume approx = in;
  for (int l = 1; l < level; ++l) {  // LLL of the levels before
    const auto dl = dilate(lo, l);
    for (int a = 0; a < 3; ++a) approx = filterAxis(approx, a, dl, long(dl.size() / 2), b);
  }
  const auto dl = dilate(lo, level), dh = dilate(hi, level);
  const long shift = long(dl.size() / 2);
  std::vector<std::pair<std::string, Volume>> cur{{"", approx}};
  for (int a = 0; a < 3; ++a) {
    std::vector<std::pair<std::string, Volume>> next;
    for (const auto& [name, vol] : cur) {
      next.emplace_back(name + "L", filterAxis(vol, a, dl, shift, b));
      next.emplace_back(name + "H", filterAxis(vol, a, dh, shift, b));
    }
    cur.swap(next);
  }
  return cur;  // LLL, LLH, LHL, LHH, HLL, HLH, HHL, HHH
}

int logSupportVoxels(double sigma_mm, double spacing_mm, double truncate) {
  return radiusFor(sigma_mm / spacing_mm, truncate);
}

int waveletSupportVoxels(const std::string& wavelet, int level) {
  const std::size_t f = lowPassOf(wavelet).size();
  int s = 0;
  for (int l = 1; l <= level; ++l) s += int(f << (l - 1));
  return s;
}

}  // namespace ctbmd::radiomics
