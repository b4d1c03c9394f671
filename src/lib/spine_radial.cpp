// Radial trace of a vertebral body in a very noisy slice: the body's outline as the best
// closed path through a polar edge map (dynamic programming along rays from a seed), the
// classical boundary finder for faint, broken outlines. Used where the ring finder of
// analyseSlice fails on low-dose scans (see radialSlice in internal/spine.hpp).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "internal/spine.hpp"

namespace ctbmd::spine {

namespace {

constexpr int kRays = 72;             // 5 degrees apart
constexpr double kR0 = 3.0;           // first radius (mm)
constexpr double kDr = 0.75;          // radial step (mm)
constexpr int kRadii = 45;            // 3 .. 36 mm: any lumbar body from a seed inside it
constexpr int kEdgeSteps = 2;         // inside / outside samples 1.5 mm from the boundary
constexpr int kMaxJump = 2;           // radius change between neighbouring rays (steps)
constexpr double kEdgeClip = 100;     // HU: a faint cortex counts as much as a bright lamina
constexpr double kDarkGap = 25;       // HU below the core that counts as dark
constexpr double kDarkCap = 30;       // HU: dark is at most this (canal CSF, fat)
constexpr double kDarkWeight = 0.25;  // cost per HU*mm of dark crossed
constexpr double kBarrierMm = 8;      // a dark run this long (the canal, fat) ends the ray
constexpr double kBarrierFromMm = 6;  // ... when it starts this far out (not the core's veins)
constexpr double kBarrierCost = 300;
constexpr double kMinAreaMm2 = 500, kMaxAreaMm2 = 3200;

struct Field {
  r2::Grid2 g;
  std::vector<float> f;
  double x0 = 0, y0 = 0;  // physical position of pixel (0, 0)
  float at(double px, double py) const {
    px = std::clamp(px, 0.0, g.nx - 1.0);
    py = std::clamp(py, 0.0, g.ny - 1.0);
    const int i = std::min(static_cast<int>(px), g.nx - 2), j = std::min(static_cast<int>(py), g.ny - 2);
    const double u = px - i, w = py - j;
    const float* r0 = f.data() + static_cast<size_t>(j) * g.nx + i;
    const float* r1 = r0 + g.nx;
    return static_cast<float>((1 - w) * ((1 - u) * r0[0] + u * r0[1]) + w * ((1 - u) * r1[0] + u * r1[1]));
  }
};

struct Trace {
  std::array<double, kRays> radius{};  // mm, per ray
  double sx = 0, sy = 0;               // seed (physical)
  double score = 0;                    // mean reward along the path
  double cx = 0, cy = 0;               // centroid (physical)
  // after rasterise():
  std::vector<uint8_t> mask;
  long n = 0;
  int ia = 0, ib = -1, ja = 0, jb = -1;  // bounding box of the mask (pixels)
  int weight = 1;                        // seeds that ended on this trace
};

double rayAngle(int a) { return 2 * M_PI * a / kRays; }

// One closed path around seed (sx, sy).
Trace traceFrom(const Field& F, double sx, double sy) {
  constexpr int kS = kRadii + 2 * kEdgeSteps;
  std::vector<float> s(static_cast<size_t>(kRays) * kS);
  for (int a = 0; a < kRays; ++a) {
    const double c = std::cos(rayAngle(a)), sn = std::sin(rayAngle(a));
    for (int i = 0; i < kS; ++i) {
      const double r = kR0 + (i - kEdgeSteps) * kDr;
      s[static_cast<size_t>(a) * kS + i] = F.at((sx + r * c - F.x0) / F.g.sx, (sy + r * sn - F.y0) / F.g.sy);
    }
  }
  auto prof = [&](int a, int i) { return s[static_cast<size_t>(a) * kS + i + kEdgeSteps]; };
  // The core's level: the median within 8 mm of the seed.
  std::vector<float> core;
  for (int a = 0; a < kRays; ++a)
    for (int i = 0; kR0 + i * kDr <= 8.0; ++i) core.push_back(prof(a, i));
  std::nth_element(core.begin(), core.begin() + core.size() / 2, core.end());
  const double dark = std::min(core[core.size() / 2] - kDarkGap, kDarkCap);
  const int run = static_cast<int>(std::lround(kBarrierMm / kDr));
  std::vector<float> cost(static_cast<size_t>(kRays) * kRadii);
  for (int a = 0; a < kRays; ++a) {
    double acc = 0;
    int barrier = kRadii;
    for (int i = 0; i < kRadii && barrier == kRadii; ++i) {
      if (kR0 + i * kDr < kBarrierFromMm || i + run > kRadii) continue;
      int j = i;
      while (j < i + run && prof(a, j) < dark) ++j;
      if (j == i + run) barrier = i + 1;
    }
    for (int i = 0; i < kRadii; ++i) {
      acc += std::max(0.0, dark - prof(a, i)) * kDr;
      const double in = s[static_cast<size_t>(a) * kS + i],
                   out = s[static_cast<size_t>(a) * kS + i + 2 * kEdgeSteps];
      double c = -std::clamp(in - out, -50.0, kEdgeClip) + kDarkWeight * acc;
      if (i >= barrier) c += kBarrierCost;
      cost[static_cast<size_t>(a) * kRadii + i] = static_cast<float>(c);
    }
  }
  // Three turns, free start; the middle turn is the closed path (the DP has forgotten its
  // start by then, and the turn after it constrains its end).
  const int T = 3 * kRays;
  std::vector<float> acc(kRadii), nxt(kRadii);
  std::vector<int8_t> back(static_cast<size_t>(T) * kRadii, 0);
  for (int i = 0; i < kRadii; ++i) acc[i] = cost[i];
  for (int t = 1; t < T; ++t) {
    const float* c = cost.data() + static_cast<size_t>(t % kRays) * kRadii;
    for (int i = 0; i < kRadii; ++i) {
      float best = std::numeric_limits<float>::infinity();
      int8_t bd = 0;
      for (int d = -kMaxJump; d <= kMaxJump; ++d) {
        const int j = i + d;
        if (j < 0 || j >= kRadii) continue;
        if (acc[j] < best) {
          best = acc[j];
          bd = static_cast<int8_t>(d);
        }
      }
      nxt[i] = best + c[i];
      back[static_cast<size_t>(t) * kRadii + i] = bd;
    }
    std::swap(acc, nxt);
  }
  int i = static_cast<int>(std::min_element(acc.begin(), acc.end()) - acc.begin());
  Trace tr;
  tr.sx = sx;
  tr.sy = sy;
  double reward = 0;
  for (int t = T - 1; t >= kRays; --t) {
    if (t < 2 * kRays) {
      tr.radius[static_cast<size_t>(t - kRays)] = kR0 + i * kDr;
      reward -= cost[static_cast<size_t>(t - kRays) * kRadii + i];
    }
    i += back[static_cast<size_t>(t) * kRadii + i];
  }
  tr.score = reward / kRays;
  // Centroid of the star-shaped region (sectors of 5 degrees): where the seed walks next.
  double area = 0, mx = 0, my = 0;
  for (int a = 0; a < kRays; ++a) {
    const double r = tr.radius[static_cast<size_t>(a)];
    area += 0.5 * r * r;
    mx += r * r * r / 3.0 * std::cos(rayAngle(a));
    my += r * r * r / 3.0 * std::sin(rayAngle(a));
  }
  tr.cx = sx + mx / area;
  tr.cy = sy + my / area;
  return tr;
}

// The trace's pixels: inside when within the path's radius at the pixel's angle.
void rasterise(const Field& F, Trace& tr) {
  tr.mask.assign(F.g.size(), 0);
  const double rmax = *std::max_element(tr.radius.begin(), tr.radius.end());
  const int ia = std::max(0, static_cast<int>(std::floor((tr.sx - rmax - F.x0) / F.g.sx)));
  const int ib = std::min(F.g.nx - 1, static_cast<int>(std::ceil((tr.sx + rmax - F.x0) / F.g.sx)));
  const int ja = std::max(0, static_cast<int>(std::floor((tr.sy - rmax - F.y0) / F.g.sy)));
  const int jb = std::min(F.g.ny - 1, static_cast<int>(std::ceil((tr.sy + rmax - F.y0) / F.g.sy)));
  tr.n = 0;
  tr.ia = F.g.nx;
  tr.ib = -1;
  tr.ja = F.g.ny;
  tr.jb = -1;
  double mx = 0, my = 0;
  for (int j = ja; j <= jb; ++j)
    for (int ii = ia; ii <= ib; ++ii) {
      const double dx = F.x0 + ii * F.g.sx - tr.sx, dy = F.y0 + j * F.g.sy - tr.sy;
      const double d2 = dx * dx + dy * dy;
      if (d2 > rmax * rmax) continue;
      double ang = std::atan2(dy, dx);
      if (ang < 0) ang += 2 * M_PI;
      const double fa = ang / (2 * M_PI) * kRays;
      const int a0 = static_cast<int>(fa) % kRays, a1 = (a0 + 1) % kRays;
      const double w = fa - std::floor(fa);
      const double r = (1 - w) * tr.radius[static_cast<size_t>(a0)] + w * tr.radius[static_cast<size_t>(a1)];
      if (d2 <= r * r) {
        tr.mask[static_cast<size_t>(j) * F.g.nx + ii] = 1;
        ++tr.n;
        mx += ii;
        my += j;
        tr.ia = std::min(tr.ia, ii);
        tr.ib = std::max(tr.ib, ii);
        tr.ja = std::min(tr.ja, j);
        tr.jb = std::max(tr.jb, j);
      }
    }
  if (tr.n) {
    tr.cx = F.x0 + mx / tr.n * F.g.sx;
    tr.cy = F.y0 + my / tr.n * F.g.sy;
  }
}

}  // namespace

SliceBody radialSlice(const Volume& v, int k, const std::vector<std::array<double, 2>>& centres,
                      const SliceParams& p, bool want_mask) {
  SliceBody out;
  if (centres.empty() || k < 0 || k >= v.nz) return out;
  // Seeds within 10 mm left-right and 15 mm front-back of each centre; rays reach 37.5 mm.
  constexpr double kSeedX = 10, kSeedY = 15, kMargin = kSeedY + kR0 + (kRadii + kEdgeSteps) * kDr;
  double xa = 1e30, xb = -1e30, ya = 1e30, yb = -1e30;
  for (const auto& c : centres) {
    xa = std::min(xa, c[0] - kMargin);
    xb = std::max(xb, c[0] + kMargin);
    ya = std::min(ya, c[1] - kMargin);
    yb = std::max(yb, c[1] + kMargin);
  }
  const int i0 = std::max(0, static_cast<int>(std::floor((xa - v.ox) / v.sx)));
  const int i1 = std::min(v.nx - 1, static_cast<int>(std::ceil((xb - v.ox) / v.sx)));
  const int j0 = std::max(0, static_cast<int>(std::floor((ya - v.oy) / v.sy)));
  const int j1 = std::min(v.ny - 1, static_cast<int>(std::ceil((yb - v.oy) / v.sy)));
  if (i1 - i0 < 8 || j1 - j0 < 8) return out;
  Field F;
  F.g = {i1 - i0 + 1, j1 - j0 + 1, v.sx, v.sy};
  F.x0 = v.x(i0);
  F.y0 = v.y(j0);
  // About 1 mm of smoothing, more on noisier scans.
  F.f = smoothedSlice(v, k, i0, j0, F.g, p, 1.0, nullptr);
  // Every seed walks to the centroid of its own trace (at most three times); the answer is
  // the trace the others agree with most (the medoid by overlap), so a few seeds that
  // wandered onto the arch or into the canal do not decide.
  std::vector<Trace> traces;
  std::vector<std::array<double, 2>> ends;  // the seed each kept trace was traced from
  for (const auto& c : centres)
    for (double ox : {-kSeedX, 0.0, kSeedX})
      for (double oy : {-kSeedY, -kSeedY / 2, 0.0, kSeedY / 2, kSeedY}) {
        double sx = c[0] + ox, sy = c[1] + oy;
        Trace tr;
        int same = -1;  // an earlier seed already walked here: same trace
        for (int it = 0; it < 3 && same < 0; ++it) {
          for (size_t e = 0; e < ends.size() && same < 0; ++e)
            if (std::hypot(ends[e][0] - sx, ends[e][1] - sy) < 0.5) same = static_cast<int>(e);
          if (same >= 0) break;
          tr = traceFrom(F, sx, sy);
          if (std::hypot(tr.cx - sx, tr.cy - sy) < 1.0) break;
          sx = tr.cx;
          sy = tr.cy;
        }
        if (same >= 0) {
          ++traces[static_cast<size_t>(same)].weight;
          continue;
        }
        if (std::abs(tr.cx - centres.front()[0]) > p.max_lateral_mm) continue;
        rasterise(F, tr);
        const double area = tr.n * F.g.sx * F.g.sy;
        if (area < kMinAreaMm2 || area > kMaxAreaMm2) continue;
        ends.push_back({tr.sx, tr.sy});
        traces.push_back(std::move(tr));
      }
  if (traces.empty()) return out;
  size_t pick = 0;
  double best = -1;
  for (size_t a = 0; a < traces.size(); ++a) {
    const Trace& A = traces[a];
    double agree = A.weight - 1;  // its own other seeds agree fully
    for (size_t b = 0; b < traces.size(); ++b) {
      if (a == b) continue;
      const Trace& B = traces[b];
      long both = 0;
      for (int j = std::max(A.ja, B.ja); j <= std::min(A.jb, B.jb); ++j)
        for (int i = std::max(A.ia, B.ia); i <= std::min(A.ib, B.ib); ++i) {
          const size_t q = static_cast<size_t>(j) * F.g.nx + i;
          both += A.mask[q] & B.mask[q];
        }
      agree += B.weight * 2.0 * both / static_cast<double>(A.n + B.n);
    }
    agree += 1e-3 * A.score;  // ties: the stronger outline
    if (agree > best) {
      best = agree;
      pick = a;
    }
  }
  Trace& tr = traces[pick];
  std::vector<uint8_t>& body = tr.mask;
  out.cx = tr.cx;
  out.cy = tr.cy;
  out.area = tr.n * F.g.sx * F.g.sy;
  int xmin = F.g.nx, xmax = -1;
  for (size_t q = 0; q < F.g.size(); ++q)
    if (body[q]) {
      xmin = std::min(xmin, static_cast<int>(q % F.g.nx));
      xmax = std::max(xmax, static_cast<int>(q % F.g.nx));
    }
  out.half_width = 0.5 * (xmax - xmin + 1) * F.g.sx;
  const auto dist = r2::edtSquared(F.g, body);
  out.r_max = std::sqrt(static_cast<double>(*std::max_element(dist.begin(), dist.end())));
  // Filled width along the rows near the centre (what the ring finder reports for the alae).
  {
    const int jc = static_cast<int>(std::lround((out.cy - F.y0) / F.g.sy));
    for (int j = std::max(0, jc - 2); j <= std::min(F.g.ny - 1, jc + 2); ++j) {
      int a = F.g.nx, b = -1;
      for (int i = 0; i < F.g.nx; ++i)
        if (body[static_cast<size_t>(j) * F.g.nx + i]) {
          a = std::min(a, i);
          b = std::max(b, i);
        }
      if (b >= a) out.row_width = std::max(out.row_width, (b - a + 1) * F.g.sx);
    }
  }
  out.valid = out.r_max >= p.min_radius_mm;
  out.radial = true;
  if (want_mask) {
    out.wx0 = i0;
    out.wy0 = j0;
    out.wnx = F.g.nx;
    out.wny = F.g.ny;
    out.mask = std::move(body);
  }
  return out;
}

}  // namespace ctbmd::spine
