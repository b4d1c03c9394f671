// Network inputs (see internal/net_inputs.hpp).
#include "internal/net_inputs.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "ctbmd/errors.hpp"

namespace ctbmd::netin {

float PatchSpec::normalise(float hu) const {
  if (width <= 0 || normalisation == "none") return hu;
  if (normalisation == "zscore") return static_cast<float>((hu - level) / width);
  return static_cast<float>(std::clamp((hu - (level - width / 2)) / width, 0.0, 1.0));
}

PatchSpec specOf(const ModelCard& card, size_t dims) {
  PatchSpec s;
  s.spacing_mm = 0;
  if (card.spacing_mm)
    for (double d : *card.spacing_mm)
      if (std::isfinite(d) && d > 0) {
        s.spacing_mm = d;
        break;
      }
  if (!(s.spacing_mm > 0))
    throw InputError("model " + card.name + ": its card gives no input spacing (input.spacing_mm)");
  s.size = card.patch;
  if (s.size.size() != dims)
    throw InputError("model " + card.name + ": its card's input.patch has " + std::to_string(s.size.size()) +
                     " entries; this method needs " + std::to_string(dims));
  for (int n : s.size)
    if (n <= 0 || n > 4096) throw InputError("model " + card.name + ": input.patch entries must be 1..4096");
  const PatchSpec w = windowOf(card);
  s.level = w.level;
  s.width = w.width;
  s.normalisation = w.normalisation;
  return s;
}

PatchSpec windowOf(const ModelCard& card) {
  PatchSpec s;
  s.level = card.hu_window[0];
  s.width = card.hu_window[1];
  s.normalisation = card.normalisation.empty() ? "minmax" : card.normalisation;
  return s;
}

void normalise(const ModelCard& card, std::vector<float>& values) {
  const PatchSpec s = windowOf(card);
  for (auto& v : values) v = s.normalise(v);
}

namespace {
inline float bilinear(const spine::Volume& v, int k, double fi, double fj) {
  int i0 = static_cast<int>(std::floor(fi)), j0 = static_cast<int>(std::floor(fj));
  double ax = fi - i0, ay = fj - j0;
  auto at = [&](int i, int j) -> double {
    if (i < 0 || j < 0 || i >= v.nx || j >= v.ny || k < 0 || k >= v.nz) return -1024.0;
    return v.at(i, j, k);
  };
  return static_cast<float>((1 - ay) * ((1 - ax) * at(i0, j0) + ax * at(i0 + 1, j0)) +
                            ay * ((1 - ax) * at(i0, j0 + 1) + ax * at(i0 + 1, j0 + 1)));
}
inline uint8_t nearestLabel(const uint8_t* lab, const spine::Volume& v, double fi, double fj, double fk) {
  long i = std::lround(fi), j = std::lround(fj), k = std::lround(fk);
  if (i < 0 || j < 0 || k < 0 || i >= v.nx || j >= v.ny || k >= v.nz) return 0;
  return lab[(static_cast<size_t>(k) * v.ny + static_cast<size_t>(j)) * v.nx + static_cast<size_t>(i)];
}
}  // namespace

void axialPatch(const spine::Volume& v, int k, double cx, double cy, const PatchSpec& s, float* out) {
  const int H = s.size[0], W = s.size[1];
  for (int r = 0; r < H; ++r) {
    double y = cy + (r - H / 2.0 + 0.5) * s.spacing_mm;
    double fj = (y - v.oy) / v.sy;
    for (int c = 0; c < W; ++c) {
      double x = cx + (c - W / 2.0 + 0.5) * s.spacing_mm;
      out[r * W + c] = s.normalise(bilinear(v, k, (x - v.ox) / v.sx, fj));
    }
  }
}

void axialLabels(const uint8_t* lab, const spine::Volume& v, int k, double cx, double cy, const PatchSpec& s,
                 const std::array<uint8_t, 256>& map, float* out) {
  const int H = s.size[0], W = s.size[1];
  for (int r = 0; r < H; ++r) {
    double fj = (cy + (r - H / 2.0 + 0.5) * s.spacing_mm - v.oy) / v.sy;
    for (int c = 0; c < W; ++c) {
      double fi = (cx + (c - W / 2.0 + 0.5) * s.spacing_mm - v.ox) / v.sx;
      out[r * W + c] = map[nearestLabel(lab, v, fi, fj, k)];
    }
  }
}

void volumePatch(const spine::Volume& v, double cx, double cy, double cz, const PatchSpec& s, float* out) {
  const int D = s.size[0], H = s.size[1], W = s.size[2];
  for (int d = 0; d < D; ++d) {
    double fk = (cz + (d - D / 2.0 + 0.5) * s.spacing_mm - v.oz) / v.sz;
    int k0 = static_cast<int>(std::floor(fk));
    double az = fk - k0;
    for (int r = 0; r < H; ++r) {
      double fj = (cy + (r - H / 2.0 + 0.5) * s.spacing_mm - v.oy) / v.sy;
      for (int c = 0; c < W; ++c) {
        double fi = (cx + (c - W / 2.0 + 0.5) * s.spacing_mm - v.ox) / v.sx;
        float a = bilinear(v, k0, fi, fj), b = bilinear(v, k0 + 1, fi, fj);
        out[(static_cast<size_t>(d) * H + r) * W + c] =
            s.normalise(static_cast<float>((1 - az) * a + az * b));
      }
    }
  }
}

void volumeLabels(const uint8_t* lab, const spine::Volume& v, double cx, double cy, double cz,
                  const PatchSpec& s, const std::array<uint8_t, 256>& map, float* out) {
  const int D = s.size[0], H = s.size[1], W = s.size[2];
  for (int d = 0; d < D; ++d) {
    double fk = (cz + (d - D / 2.0 + 0.5) * s.spacing_mm - v.oz) / v.sz;
    for (int r = 0; r < H; ++r) {
      double fj = (cy + (r - H / 2.0 + 0.5) * s.spacing_mm - v.oy) / v.sy;
      for (int c = 0; c < W; ++c) {
        double fi = (cx + (c - W / 2.0 + 0.5) * s.spacing_mm - v.ox) / v.sx;
        out[(static_cast<size_t>(d) * H + r) * W + c] = map[nearestLabel(lab, v, fi, fj, fk)];
      }
    }
  }
}

void mipPair(const spine::Volume& v, double z_top, double row_mm, int rows, int cols, const PatchSpec& s,
             float* out) {
  // Full-resolution MIPs first (frontal: max over y -> [z][x]; sagittal: max over x -> [z][y]).
  std::vector<float> fr(static_cast<size_t>(v.nz) * v.nx, -1024.f),
      sa(static_cast<size_t>(v.nz) * v.ny, -1024.f);
  for (int k = 0; k < v.nz; ++k)
    for (int j = 0; j < v.ny; ++j)
      for (int i = 0; i < v.nx; ++i) {
        float h = v.at(i, j, k);
        float& f = fr[static_cast<size_t>(k) * v.nx + i];
        float& g = sa[static_cast<size_t>(k) * v.ny + j];
        if (h > f) f = h;
        if (h > g) g = h;
      }
  auto sample = [&](const std::vector<float>& m, int n, double fk, double fc) -> float {
    // area-agnostic linear sampling; outside the scan: -1024
    if (fk < -0.5 || fk > v.nz - 0.5) return -1024.f;
    fk = std::clamp(fk, 0.0, v.nz - 1.0);
    fc = std::clamp(fc, 0.0, n - 1.0);
    int k0 = static_cast<int>(std::floor(fk)), c0 = static_cast<int>(std::floor(fc));
    int k1 = std::min(k0 + 1, v.nz - 1), c1 = std::min(c0 + 1, n - 1);
    double az = fk - k0, ac = fc - c0;
    auto at = [&](int k, int c) { return static_cast<double>(m[static_cast<size_t>(k) * n + c]); };
    return static_cast<float>((1 - az) * ((1 - ac) * at(k0, c0) + ac * at(k0, c1)) +
                              az * ((1 - ac) * at(k1, c0) + ac * at(k1, c1)));
  };
  for (int r = 0; r < rows; ++r) {
    double z = z_top - (r + 0.5) * row_mm;
    double fk = (z - v.oz) / v.sz;
    for (int c = 0; c < cols; ++c) {
      double fx = (c + 0.5) / cols * v.nx - 0.5, fy = (c + 0.5) / cols * v.ny - 0.5;
      out[static_cast<size_t>(r) * cols + c] = s.normalise(sample(fr, v.nx, fk, fx));
      out[static_cast<size_t>(rows + r) * cols + c] = s.normalise(sample(sa, v.ny, fk, fy));
    }
  }
}

std::array<uint8_t, 256> bodyClassMap() {
  std::array<uint8_t, 256> m{};
  for (int l = 1; l <= 25; ++l) m[static_cast<size_t>(l)] = 1;
  m[28] = 1;
  return m;
}

}  // namespace ctbmd::netin
