// The anatomy gate's measurements (spinal canal behind a body, offset from the body's
// midline) and its verdict. See internal/column.hpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "internal/column.hpp"

namespace ctbmd::spine {

namespace {

constexpr int kRays = 16;

// Nearest-pixel HU in slice k at canonical (x, y); -1024 outside the image (air).
double pixel(const Volume& v, int k, double x, double y) {
  const int i = static_cast<int>(std::lround((x - v.ox) / v.sx));
  const int j = static_cast<int>(std::lround((y - v.oy) / v.sy));
  if (i < 0 || j < 0 || i >= v.nx || j >= v.ny) return -1024;
  return v.at(i, j, k);
}

// Mean of the 3x3 pixels around (x, y).
double mean3(const Volume& v, int k, double x, double y) {
  double s = 0;
  for (int dj = -1; dj <= 1; ++dj)
    for (int di = -1; di <= 1; ++di) s += pixel(v, k, x + di * v.sx, y + dj * v.sy);
  return s / 9;
}

bool inside(const Volume& v, double x, double y) {
  return x >= v.ox && y >= v.oy && x <= v.x(v.nx - 1) && y <= v.y(v.ny - 1);
}

std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

}  // namespace

CanalProbe probeCanal(const Volume& v, int k, double cx, double cy, double body_r_mm, const ColumnParams& p) {
  CanalProbe best;
  const double step = std::min(v.sx, v.sy) / 2;
  const double dpix = std::max(v.sx, v.sy);
  for (double dx : {-2 * dpix, 0.0, 2 * dpix})
    for (double d = body_r_mm + 2; d <= body_r_mm + p.search_back_mm; d += v.sy) {
      const double x = cx + dx, y = cy + d;  // canonical +y is posterior
      if (!inside(v, x, y)) break;
      const double hu = mean3(v, k, x, y);
      if (hu < p.canal_min_hu || hu > p.canal_max_hu) continue;
      // A separate compartment: between the body's centre and the hole lies the body's
      // posterior wall, a bright band well above the hole. A long bone's marrow canal (or
      // the marrow of the ilium or a condyle) is the "body's" own inside: no wall between.
      double wall = -1e9;
      for (double t = 0; t <= d; t += step) wall = std::max(wall, mean3(v, k, x, cy + t - (dx == 0 ? 0 : 0)));
      if (wall < std::max(p.wall_min_hu, hu + p.wall_above_hole_hu)) continue;
      std::array<double, kRays> reach{};
      int hits = 0;
      for (int r = 0; r < kRays; ++r) {
        const double th = 2 * M_PI * r / kRays, ux = std::cos(th), uy = std::sin(th);
        reach[r] = p.ray_reach_mm;
        int run = 0;
        for (double t = 1.5; t <= p.ray_reach_mm; t += step) {
          const double qx = x + t * ux, qy = y + t * uy;
          if (!inside(v, qx, qy)) break;  // the image edge closes nothing
          run = pixel(v, k, qx, qy) >= p.arch_bone_hu ? run + 1 : 0;
          if (run >= 2) {  // two samples in a row: bone, not a noisy pixel
            reach[r] = t;
            ++hits;
            break;
          }
        }
      }
      std::sort(reach.begin(), reach.end());
      const double radius = reach[kRays / 2];
      if (radius < p.min_canal_radius_mm || radius > p.max_canal_radius_mm) continue;
      // A clean hole: no bone close inside it. Marrow between trabeculae stops some rays
      // within a few mm; a canal's wall is an oval around its centre.
      if (reach[0] < p.min_reach_of_radius * radius) continue;
      const double enc = static_cast<double>(hits) / kRays;
      // the most enclosed point; among equals the most central one
      if (enc > best.enclosure || (enc == best.enclosure && reach[0] > best.min_reach_mm))
        best = {enc, radius, d, x, y, reach[0], 0};
    }
  if (best.enclosure > 0) {
    // Posterior elements: bone straight behind the canal (laminae joining, the spinous
    // process), summed over 40 mm from the canal's centre outwards, best of three columns.
    double most = 0;
    for (double dx : {-v.sx, 0.0, v.sx}) {
      double len = 0;
      for (double t = 1.5; t <= 40; t += step) {
        const double qx = best.x + dx, qy = best.y + t;
        if (!inside(v, qx, qy)) break;
        if (pixel(v, k, qx, qy) >= p.arch_bone_hu) len += step;
      }
      most = std::max(most, len);
    }
    best.posterior_bone_mm = most;
  }
  return best;
}

std::optional<double> midlineOffset(const Volume& v, int k, double cx, double cy, const ColumnParams& p) {
  const int j = static_cast<int>(std::lround((cy - v.oy) / v.sy));
  if (j < 0 || j >= v.ny || k < 0 || k >= v.nz) return std::nullopt;
  auto tissue = [&](int i) {
    for (int t = 0; t < 3; ++t)
      if (i + t >= v.nx || v.at(i + t, j, k) < p.skin_hu) return false;
    return true;
  };
  auto tissueLeftward = [&](int i) {
    for (int t = 0; t < 3; ++t)
      if (i - t < 0 || v.at(i - t, j, k) < p.skin_hu) return false;
    return true;
  };
  int lo = 0, hi = v.nx - 1;
  while (lo < v.nx && !tissue(lo)) ++lo;
  while (hi >= 0 && !tissueLeftward(hi)) --hi;
  if (lo <= 1 || hi >= v.nx - 2 || hi - lo < 10) return std::nullopt;  // cut by the field of view
  const double xl = v.x(lo), xr = v.x(hi);
  return std::abs(cx - (xl + xr) / 2) / ((xr - xl) / 2);
}

ColumnVerdict judgeColumn(const std::vector<SegmentEvidence>& segs, const ColumnParams& p) {
  ColumnVerdict out;
  double best_enc = 0, off_sum = 0;
  for (const auto& s : segs) {
    if (s.sacral) continue;
    ++out.segments;
    out.with_canal += s.canal;
    best_enc = std::max(best_enc, s.canal_enclosure);
    if (s.midline_offset) {
      ++out.midline_known;
      if (*s.midline_offset > p.max_midline_offset) {
        ++out.off_midline;
        off_sum += *s.midline_offset;
      }
    }
  }
  const std::string of = std::to_string(out.segments) + " bone segment" + (out.segments == 1 ? "" : "s");
  if (out.segments == 0) {
    out.reason = "no bone segment above the sacrum was followed: no vertebral column in view";
    return out;
  }
  if (out.midline_known > 0 && 2 * out.off_midline > out.midline_known) {
    out.reason = "the bone followed lies off the body's left-right midline (" +
                 fmt("%.2f", off_sum / out.off_midline) + " of the half-width from it in " +
                 std::to_string(out.off_midline) + " of " + std::to_string(out.midline_known) +
                 " segments; the spine lies within ~0.1): a long bone or the pelvis, not a vertebral column";
    return out;
  }
  if (out.with_canal == 0 || 2 * out.with_canal < out.segments) {
    out.reason =
        "no spinal canal closed by a neural arch behind " +
        (out.with_canal ? std::to_string(out.segments - out.with_canal) + " of the " : std::string("the ")) +
        of + " followed (best: " + fmt("%.0f", 100 * best_enc) +
        " % of the rays around a soft-tissue hole behind them met bone, a canal needs " +
        fmt("%.0f", 100 * p.min_enclosure) + " %): a long bone, the pelvis or a limb, not a vertebral column";
    return out;
  }
  out.seen = true;
  out.reason = std::to_string(out.with_canal) + " of " + of + " show a spinal canal behind the body" +
               (out.midline_known ? ", on the body's midline"
                                  : " (midline not checked: the field of view cuts the body)");
  return out;
}

}  // namespace ctbmd::spine
