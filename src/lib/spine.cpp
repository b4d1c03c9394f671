#include "internal/spine.hpp"

#include <itkMultiThreaderBase.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>

#include "ctbmd/stats.hpp"
#include "internal/parallel.hpp"

namespace ctbmd::spine {

Volume view(const CtImage* c) {
  Volume v;
  v.hu = c->GetBufferPointer();
  auto sz = c->GetLargestPossibleRegion().GetSize();
  v.nx = static_cast<int>(sz[0]);
  v.ny = static_cast<int>(sz[1]);
  v.nz = static_cast<int>(sz[2]);
  v.sx = c->GetSpacing()[0];
  v.sy = c->GetSpacing()[1];
  v.sz = c->GetSpacing()[2];
  v.ox = c->GetOrigin()[0];
  v.oy = c->GetOrigin()[1];
  v.oz = c->GetOrigin()[2];
  return v;
}

Volume binInPlane(const Volume& v, double target_mm, std::vector<int16_t>& storage) {
  const int fx = std::max(1, static_cast<int>(std::floor(target_mm / v.sx + 1e-6)));
  const int fy = std::max(1, static_cast<int>(std::floor(target_mm / v.sy + 1e-6)));
  if ((fx == 1 && fy == 1) || v.nx < 2 * fx || v.ny < 2 * fy) return v;
  Volume b = v;
  b.nx = v.nx / fx;
  b.ny = v.ny / fy;
  b.sx = v.sx * fx;
  b.sy = v.sy * fy;
  b.ox = v.ox + 0.5 * (fx - 1) * v.sx;
  b.oy = v.oy + 0.5 * (fy - 1) * v.sy;
  storage.assign(static_cast<size_t>(b.nx) * b.ny * b.nz, 0);
  const int n = fx * fy;
  parallelFor(v.nz, [&](int k) {
    std::vector<int> rows(static_cast<size_t>(v.nx));  // the block's rows summed, per column
    for (int bj = 0; bj < b.ny; ++bj) {
      std::fill(rows.begin(), rows.end(), 0);
      for (int dj = 0; dj < fy; ++dj) {
        const int16_t* row = v.hu + (static_cast<size_t>(k) * v.ny + bj * fy + dj) * v.nx;
        for (int i = 0; i < v.nx; ++i) rows[static_cast<size_t>(i)] += row[i];
      }
      int16_t* out = storage.data() + (static_cast<size_t>(k) * b.ny + bj) * b.nx;
      for (int bi = 0; bi < b.nx; ++bi) {
        int a = 0;
        for (int di = 0; di < fx; ++di) a += rows[static_cast<size_t>(bi * fx + di)];
        out[bi] = static_cast<int16_t>(a >= 0 ? (a + n / 2) / n : -((-a + n / 2) / n));  // rounded
      }
    }
  });
  b.hu = storage.data();
  return b;
}

std::vector<float> smoothedSlice(const Volume& v, int k, int i0, int j0, const r2::Grid2& g,
                                 const SliceParams& p, double sigma_mm, int* passes_out) {
  std::vector<float> f(g.size(), 0.f);
  // Very noisy thin slices: the mean of the slices beside it along the column (a body is a
  // vertical cylinder; its thin cortex survives this but not in-plane smoothing).
  const int ka = std::max(0, k - p.z_half), kb = std::min(v.nz - 1, k + p.z_half);
  for (int kk = ka; kk <= kb; ++kk)
    for (int j = 0; j < g.ny; ++j)
      for (int i = 0; i < g.nx; ++i) f[static_cast<size_t>(j) * g.nx + i] += v.at(i0 + i, j0 + j, kk);
  if (kb > ka)
    for (auto& x : f) x /= static_cast<float>(kb - ka + 1);
  // Each [1 2 1] pass adds 0.5 px^2 of variance. Noisy scans (low dose, thin slices) get
  // enough passes to bring the pixel noise to ~25 HU (n passes divide it by about sqrt(2 pi n)).
  const double px_mm = std::sqrt(g.sx * g.sy);
  const double excess = p.noise_hu / std::sqrt(static_cast<double>(kb - ka + 1)) / 25.0;
  const int n = std::max(static_cast<int>(std::lround(2.0 * std::pow(sigma_mm / px_mm, 2))),
                         static_cast<int>(std::ceil(excess * excess / (2 * M_PI) - 0.2)));
  r2::binomialBlur(g, f, n);
  if (passes_out) *passes_out = n;
  return f;
}

namespace {
// Cerebrospinal fluid in the canal (0-40 HU) stays below this; marrow, even fatty, mostly above.
constexpr double kCanalHu = 60;
// Pixel noise (HU) above which slices are averaged along the column (columnAveraging).
constexpr double kColumnNoiseHu = 50.0;

// The phases of one slice's body search (analyseSliceOnce), on the search window `g` whose
// pixel (0, 0) is the slice's (i0, j0).

// `bone` with its ring gaps closed and its marrow-sized holes filled (the spinal canal,
// smaller, stays open).
std::vector<uint8_t> filledRing(const r2::Grid2& g, const SliceParams& p, const std::vector<uint8_t>& bone,
                                double px_mm) {
  // Close ring gaps (partial volume, thin osteoporotic cortex) before looking for holes:
  // at least 2 mm or 1.5 pixels, so coarse 3 mm pixels bridge 2-pixel gaps too.
  auto closed = r2::close(g, bone, std::max(p.close_mm, 1.5 * px_mm));
  // Holes big enough to be a body's marrow are filled; the spinal canal (smaller) is not.
  // Tiny holes (< 60 mm^2: gaps in speckled near-threshold marrow) are filled too; the canal
  // (100-300 mm^2) stays open.
  auto filled = r2::fillHoles(g, r2::fillHoles(g, closed, 60.0), -1.0, p.min_hole_mm2);
  if (p.ring_bridge_mm > 0) {
    // A broken thin ring: closing cannot bridge gaps in a one-pixel line, but holes of the
    // dilated ring can be filled and the dilation taken back. The marrow hole shrinks by the
    // dilation, so the size limit that keeps the canal open shrinks with it.
    double rb = p.ring_bridge_mm;
    double rh = std::max(0.0, std::sqrt(p.min_hole_mm2 / M_PI) - rb);
    auto bridged = r2::erode(g, r2::fillHoles(g, r2::dilate(g, closed, rb), -1.0, M_PI * rh * rh), rb);
    for (size_t q = 0; q < g.size(); ++q) filled[q] = filled[q] || bridged[q];
  }
  return filled;
}

// Marrow within a few HU of the dense-bone threshold is dense in patches: the gaps between
// them are holes too small to pass for marrow (min_hole_mm2 keeps the canal open) and would
// stay open, leaving a fragment of the body (a body 0.5 HU above the threshold lost half its
// radius in 5 mm slices). A gap is a hole walled by that dense marrow (at least
// kGapDenseWall of its edge) whose median (light smoothing) lies within kGapBelowThresholdHu
// of the threshold: there, the gaps' medians were 113-115 HU at a threshold of 115; the other
// holes inside bone on example_ct (veins, partial volume; 62-94 HU at a threshold of 100) and
// the canal (CSF 0-40 HU) lie well below and stay open.
constexpr double kGapBelowThresholdHu = 15;
constexpr double kGapDenseWall = 0.4;
void fillNearThresholdGaps(const r2::Grid2& g, const SliceParams& p, const std::vector<float>& f,
                           const std::vector<uint8_t>& dense, std::vector<uint8_t>& filled) {
  std::vector<uint8_t> outside(g.size());
  for (size_t q = 0; q < g.size(); ++q) outside[q] = !filled[q];
  std::vector<long> area;
  const auto comp = r2::components(g, outside, area);
  std::vector<std::vector<float>> values(area.size());
  std::vector<long> wall(area.size(), 0), dense_wall(area.size(), 0);
  std::vector<uint8_t> border(area.size(), 0);
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) {
      const size_t q = static_cast<size_t>(j) * g.nx + i;
      const int c = comp[q];
      if (!c) continue;
      if (i == 0 || j == 0 || i == g.nx - 1 || j == g.ny - 1) {
        border[c] = 1;
        continue;
      }
      values[c].push_back(f[q]);
      for (const size_t n : {q - 1, q + 1, q - static_cast<size_t>(g.nx), q + static_cast<size_t>(g.nx)})
        if (!comp[n]) {
          ++wall[c];
          dense_wall[c] += dense[n];
        }
    }
  std::vector<uint8_t> fill(area.size(), 0);
  for (size_t c = 1; c < area.size(); ++c) {
    auto& v = values[c];
    if (border[c] || v.empty() || dense_wall[c] < kGapDenseWall * static_cast<double>(wall[c])) continue;
    // The median: a hole's rim is partial-volumed with bone, its centre is not.
    std::nth_element(v.begin(), v.begin() + static_cast<long>(v.size() / 2), v.end());
    fill[c] = v[v.size() / 2] >= p.trabecular_hu - kGapBelowThresholdHu;
  }
  for (size_t q = 0; q < g.size(); ++q)
    if (comp[q] && fill[comp[q]]) filled[q] = 1;
}

// Bone in the window and the bone with its marrow filled; `f` the lightly smoothed slice.
std::vector<uint8_t> marrowFilledBone(const Volume& v, int k, int i0, int j0, const r2::Grid2& g,
                                      const SliceParams& p, std::vector<float>& f) {
  std::vector<uint8_t> filled;
  // Bone: the cortex (light smoothing, high threshold) or dense trabecular bone (heavier
  // smoothing, lower threshold). Sparse (osteoporotic) marrow is found as a hole in the ring.
  // Smoothing is set in mm, so thick and thin pixels see the same scale: light ~0.6 mm
  // against noise (more on noisy scans), heavy ~1.5 mm.
  int light = 0;
  f = smoothedSlice(v, k, i0, j0, g, p, 0.6, &light);
  const double px_mm = std::sqrt(g.sx * g.sy);
  auto passes = [&](double sigma_mm) {
    return static_cast<int>(std::lround(2.0 * std::pow(sigma_mm / px_mm, 2)));
  };
  std::vector<float> f3 = f;
  r2::binomialBlur(g, f3, std::max(passes(1.5) - light, light > passes(0.6) ? 1 : 0));
  std::vector<uint8_t> dense(g.size());
  for (size_t q = 0; q < g.size(); ++q) dense[q] = f3[q] > p.trabecular_hu;
  // Marrow near the threshold is speckled: close it into a solid region, then pull back the
  // outward spread of the heavy blur.
  dense = r2::erode(g, r2::close(g, dense, 1.5), 1.5);
  std::vector<uint8_t> bone(g.size());
  bool any_dense = false;
  for (size_t q = 0; q < g.size(); ++q) {
    bone[q] = f[q] > p.bone_hu || dense[q];
    any_dense = any_dense || dense[q];
  }
  filled = filledRing(g, p, bone, px_mm);
  if (any_dense) fillNearThresholdGaps(g, p, f, dense, filled);
  return filled;
}

// The body's core: `filled` opened so only a body-sized part survives, as labelled
// components; `dist` the squared distance map of `filled`, `regrow` how far to grow the core
// back (mm). False when nothing survives.
bool openedCore(const r2::Grid2& g, const SliceParams& p, const std::vector<uint8_t>& filled,
                std::vector<float>& dist, double& regrow, std::vector<int>& comps,
                std::vector<long>& comp_area) {
  // Bridged rings may have swallowed the canal (a broken posterior wall joins both holes):
  // open with 60 % of the largest inscribed radius, which only the body survives, and grow
  // back less.
  double open_r = p.open_mm;
  regrow = p.open_mm + 0.5;
  // One distance map of `filled` serves the inscribed radius, the opening's erosion and the
  // component choice below.
  dist = r2::edtSquared(g, filled);
  if (p.ring_bridge_mm > 0 && p.reshape_bridged) {
    double rmax = std::sqrt(static_cast<double>(*std::max_element(dist.begin(), dist.end())));
    open_r = std::max(p.open_mm, 0.6 * rmax);
    regrow = 3.0;
  }
  std::vector<uint8_t> eroded(g.size());
  {
    const float r2v = static_cast<float>(open_r * open_r);  // as r2::erode
    for (size_t q = 0; q < g.size(); ++q) eroded[q] = dist[q] > r2v;
  }
  auto opened = r2::dilate(g, eroded, open_r);
  comps = r2::components(g, opened, comp_area);
  return comp_area.size() > 1;
}

// The component with the largest inscribed disk near the expected centre (cx, cy; lateral
// offsets cost more); 0 when none qualifies. `best_r`: each component's inscribed radius.
int pickBodyComponent(const Volume& v, int i0, int j0, const r2::Grid2& g, const SliceParams& p, double cx,
                      double cy, const std::vector<float>& dist, const std::vector<int>& comps,
                      const std::vector<long>& comp_area, std::vector<double>& best_r) {
  // Choose the component with the largest inscribed disk, preferring ones near the centre.
  best_r.assign(comp_area.size(), 0);
  for (size_t q = 0; q < g.size(); ++q)
    if (comps[q]) best_r[comps[q]] = std::max(best_r[comps[q]], std::sqrt(static_cast<double>(dist[q])));
  int pick = 0;
  double pick_score = 0;
  for (size_t c = 1; c < comp_area.size(); ++c) {
    if (best_r[c] < p.min_radius_mm) continue;
    // centroid distance to the expected centre
    double sx = 0, sy = 0;
    long n = 0;
    for (size_t q = 0; q < g.size(); ++q)
      if (comps[q] == static_cast<int>(c)) {
        sx += (q % g.nx);
        sy += (q / g.nx);
        ++n;
      }
    double ccx = v.x(i0 + sx / n), ccy = v.y(j0 + sy / n);
    // The column runs near the expected centre: lateral offsets cost far more than
    // antero-posterior ones (the track may sit on the posterior arch, behind the body).
    if (std::abs(ccx - cx) > p.max_lateral_mm) continue;  // hips, ilium, scapulae
    double d = std::hypot(ccx - cx, (ccy - cy) / 2.5);
    double score = best_r[c] * best_r[c] * std::exp(-d / 12.0);
    if (score > pick_score) {
      pick_score = score;
      pick = static_cast<int>(c);
    }
  }
  return pick;
}

// Small holes that are marrow (near the core's centre) filled into `filled` and `marrow`;
// `canal_front`: the first row of an enclosed canal behind the body (g.ny when none).
void fillMarrowHoles(const r2::Grid2& g, const std::vector<uint8_t>& body, const std::vector<float>& dist,
                     double rcore, std::vector<uint8_t>& filled, std::vector<uint8_t>& marrow,
                     int& canal_front) {
  canal_front = g.ny;  // first row (from the front) of an enclosed canal, if one is seen
  // Holes too small to count as marrow on their own (< min_hole_mm2) may still be marrow: the
  // sparse part of a body whose other part is dense bone. Those whose centre lies within the
  // core's inscribed radius of the core's centre are filled; the canal lies behind the body.
  {
    // Centre of the core's largest inscribed disk: inside the body proper, never on the arch.
    double bx = 0, by = 0;
    float dmax = -1;
    for (size_t q = 0; q < g.size(); ++q)
      if (body[q] && dist[q] > dmax) {
        dmax = dist[q];
        bx = static_cast<double>(q % g.nx);
        by = static_cast<double>(q / g.nx);
      }
    std::vector<uint8_t> empty(g.size());
    marrow.assign(g.size(), 0);
    for (size_t q = 0; q < g.size(); ++q) empty[q] = !filled[q];
    std::vector<long> ha;
    auto hc = r2::components(g, empty, ha);
    std::vector<double> hx(ha.size(), 0), hy(ha.size(), 0);
    std::vector<uint8_t> border(ha.size(), 0);
    for (size_t q = 0; q < g.size(); ++q) {
      if (!hc[q]) continue;
      int i = static_cast<int>(q % g.nx), j = static_cast<int>(q / g.nx);
      hx[hc[q]] += i;
      hy[hc[q]] += j;
      if (i == 0 || j == 0 || i == g.nx - 1 || j == g.ny - 1) border[hc[q]] = 1;
    }
    std::vector<uint8_t> take(ha.size(), 0);
    bool any = false;
    for (size_t c = 1; c < ha.size(); ++c) {
      if (border[c] || ha[c] == 0) continue;
      double ddx = (hx[c] / ha[c] - bx) * g.sx, ddy = (hy[c] / ha[c] - by) * g.sy;  // +y: posterior
      if (std::hypot(ddx, ddy) < rcore && ddy < 0.5 * rcore) {
        take[c] = any = true;
      } else if (ddy > 0.5 * rcore && std::abs(ddx) < rcore && ha[c] * g.sx * g.sy >= 40.0) {
        // The enclosed canal behind the body: its front edge is the body's back.
        for (size_t q = 0; q < g.size(); ++q)
          if (hc[q] == static_cast<int>(c)) canal_front = std::min(canal_front, static_cast<int>(q / g.nx));
      }
    }
    if (any)
      for (size_t q = 0; q < g.size(); ++q)
        if (hc[q] && take[hc[q]]) filled[q] = marrow[q] = 1;
  }
}

// The core grown back to the body (inside the filled bone, in front of the canal), opened,
// its largest part.
void regrowBody(const r2::Grid2& g, double regrow, const std::vector<uint8_t>& filled,
                const std::vector<uint8_t>& marrow, int canal_front, std::vector<uint8_t>& body) {
  // Reconstruct the corners the opening rounded off, but stay inside the filled bone.
  auto grown = r2::dilate(g, body, regrow);
  for (size_t q = 0; q < g.size(); ++q)
    body[q] = ((grown[q] && filled[q]) || marrow[q]) && static_cast<int>(q / g.nx) < canal_front;
  body = r2::open(g, body, 1.5);  // no thin stubs of pedicles or rib heads
  // Keep only the connected part containing the picked core.
  {
    std::vector<long> a2;
    auto c2 = r2::components(g, body, a2);
    int keep = 0;
    long best = 0;
    for (size_t c = 1; c < a2.size(); ++c)
      if (a2[c] > best) {
        best = a2[c];
        keep = static_cast<int>(c);
      }
    for (size_t q = 0; q < g.size(); ++q) body[q] = c2[q] == keep;
  }
}

void partialVolumeRim(const r2::Grid2& g, const SliceParams& p, const std::vector<float>& f,
                      std::vector<uint8_t>& body) {
  // Partial-volume boundary: a rim pixel belongs to the body when it is closer to the rim's
  // own level (cortex) than to the soft tissue just outside (the half-maximum rule). Only
  // for fine pixels: at 3 mm the outer layer is a third of the body and the rule misfires.
  if (std::max(g.sx, g.sy) <= 1.2) {
    auto inner = r2::erode(g, body, std::max(g.sx, g.sy) + 1e-3);  // all but the outer pixel layer
    auto outer = r2::dilate(g, body, 2.0 * std::max(g.sx, g.sy));
    std::vector<float> rim, outside;
    for (size_t q = 0; q < g.size(); ++q) {
      if (body[q] && !inner[q])
        rim.push_back(f[q]);
      else if (outer[q] && !body[q] && f[q] < p.bone_hu)
        outside.push_back(f[q]);
    }
    if (rim.size() > 8 && outside.size() > 8) {
      std::nth_element(rim.begin(), rim.begin() + rim.size() * 3 / 4, rim.end());
      std::nth_element(outside.begin(), outside.begin() + outside.size() / 2, outside.end());
      float t = 0.5f * (rim[rim.size() * 3 / 4] + outside[outside.size() / 2]);
      for (size_t q = 0; q < g.size(); ++q)
        if (body[q] && !inner[q] && f[q] < t) body[q] = 0;
      body = r2::fillHoles(g, body);
    }
  }
}

// The body's centre and half width before the posterior cut; false for an empty body.
bool provisionalCentre(const Volume& v, int i0, int j0, const r2::Grid2& g, const std::vector<uint8_t>& body,
                       SliceBody& out) {
  // Provisional centre (before the canal cut) to find the canal behind the body.
  {
    double sx0 = 0, sy0 = 0;
    long n0 = 0;
    int xmin0 = g.nx, xmax0 = -1;
    for (size_t q = 0; q < g.size(); ++q)
      if (body[q]) {
        sx0 += q % g.nx;
        sy0 += q / g.nx;
        ++n0;
        xmin0 = std::min(xmin0, static_cast<int>(q % g.nx));
        xmax0 = std::max(xmax0, static_cast<int>(q % g.nx));
      }
    if (n0 == 0) return false;
    out.cx = v.x(i0 + sx0 / n0);
    out.cy = v.y(j0 + sy0 / n0);
    out.half_width = 0.5 * (xmax0 - xmin0 + 1) * g.sx;
  }
  return true;
}

void cutBehindPosteriorWall(const Volume& v, int i0, int j0, const r2::Grid2& g, const std::vector<float>& f,
                            const SliceBody& out, std::vector<uint8_t>& body) {
  // Cut what lies behind the body's posterior wall (pedicle roots, a closed canal): walk
  // back from the centre along the midline until the body ends; everything from that wall
  // back goes (the wall's row itself is more canal than cortex).
  {
    int ci = static_cast<int>(std::lround((out.cx - v.ox) / v.sx)) - i0;
    int cj = static_cast<int>(std::lround((out.cy - v.oy) / v.sy)) - j0;
    int band = std::max(1, static_cast<int>(std::lround(2.0 / g.sx)));
    int wall = -1;
    for (int j = std::max(0, cj); j < g.ny && wall < 0; ++j) {
      int in = 0, tot = 0;
      for (int i = std::max(0, ci - band); i <= std::min(g.nx - 1, ci + band); ++i) {
        in += body[static_cast<size_t>(j) * g.nx + i];
        ++tot;
      }
      if (2 * in < tot) wall = j;
    }
    // Sharper where the posterior cortex shows: the half-maximum between the cortex peak on
    // the midline and the dark canal behind it.
    {
      std::vector<double> prof(g.ny, 0);
      for (int j = 0; j < g.ny; ++j) {
        double sum = 0;
        int n = 0;
        for (int i = std::max(0, ci - band); i <= std::min(g.nx - 1, ci + band); ++i) {
          sum += f[static_cast<size_t>(j) * g.nx + i];
          ++n;
        }
        prof[j] = n ? sum / n : 0;
      }
      // The canal first (cerebrospinal fluid, darker than any marrow), then the brightest row
      // in front of it: a dense spot inside the body (a bone island, the basivertebral vein's
      // wall) with fatty marrow behind it is not the posterior wall.
      int ja = std::clamp(cj + static_cast<int>(std::lround(6.0 / g.sy)), 0, g.ny - 1);
      int jb = std::clamp(cj + static_cast<int>(std::lround(40.0 / g.sy)), 0, g.ny - 1);
      int jcanal = -1;
      for (int j = ja; j <= jb && jcanal < 0; ++j)
        if (prof[j] < kCanalHu) jcanal = j;
      int jmax = ja;
      if (jcanal >= 0) {
        jmax = std::max(ja, jcanal - static_cast<int>(std::lround(12.0 / g.sy)));
        for (int j = jmax; j < jcanal; ++j)
          if (prof[j] > prof[jmax]) jmax = j;
      }
      double lo = jcanal >= 0 ? prof[jcanal] : prof[jmax];
      if (jcanal > jmax && prof[jmax] > 150 && prof[jmax] - lo > 80) {
        double half = 0.5 * (prof[jmax] + lo);
        int jcut = jmax + 1;
        while (jcut < g.ny && prof[jcut] >= half) ++jcut;
        if (wall < 0 || jcut < wall) wall = jcut;
      }
    }
    if (wall > 0) {
      double cut = wall;
      for (size_t q = 0; q < g.size(); ++q)
        if (body[q] && static_cast<double>(q / g.nx) >= cut) body[q] = 0;
    }
    body = r2::fillHoles(g, body);
    // Rib heads and transverse-process roots that meet the body's posterolateral corners
    // without a narrow neck survive the opening: behind the centre no row may reach further
    // left or right than the rows in front of it do (+ 2 mm).
    {
      double sy0 = 0;
      long n0 = 0;
      for (size_t q = 0; q < g.size(); ++q)
        if (body[q]) {
          sy0 += static_cast<double>(q / g.nx);
          ++n0;
        }
      if (n0 > 0) {
        const int jc = static_cast<int>(std::lround(sy0 / n0));
        int xl = g.nx, xr = -1;
        for (int j = 0; j <= std::min(jc, g.ny - 1); ++j)
          for (int i = 0; i < g.nx; ++i)
            if (body[static_cast<size_t>(j) * g.nx + i]) {
              xl = std::min(xl, i);
              xr = std::max(xr, i);
            }
        const int m = static_cast<int>(std::lround(2.0 / g.sx));
        if (xr >= xl)
          for (int j = jc + 1; j < g.ny; ++j)
            for (int i = 0; i < g.nx; ++i)
              if (i < xl - m || i > xr + m) body[static_cast<size_t>(j) * g.nx + i] = 0;
      }
    }
    // the cut can leave islands (pedicle stumps): keep the largest part
    std::vector<long> a4;
    auto c4 = r2::components(g, body, a4);
    int keep = 0;
    for (size_t c = 1; c < a4.size(); ++c)
      if (!keep || a4[c] > a4[keep]) keep = static_cast<int>(c);
    for (size_t q = 0; q < g.size(); ++q) body[q] = keep && c4[q] == keep;
  }
}

// Centre, extent, area, inscribed radius and the widest filled row through the centre (the
// sacral alae); false for an empty body.
bool measureSliceBody(const Volume& v, int i0, int j0, const r2::Grid2& g, const std::vector<uint8_t>& body,
                      const std::vector<float>& dist, const std::vector<uint8_t>& filled, SliceBody& out) {
  // Body centre and extent.
  double sx = 0, sy = 0;
  long n = 0;
  int xmin = g.nx, xmax = -1;
  for (size_t q = 0; q < g.size(); ++q)
    if (body[q]) {
      int x = static_cast<int>(q % g.nx), y = static_cast<int>(q / g.nx);
      sx += x;
      sy += y;
      ++n;
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
    }
  if (n == 0) return false;
  out.cx = v.x(i0 + sx / n);
  out.cy = v.y(j0 + sy / n);
  out.half_width = 0.5 * (xmax - xmin + 1) * g.sx;
  out.area = n * g.sx * g.sy;
  double rmax = 0;
  for (size_t q = 0; q < g.size(); ++q)
    if (body[q]) rmax = std::max(rmax, static_cast<double>(dist[q]));
  out.r_max = std::sqrt(rmax);
  // Width of the filled bone along the row through the body centre: the sacral alae (marrow
  // enclosed by their cortex) make it far wider than any lumbar body.
  // (widest such row from 10 mm in front of the centre to 12 mm behind it: the alae sit a
  // little behind the body's centre, more so in a tilted sacrum).
  {
    int ri = std::clamp(static_cast<int>(std::lround((out.cx - v.ox) / v.sx)) - i0, 0, g.nx - 1);
    int jc = static_cast<int>(std::lround((out.cy - v.oy) / v.sy)) - j0;
    int ja = std::max(0, jc - static_cast<int>(std::lround(10.0 / g.sy)));
    int jb = std::min(g.ny - 1, jc + static_cast<int>(std::lround(12.0 / g.sy)));
    for (int rj = ja; rj <= jb; ++rj) {
      const uint8_t* row = filled.data() + static_cast<size_t>(rj) * g.nx;
      if (!row[ri]) continue;
      int a = ri, b = ri;
      while (a > 0 && row[a - 1]) --a;
      while (b + 1 < g.nx && row[b + 1]) ++b;
      if ((b - a + 1) * g.sx > out.row_width) {
        out.row_width = (b - a + 1) * g.sx;
        // canonical +x is the patient's left; index 0 of the window may be the image's edge
        out.row_right_mm = (ri - a + 0.5) * g.sx;
        out.row_left_mm = (b - ri + 0.5) * g.sx;
        out.row_cut_right = a == 0 && i0 == 0;
        out.row_cut_left = b == g.nx - 1 && i0 + g.nx == v.nx;
      }
    }
  }
  return true;
}

SliceBody analyseSliceOnce(const Volume& v, int k, double cx, double cy, const SliceParams& p,
                           bool want_mask) {
  SliceBody out;
  int i0 = std::max(0, static_cast<int>(std::floor((cx - p.half_x - v.ox) / v.sx)));
  int i1 = std::min(v.nx - 1, static_cast<int>(std::ceil((cx + p.half_x - v.ox) / v.sx)));
  int j0 = std::max(0, static_cast<int>(std::floor((cy - p.y_front - v.oy) / v.sy)));
  int j1 = std::min(v.ny - 1, static_cast<int>(std::ceil((cy + p.y_back - v.oy) / v.sy)));
  if (i1 - i0 < 8 || j1 - j0 < 8 || k < 0 || k >= v.nz) return out;
  r2::Grid2 g{i1 - i0 + 1, j1 - j0 + 1, v.sx, v.sy};
  std::vector<float> f;
  std::vector<uint8_t> filled = marrowFilledBone(v, k, i0, j0, g, p, f);
  std::vector<float> dist;
  double regrow = 0;
  std::vector<int> comps;
  std::vector<long> comp_area;
  if (!openedCore(g, p, filled, dist, regrow, comps, comp_area)) return out;
  std::vector<double> best_r;
  const int pick = pickBodyComponent(v, i0, j0, g, p, cx, cy, dist, comps, comp_area, best_r);
  if (!pick) return out;
  std::vector<uint8_t> body(g.size());
  for (size_t q = 0; q < g.size(); ++q) body[q] = comps[q] == pick;
  std::vector<uint8_t> marrow;
  int canal_front = g.ny;
  fillMarrowHoles(g, body, dist, best_r[pick], filled, marrow, canal_front);
  regrowBody(g, regrow, filled, marrow, canal_front, body);
  partialVolumeRim(g, p, f, body);
  if (!provisionalCentre(v, i0, j0, g, body, out)) return out;
  cutBehindPosteriorWall(v, i0, j0, g, f, out, body);
  if (!measureSliceBody(v, i0, j0, g, body, dist, filled, out)) return out;
  out.valid = out.r_max >= p.min_radius_mm;
  if (want_mask) {
    out.wx0 = i0;
    out.wy0 = j0;
    out.wnx = g.nx;
    out.wny = g.ny;
    out.mask = std::move(body);
  }
  return out;
}
}  // namespace

SliceBody analyseSlice(const Volume& v, int k, double cx, double cy, const SliceParams& p, bool want_mask) {
  SliceBody out = analyseSliceOnce(v, k, cx, cy, p, want_mask);
  if (out.valid && out.r_max >= kRetryBelowMm) return out;
  // Osteoporotic bodies: a thin cortex (< 1 mm) around marrow near soft-tissue density breaks
  // up under the cortical threshold. Retry with a lower one and a wider closing, which still
  // keeps muscle (< 80 HU) and the canal out.
  SliceParams q = p;
  q.bone_hu = p.low_bone_hu;
  q.ring_bridge_mm = 2.5;
  q.reshape_bridged = true;
  SliceBody low = analyseSliceOnce(v, k, cx, cy, q, want_mask);
  SliceBody ring = !out.valid || (low.valid && low.r_max > out.r_max) ? low : out;
  // Very noisy scans (low dose): the cortex may not survive smoothing as a ring at all, so
  // the finder merges body and canal (an inscribed disk wider than any lumbar body's) or
  // keeps a piece of the arch. The radial trace takes over there, seeded at the ring's
  // centre, at the expected centre and 25 mm in front of it (the track may lie on the arch).
  const bool sacral = ring.valid && ring.row_width > kSacralRowMm;
  if (p.noise_hu <= kColumnNoiseHu || sacral ||
      (ring.valid && ring.r_max >= kRetryBelowMm && ring.r_max <= kMergedAboveMm))
    return ring;
  std::vector<std::array<double, 2>> seeds{{cx, cy}, {cx, cy - 25.0}};
  if (ring.valid) seeds.push_back({ring.cx, ring.cy});
  SliceBody radial = radialSlice(v, k, seeds, p, want_mask);
  return radial.valid ? radial : ring;
}

namespace {
// Blood pools in trackSpine: a coarse cell at least this full of > 100 HU voxels, with their
// mean at least kPoolMinHu (enhanced blood in the arterial phase; portal-venous blood, 150-200
// HU, does not mislead the track) and their spread at most kPoolMaxSd (pixel noise of a
// uniform region: twice the scan's pixel noise, within 45-90 HU; cortex against marrow
// spreads by > 200 HU), counts kPoolWeight of bone.
constexpr double kPoolFill = 0.9;
constexpr double kPoolMinHu = 230;
constexpr double kPoolMaxHu = 900;  // denser is metal (>= 2500 HU) or cortex, never blood
constexpr double kPoolMinSd = 45;
constexpr double kPoolNoiseFactor = 2.0;
constexpr double kPoolMaxSd = 90;  // low-dose scans (noise 60-100 HU): cortex cells stay bone
constexpr float kPoolWeight = 0.15f;
}  // namespace

std::vector<TrackPoint> trackSpine(const Volume& v) {
  // Coarse cells of about 4 mm; slabs of about 12 mm.
  int bx = std::max(1, static_cast<int>(std::lround(4.0 / v.sx)));
  int by = std::max(1, static_cast<int>(std::lround(4.0 / v.sy)));
  int cnx = (v.nx + bx - 1) / bx, cny = (v.ny + by - 1) / by;
  int slab = std::max(1, static_cast<int>(std::lround(12.0 / v.sz)));
  int ns = (v.nz + slab - 1) / slab;
  r2::Grid2 g{cnx, cny, bx * v.sx, by * v.sy};
  std::vector<std::vector<float>> maps(ns, std::vector<float>(g.size(), 0.f));
  std::vector<double> body_x(ns, 0), body_y(ns, 0);
  int step = std::max(1, slab / 3);
  // Per cell: samples, and of them the dense ones (> 100 HU) with their sum and sum of squares.
  std::vector<double> n_all(g.size()), n_dense(g.size()), s1(g.size()), s2(g.size());
  const double pool_max_sd = std::clamp(kPoolNoiseFactor * noiseLevel(v), kPoolMinSd, kPoolMaxSd);
  for (int s = 0; s < ns; ++s) {
    double bsx = 0, bsy = 0;
    long bn = 0;
    auto& m = maps[s];
    std::fill(n_all.begin(), n_all.end(), 0.0);
    std::fill(n_dense.begin(), n_dense.end(), 0.0);
    std::fill(s1.begin(), s1.end(), 0.0);
    std::fill(s2.begin(), s2.end(), 0.0);
    for (int k = s * slab; k < std::min(v.nz, (s + 1) * slab); k += step)
      for (int j = 0; j < v.ny; ++j) {
        const int16_t* row = v.hu + (static_cast<size_t>(k) * v.ny + j) * v.nx;
        const size_t crow = static_cast<size_t>(j / by) * cnx;
        float* mrow = m.data() + crow;
        for (int i = 0; i < v.nx; ++i) {
          int h = row[i];
          if (h > -400) {
            bsx += i;
            bsy += j;
            ++bn;
          }
          const size_t c = crow + i / bx;
          n_all[c] += 1;
          if (h > 100) {
            mrow[i / bx] += std::min(1.f, (h - 100) / 200.f);
            n_dense[c] += 1;
            s1[c] += h;
            s2[c] += static_cast<double>(h) * h;
          }
        }
      }
    body_x[s] = bn ? v.x(bsx / bn) : v.x(v.nx / 2.0);
    body_y[s] = bn ? v.y(bsy / bn) : v.y(v.ny / 2.0);
    // Contrast-filled blood (an arterial-phase aorta or heart at 250-700 HU) is as dense as
    // bone but uniform: a cell filled with it is nearly all dense with a spread near the pixel
    // noise, where bone mixes cortex, marrow and soft tissue. Such cells count little, so the
    // track keeps to the column (the arterial phantom and a real chest CTA followed the aorta).
    for (size_t c = 0; c < g.size(); ++c) {
      if (n_dense[c] < kPoolFill * n_all[c] || n_dense[c] < 4) continue;
      const double mean = s1[c] / n_dense[c];
      const double sd = std::sqrt(std::max(0.0, s2[c] / n_dense[c] - mean * mean));
      if (mean >= kPoolMinHu && mean <= kPoolMaxHu && sd <= pool_max_sd) m[c] *= kPoolWeight;
    }
    r2::binomialBlur(g, m, 3);
  }
  auto cellX = [&](int c) { return v.ox + (c + 0.5) * bx * v.sx - 0.5 * v.sx; };
  auto cellY = [&](int c) { return v.oy + (c + 0.5) * by * v.sy - 0.5 * v.sy; };
  auto prior = [&](int s, double x, double y) {
    double dx = std::abs(x - body_x[s]);
    double wx = dx < 40 ? 1.0 : std::exp(-(dx - 40) / 15.0);
    double wy = y > body_y[s] - 30 ? 1.0 : std::exp(-(body_y[s] - 30 - y) / 20.0);
    return wx * wy;
  };
  // Start from the slab with the strongest prior-weighted peak.
  int s0 = 0;
  double best = -1;
  std::vector<std::pair<int, int>> peak(ns, {0, 0});
  for (int s = 0; s < ns; ++s) {
    for (int cj = 0; cj < cny; ++cj)
      for (int ci = 0; ci < cnx; ++ci) {
        double val = maps[s][static_cast<size_t>(cj) * cnx + ci] * prior(s, cellX(ci), cellY(cj));
        if (val > best) {
          best = val;
          s0 = s;
          peak[s] = {ci, cj};
        }
      }
  }
  std::vector<TrackPoint> slabs(ns);
  slabs[s0] = {cellX(peak[s0].first), cellY(peak[s0].second), best};
  auto follow = [&](int from, int to) {
    const TrackPoint& prev = slabs[from];
    double bestv = -1;
    TrackPoint tp = prev;
    for (int cj = 0; cj < cny; ++cj)
      for (int ci = 0; ci < cnx; ++ci) {
        double x = cellX(ci), y = cellY(cj);
        double d = std::hypot(x - prev.x, y - prev.y);
        if (d > 15) continue;
        double val = maps[to][static_cast<size_t>(cj) * cnx + ci] * std::exp(-d / 20.0) * prior(to, x, y);
        if (val > bestv) {
          bestv = val;
          tp = {x, y, maps[to][static_cast<size_t>(cj) * cnx + ci]};
        }
      }
    if (bestv < 0.15 * best) tp = {prev.x, prev.y, 0.0};  // lost (below the coccyx, say): hold
    slabs[to] = tp;
  };
  for (int s = s0 + 1; s < ns; ++s) follow(s - 1, s);
  for (int s = s0 - 1; s >= 0; --s) follow(s + 1, s);
  // Median over 5 slabs against single-slab jumps.
  {
    std::vector<TrackPoint> sm = slabs;
    for (int s = 0; s < ns; ++s) {
      std::vector<double> xs, ys;
      for (int t = std::max(0, s - 2); t <= std::min(ns - 1, s + 2); ++t) {
        xs.push_back(slabs[t].x);
        ys.push_back(slabs[t].y);
      }
      std::nth_element(xs.begin(), xs.begin() + xs.size() / 2, xs.end());
      std::nth_element(ys.begin(), ys.begin() + ys.size() / 2, ys.end());
      sm[s].x = xs[xs.size() / 2];
      sm[s].y = ys[ys.size() / 2];
    }
    slabs = sm;
  }
  // Interpolate to slices.
  std::vector<TrackPoint> out(v.nz);
  for (int k = 0; k < v.nz; ++k) {
    double fs = (k + 0.5) / slab - 0.5;
    int a = std::clamp(static_cast<int>(std::floor(fs)), 0, ns - 1);
    int b = std::min(ns - 1, a + 1);
    double t = std::clamp(fs - a, 0.0, 1.0);
    out[k] = {slabs[a].x * (1 - t) + slabs[b].x * t, slabs[a].y * (1 - t) + slabs[b].y * t,
              slabs[a].strength * (1 - t) + slabs[b].strength * t};
  }
  return out;
}

}  // namespace ctbmd::spine

namespace ctbmd::spine {

namespace {
// A core-profile peak lower than this fraction of the median peak (above the profile's
// floor) is marrow texture, not an endplate.
constexpr double kMinEndplatePeak = 0.4;

double sampleHu(const Volume& v, double x, double y, double z) {
  double fi = (x - v.ox) / v.sx, fj = (y - v.oy) / v.sy, fk = (z - v.oz) / v.sz;
  int i = static_cast<int>(std::floor(fi)), j = static_cast<int>(std::floor(fj)),
      k = static_cast<int>(std::floor(fk));
  if (i < 0 || j < 0 || k < 0 || i + 1 >= v.nx || j + 1 >= v.ny || k + 1 >= v.nz) {
    i = std::clamp(static_cast<int>(std::lround(fi)), 0, v.nx - 1);
    j = std::clamp(static_cast<int>(std::lround(fj)), 0, v.ny - 1);
    k = std::clamp(static_cast<int>(std::lround(fk)), 0, v.nz - 1);
    return v.at(i, j, k);
  }
  double a = fi - i, b = fj - j, c = fk - k;
  double r = 0;
  for (int dk = 0; dk < 2; ++dk)
    for (int dj = 0; dj < 2; ++dj)
      for (int di = 0; di < 2; ++di)
        r += (di ? a : 1 - a) * (dj ? b : 1 - b) * (dk ? c : 1 - c) * v.at(i + di, j + dj, k + dk);
  return r;
}

std::vector<double> movingMedian(const std::vector<double>& x, int half) {
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    std::vector<double> w;
    for (int d = -half; d <= half; ++d) {
      long q = static_cast<long>(i) + d;
      if (q >= 0 && q < static_cast<long>(x.size())) w.push_back(x[q]);
    }
    std::nth_element(w.begin(), w.begin() + w.size() / 2, w.end());
    out[i] = w[w.size() / 2];
  }
  return out;
}

std::vector<double> movingMean(const std::vector<double>& x, int half) {
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double s = 0;
    int n = 0;
    for (int d = -half; d <= half; ++d) {
      long q = static_cast<long>(i) + d;
      if (q >= 0 && q < static_cast<long>(x.size())) {
        s += x[q];
        ++n;
      }
    }
    out[i] = s / n;
  }
  return out;
}
}  // namespace

double noiseLevel(const Volume& v) {
  if (v.nx < 8 || v.ny < 8 || v.nz < 1) return 0;
  const int ns = std::min(v.nz, 12);
  std::vector<double> per_slice(static_cast<size_t>(ns), 0.0);
  parallelFor(ns, [&](int s) {
    const int k = static_cast<int>((s + 0.5) * v.nz / ns);
    const int step = std::max(1, std::min(v.nx, v.ny) / 128);  // ~128x128 samples per slice
    std::vector<float> r;
    for (int j = 1; j < v.ny - 1; j += step)
      for (int i = 1; i < v.nx - 1; i += step) {
        double sum = 0;
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di) sum += v.at(i + di, j + dj, k);
        const double mean = sum / 9.0;
        if (mean < -100 || mean > 150) continue;
        r.push_back(static_cast<float>(v.at(i, j, k) - mean));
      }
    if (r.size() < 200) return;
    auto mid = r.begin() + static_cast<long>(r.size() / 2);
    std::nth_element(r.begin(), mid, r.end());
    const float med = *mid;
    for (auto& x : r) x = std::abs(x - med);
    std::nth_element(r.begin(), mid, r.end());
    // MAD -> SD, and the 3x3 mean includes the pixel itself (residual variance 8/9 of it)
    per_slice[static_cast<size_t>(s)] = 1.4826 * *mid * std::sqrt(9.0 / 8.0);
  });
  std::vector<double> ok;
  for (double x : per_slice)
    if (x > 0) ok.push_back(x);
  if (ok.empty()) return 0;
  std::nth_element(ok.begin(), ok.begin() + static_cast<long>(ok.size() / 2), ok.end());
  return ok[ok.size() / 2];
}

SliceParams sliceParamsFor(const Volume& v) {
  SliceParams sp;
  sp.noise_hu = noiseLevel(v);
  sp.trabecular_hu = trabecularThreshold(v, sp.noise_hu);
  sp.z_half = columnAveraging(sp.noise_hu, v.sz);
  return sp;
}

int columnAveraging(double noise_hu, double slice_mm) {
  // Above ~50 HU per voxel, in-plane smoothing alone would erase a thin cortex: average
  // enough slices to bring the noise towards 50 HU, over at most 5 mm of the column.
  if (noise_hu <= kColumnNoiseHu) return 0;
  const double n = std::pow(noise_hu / kColumnNoiseHu, 2);
  int h = static_cast<int>(std::ceil((n - 1) / 2));
  while (h > 0 && (2 * h + 1) * slice_mm > 5.0 + 1e-6) --h;
  return h;
}

double trabecularThreshold(const Volume& v, double noise_hu) {
  std::vector<int> hist(301, 0);  // -50..250 HU
  size_t n = static_cast<size_t>(v.nx) * v.ny * v.nz, step = std::max<size_t>(1, n / 3000000);
  long total = 0;
  for (size_t i = 0; i < n; i += step) {
    int h = v.hu[i];
    if (h >= -50 && h <= 250) {
      ++hist[h + 50];
      ++total;
    }
  }
  if (total == 0) return 100.0;
  long acc = 0;
  int p50 = 250, p90 = 250;
  for (int b = 0; b <= 300; ++b) {
    acc += hist[b];
    if (p50 == 250 && acc >= 0.5 * total) p50 = b - 50;
    if (acc >= 0.9 * total) {
      p90 = b - 50;
      break;
    }
  }
  // The tissue's own spread above its median, without the pixel noise's share.
  const double spread = (p90 - p50) / 1.2816;
  const double tissue = std::sqrt(std::max(0.0, spread * spread - noise_hu * noise_hu));
  const double p90_tissue = std::min<double>(p90, p50 + 1.2816 * tissue);
  return std::max(100.0, p90_tissue + 15.0);
}

int dropStraySlices(const Volume& v, std::vector<SliceBody>& sb) {
  const int half = std::max(2, static_cast<int>(std::lround(25.0 / v.sz)));
  std::vector<uint8_t> stray(sb.size(), 0);
  std::vector<double> xs, ys, rs;
  for (int k = 0; k < static_cast<int>(sb.size()); ++k) {
    if (!sb[k].valid) continue;
    xs.clear();
    ys.clear();
    rs.clear();
    for (int t = std::max(0, k - half); t <= std::min(static_cast<int>(sb.size()) - 1, k + half); ++t)
      if (sb[t].valid) {
        xs.push_back(sb[t].cx);
        ys.push_back(sb[t].cy);
        rs.push_back(sb[t].r_max);
      }
    if (xs.size() < 5) continue;
    double mx = stats::median(xs), my = stats::median(ys), mr = stats::median(rs);
    stray[k] = sb[k].r_max < 0.7 * mr && std::hypot(sb[k].cx - mx, sb[k].cy - my) > 12.0;
  }
  int n = 0;
  for (size_t k = 0; k < sb.size(); ++k)
    if (stray[k]) {
      sb[k].valid = false;
      ++n;
    }
  return n;
}

std::vector<CurvePoint> centreline(const Volume& v, const std::vector<SliceBody>& sb) {
  std::vector<int> ks;
  for (int k = 0; k < v.nz; ++k)
    if (sb[k].valid) ks.push_back(k);
  std::vector<CurvePoint> out;
  if (ks.size() < 3) return out;
  std::vector<double> xs(v.nz), ys(v.nz);
  std::vector<uint8_t> sup(v.nz, 0);
  int half = std::max(1, static_cast<int>(std::lround(10.0 / v.sz)));
  for (int k = 0; k < v.nz; ++k) {
    // nearest valid slices for interpolation
    auto it = std::lower_bound(ks.begin(), ks.end(), k);
    int hi = it == ks.end() ? ks.back() : *it;
    int lo = it == ks.begin() ? ks.front() : *(it - 1);
    if (it != ks.end() && *it == k) lo = hi = k;
    double t = hi == lo ? 0 : double(k - lo) / (hi - lo);
    xs[k] = sb[lo].cx * (1 - t) + sb[hi].cx * t;
    ys[k] = sb[lo].cy * (1 - t) + sb[hi].cy * t;
    sup[k] = std::min(std::abs(k - lo), std::abs(hi - k)) <= half || k == lo;
  }
  int mh = std::max(1, static_cast<int>(std::lround(7.5 / v.sz)));
  int ah = std::max(1, static_cast<int>(std::lround(5.0 / v.sz)));
  // Left-right the column barely bends; antero-posteriorly it follows lordosis and the
  // sacral slope. Smooth x much more than y.
  int mhx = std::max(1, static_cast<int>(std::lround(20.0 / v.sz)));
  int ahx = std::max(1, static_cast<int>(std::lround(12.0 / v.sz)));
  xs = movingMean(movingMedian(xs, mhx), ahx);
  ys = movingMean(movingMedian(ys, mh), ah);
  // resample every 1 mm of arclength
  std::vector<double> cum(v.nz, 0);
  for (int k = 1; k < v.nz; ++k)
    cum[k] =
        cum[k - 1] + std::sqrt(std::pow(xs[k] - xs[k - 1], 2) + std::pow(ys[k] - ys[k - 1], 2) + v.sz * v.sz);
  int k = 0;
  for (double s = 0; s <= cum.back(); s += 1.0) {
    while (k + 1 < v.nz - 1 && cum[k + 1] < s) ++k;
    int k2 = std::min(v.nz - 1, k + 1);
    double t = cum[k2] > cum[k] ? (s - cum[k]) / (cum[k2] - cum[k]) : 0;
    CurvePoint p;
    p.x = xs[k] * (1 - t) + xs[k2] * t;
    p.y = ys[k] * (1 - t) + ys[k2] * t;
    p.z = v.z(k + t);
    p.s = s;
    p.supported = sup[k] || sup[k2];
    out.push_back(p);
  }
  // The column is nearly straight left-right: points that wander off sideways (into the
  // hips below the sacrum, say) are not spine.
  {
    std::vector<double> sx;
    for (const auto& p : out)
      if (p.supported) sx.push_back(p.x);
    if (!sx.empty()) {
      std::nth_element(sx.begin(), sx.begin() + sx.size() / 2, sx.end());
      double mx = sx[sx.size() / 2];
      for (auto& p : out) {
        if (std::abs(p.x - mx) > 30) p.supported = false;
        // short of that, hold the centreline near the column's midline: the ends of the
        // body track (sacral alae, a rib head) pull it sideways, the spine does not go there
        p.x = std::clamp(p.x, mx - 12.0, mx + 12.0);
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    size_t a = i >= 5 ? i - 5 : 0, b = std::min(out.size() - 1, i + 5);
    double tx = out[b].x - out[a].x, ty = out[b].y - out[a].y, tz = out[b].z - out[a].z;
    double n = std::sqrt(tx * tx + ty * ty + tz * tz);
    if (n <= 0) {
      tx = ty = 0;
      tz = n = 1;
    }
    out[i].tx = tx / n;
    out[i].ty = ty / n;
    out[i].tz = tz / n;
  }
  return out;
}

std::vector<double> coreProfile(const Volume& v, const std::vector<CurvePoint>& c) {
  std::vector<double> prof(c.size(), 0);
  for (size_t i = 0; i < c.size(); ++i) {
    const auto& p = c[i];
    // u: lateral axis perpendicular to the tangent; w = t x u
    double ux = 1 - p.tx * p.tx, uy = -p.tx * p.ty, uz = -p.tx * p.tz;
    double un = std::sqrt(ux * ux + uy * uy + uz * uz);
    ux /= un;
    uy /= un;
    uz /= un;
    double wx = p.ty * uz - p.tz * uy, wy = p.tz * ux - p.tx * uz, wz = p.tx * uy - p.ty * ux;
    double sum = 0;
    int n = 0;
    for (double a = -7; a <= 7; a += 1.75)
      for (double b = -7; b <= 7; b += 1.75) {
        if (a * a + b * b > 49) continue;
        sum += sampleHu(v, p.x + a * ux + b * wx, p.y + a * uy + b * wy, p.z + a * uz + b * wz);
        ++n;
      }
    prof[i] = sum / n;
  }
  return movingMean(prof, 1);
}

// A trough of the core profile between two endplate peaks.
struct Trough {
  int lo, hi, at;  // flanking peaks and the minimum between them
  double depth;
};

// The troughs between consecutive peaks of the smoothed profile `sm`.
std::vector<Trough> troughsBetween(const std::vector<double>& sm, const std::vector<int>& pk) {
  std::vector<Trough> t;
  for (size_t i = 1; i < pk.size(); ++i) {
    int at = pk[i - 1];
    for (int q = pk[i - 1]; q <= pk[i]; ++q)
      if (sm[q] < sm[at]) at = q;
    t.push_back({pk[i - 1], pk[i], at, std::min(sm[pk[i - 1]], sm[pk[i]]) - sm[at]});
  }
  return t;
}

// A trough that can be part of an unbroken disc/marrow chain: no wider than 45 mm, on the
// supported part of the spine.
bool chainableTrough(const std::vector<Trough>& troughs, const std::vector<double>& w,
                     const std::vector<CurvePoint>& c, size_t i) {
  return w[i] <= 45 && c[troughs[i].at].supported;
}

// The endplate peaks: local maxima, merged across shallow troughs (texture, noise), without
// peaks far lower than the endplates'.
std::vector<int> endplatePeaks(const std::vector<double>& sm) {
  const int n = static_cast<int>(sm.size());
  std::vector<int> peaks;
  // Peaks may lie just outside the supported stretch (the sacrum's endplate below the last
  // disc, say); only the troughs must be on the spine.
  for (int i = 2; i + 2 < n; ++i) {
    bool mx = true;
    for (int d = -2; d <= 2 && mx; ++d) mx = sm[i + d] <= sm[i] && (d >= 0 || sm[i + d] < sm[i]);
    if (mx) peaks.push_back(i);
  }
  // Merge peaks across shallow troughs (texture, noise) until every trough is real.
  const double min_depth = 20.0;  // HU; profile noise after the 7 mm disk average is a few HU
  while (true) {
    auto t = troughsBetween(sm, peaks);
    int worst = -1;
    for (size_t i = 0; i < t.size(); ++i)
      if (t[i].depth < min_depth && (worst < 0 || t[i].depth < t[worst].depth)) worst = static_cast<int>(i);
    if (worst < 0) break;
    // drop the lower of the two flanking peaks
    int drop = sm[t[worst].lo] < sm[t[worst].hi] ? worst : worst + 1;
    peaks.erase(peaks.begin() + drop);
  }
  // A peak far lower than the endplates' is not one: a denser patch of fatty marrow (whose
  // two troughs would pass for two discs, both about as narrow as a real one, in a body
  // whose marrow is darker than its discs). Height is taken above the profile's floor.
  if (peaks.size() >= 3) {
    const double floor = *std::min_element(sm.begin(), sm.end());
    std::vector<double> h;
    for (int pk : peaks) h.push_back(sm[pk] - floor);
    std::vector<double> hs = h;
    std::nth_element(hs.begin(), hs.begin() + hs.size() / 2, hs.end());
    const double keep_above = kMinEndplatePeak * hs[hs.size() / 2];
    std::vector<int> kept;
    for (size_t i = 0; i < peaks.size(); ++i)
      if (h[i] >= keep_above) kept.push_back(peaks[i]);
    if (kept.size() >= 2) peaks = kept;
  }
  return peaks;
}

// Which troughs are discs, from the alternation of narrow and wide troughs along the column.
std::vector<uint8_t> discsByAlternation(const std::vector<Trough>& troughs, const std::vector<double>& w,
                                        const std::vector<CurvePoint>& c) {
  // Troughs alternate disc / marrow along the column: within an unbroken chain the parity
  // with the narrower troughs is the discs. Judged in a window of three troughs either side,
  // so a trough the profile lost (a faint disc; two marrow troughs in a row) flips the
  // parity only next to it, not along the whole column. Where the window's parities do not
  // differ, the window's widths are split into two groups (narrow = discs) when they differ
  // clearly; else a trough is a disc when narrower than 19 mm.
  std::vector<uint8_t> is_disc(troughs.size(), 0);
  auto chainable = [&](size_t i) { return chainableTrough(troughs, w, c, i); };
  size_t i0 = 0;
  while (i0 < troughs.size()) {
    size_t i1 = i0;
    if (!chainable(i0)) {
      ++i0;
      continue;
    }
    while (i1 + 1 < troughs.size() && chainable(i1 + 1) && troughs[i1 + 1].lo == troughs[i1].hi) ++i1;
    for (size_t i = i0; i <= i1; ++i) {
      const size_t a = std::max(i0, i >= 3 ? i - 3 : size_t{0}), b = std::min(i1, i + 3);
      double same = 0, other = 0;
      int ns = 0, no = 0;
      std::vector<double> ww;
      for (size_t j = a; j <= b; ++j) {
        ww.push_back(w[j]);
        if ((j - i) % 2 == 0) {
          same += w[j];
          ++ns;
        } else {
          other += w[j];
          ++no;
        }
      }
      if (ns && no) {
        const double ms = same / ns, mo = other / no;
        if (std::min(ms, mo) < 0.85 * std::max(ms, mo)) {
          is_disc[i] = ms < mo && w[i] < 30;
          continue;
        }
      }
      // two groups by the largest gap in the sorted widths
      std::sort(ww.begin(), ww.end());
      double best_gap = 0, cut = 0, lo_mean = 0, hi_mean = 0;
      for (size_t k = 1; k < ww.size(); ++k)
        if (ww[k] - ww[k - 1] > best_gap) {
          best_gap = ww[k] - ww[k - 1];
          cut = 0.5 * (ww[k] + ww[k - 1]);
          lo_mean = std::accumulate(ww.begin(), ww.begin() + static_cast<long>(k), 0.0) / k;
          hi_mean = std::accumulate(ww.begin() + static_cast<long>(k), ww.end(), 0.0) / (ww.size() - k);
        }
      if (best_gap > 0 && lo_mean < 0.6 * hi_mean)
        is_disc[i] = w[i] < cut && w[i] < 30;
      else
        is_disc[i] = w[i] < 19;
    }
    i0 = i1 + 1;
  }
  return is_disc;
}

// Dense marrow: discs told by their floors where those split into two clear groups.
void discsByFloor(const std::vector<Trough>& troughs, const std::vector<double>& w,
                  const std::vector<double>& sm, const std::vector<CurvePoint>& c,
                  std::vector<uint8_t>& is_disc) {
  // Dense marrow: where the troughs' floors fall into two clearly separated groups, the
  // darker group is the narrower and no bright trough is narrow, the darker troughs are the discs, whatever
  // the alternation says. A faint endplate peak (10-20 HU above dense marrow in 5 mm slices) is merged away
  // with its marrow into the next disc's trough, and the alternation then flips for the rest of the column;
  // the floors do not (a disc's ~100 HU under ~190 HU marrow). Osteoporotic marrow, as dark as a disc or
  // darker, gives no such groups and the alternation stands.
  auto chainable = [&](size_t i) { return chainableTrough(troughs, w, c, i); };
  {
    std::vector<std::pair<double, size_t>> floors;
    for (size_t i = 0; i < troughs.size(); ++i)
      if (chainable(i)) floors.push_back({sm[troughs[i].at], i});
    std::sort(floors.begin(), floors.end());
    size_t cut = 0;
    double gap = 0;
    for (size_t k = 2; k + 1 < floors.size(); ++k)  // at least two troughs in each group
      if (floors[k].first - floors[k - 1].first > gap) {
        gap = floors[k].first - floors[k - 1].first;
        cut = k;
      }
    if (cut > 0) {
      double md = 0, mb = 0, vd = 0, vb = 0, w_dark = 0, w_bright = 0;
      const double nd = static_cast<double>(cut), nbr = static_cast<double>(floors.size() - cut);
      for (size_t k = 0; k < floors.size(); ++k) {
        (k < cut ? md : mb) += floors[k].first;
        (k < cut ? w_dark : w_bright) += w[floors[k].second];
      }
      md /= nd;
      mb /= nbr;
      w_dark /= nd;
      w_bright /= nbr;
      for (size_t k = 0; k < floors.size(); ++k)
        (k < cut ? vd : vb) += std::pow(floors[k].first - (k < cut ? md : mb), 2);
      const double sd_d = std::max(5.0, std::sqrt(vd / nd)), sd_b = std::max(5.0, std::sqrt(vb / nbr));
      const double spread = std::max(sd_d, sd_b);
      // and every bright trough is marrow-wide (deep and shallow discs alone also make two
      // groups of floors: then narrow troughs sit among the bright ones)
      std::vector<double> wd;
      double w_bright_min = 1e9;
      for (size_t k = 0; k < floors.size(); ++k)
        if (k < cut)
          wd.push_back(w[floors[k].second]);
        else if (mb - floors[k].first <= 1.5 * sd_b)  // a typical bright one
          w_bright_min = std::min(w_bright_min, w[floors[k].second]);
      const bool bright_wide = w_bright_min >= 1.3 * stats::median(wd);
      if (gap >= 25 && mb - md >= 50 && mb - md >= 3 * spread && w_dark < 0.85 * w_bright && bright_wide) {
        // only troughs typical of their group: a floor between the groups (a disc blurred
        // with its endplates) keeps what the alternation said
        for (size_t k = 0; k < floors.size(); ++k)
          if (k < cut ? floors[k].first - md <= 2.5 * sd_d : mb - floors[k].first <= 2.5 * sd_b)
            is_disc[floors[k].second] = k < cut;
        spdlog::trace(
            "disc floors: {} dark troughs (mean {:.0f} HU) under marrow (mean {:.0f} HU); discs by floor",
            cut, md, mb);
      }
    }
  }
}

// Discs the spacing says were missed (faint discs, thick slices), filled in.
void fillSpacingGaps(const std::vector<Trough>& troughs, const std::vector<double>& w,
                     const std::vector<double>& sm, const std::vector<CurvePoint>& c, std::vector<int>& discs,
                     std::vector<std::pair<int, int>>* flanks) {
  // The spacing
  // is the local one (the median of up to three gaps either side): vertebrae grow from ~20 mm
  // at T1 to ~40 mm at L5, so over a whole column one median would split the lumbar bodies.
  for (int pass = 0; pass < 4 && discs.size() >= 2; ++pass) {
    std::vector<double> gaps;
    // straight-line distances: a centreline wandering near the sacrum lengthens the curve
    auto chord = [&](int a, int b) { return std::hypot(c[b].x - c[a].x, c[b].y - c[a].y, c[b].z - c[a].z); };
    for (size_t i = 1; i < discs.size(); ++i) gaps.push_back(chord(discs[i - 1], discs[i]));
    auto localSpacing = [&](size_t gi) {
      std::vector<double> g2;
      for (size_t j = gi >= 3 ? gi - 3 : 0; j < std::min(gaps.size(), gi + 4); ++j)
        if (j != gi) g2.push_back(gaps[j]);
      if (g2.empty()) g2 = gaps;
      std::nth_element(g2.begin(), g2.begin() + g2.size() / 2, g2.end());
      return std::clamp(g2[g2.size() / 2], 24.0, 45.0);
    };
    bool changed = false;
    for (size_t i = 1; i < discs.size(); ++i) {
      const double S = localSpacing(i - 1);
      if (gaps[i - 1] < 1.6 * S) continue;
      // the narrowest trough in the middle part, else the darkest point
      int lo = discs[i - 1] + static_cast<int>(0.6 * S), hi = discs[i] - static_cast<int>(0.6 * S);
      int best = -1;
      double bw = 1e9;
      for (size_t t = 0; t < troughs.size(); ++t)
        if (troughs[t].at >= lo && troughs[t].at <= hi && w[t] < bw) {
          bw = w[t];
          best = troughs[t].at;
        }
      if (best < 0 && lo <= hi) {
        // No trough there: in 5 mm slices a thin disc's two endplates blur into one bright
        // band. Its centre (of the brightness above the gap's marrow level) is the disc;
        // with no such band, the darkest point.
        std::vector<double> gap_prof(sm.begin() + discs[i - 1], sm.begin() + discs[i] + 1);
        const double marrow = stats::median(gap_prof);
        double wsum = 0, wq = 0, peak = 0;
        for (int q = lo; q <= hi; ++q) {
          if (best < 0 || sm[q] < sm[best]) best = q;
          const double wgt = std::max(0.0, sm[q] - marrow);
          wsum += wgt;
          wq += wgt * q;
          peak = std::max(peak, wgt);
        }
        if (peak >= 30) best = static_cast<int>(std::lround(wq / wsum));
      }
      if (best >= 0) {
        discs.insert(discs.begin() + static_cast<long>(i), best);
        if (flanks) flanks->insert(flanks->begin() + static_cast<long>(i), {best - 4, best + 4});
        changed = true;
        break;
      }
    }
    if (!changed) break;
  }
}

// A disc placed in the wrong trough moved to the one that makes both vertebrae ordinary.
void moveMisplacedDiscs(const std::vector<Trough>& troughs, const std::vector<double>& w,
                        const std::vector<CurvePoint>& c, std::vector<int>& discs,
                        std::vector<std::pair<int, int>>* flanks) {
  // A disc placed in the wrong trough: a body's endplate too faint to keep as a peak (a
  // compressed body in thick slices) merges its marrow with the next disc into one wide
  // trough, and the alternation then takes the neighbour's marrow for the disc. It shows as a
  // vertebra far too short beside one far too long whose sum is two vertebrae: the shared
  // disc moves to the deep trough between them that makes both lengths ordinary. Only a disc
  // whose trough is as wide as marrow (1.5 x the discs' median width) is moved, and only to a
  // wider trough: false troughs between screws make short "vertebrae" too, around narrow discs.
  std::vector<double> disc_w;
  auto troughWidth = [&](int at) {
    for (size_t t = 0; t < troughs.size(); ++t)
      if (troughs[t].at == at) return w[t];
    return -1.0;  // a disc the spacing filled in
  };
  for (int d : discs)
    if (troughWidth(d) > 0) disc_w.push_back(troughWidth(d));
  if (!disc_w.empty()) std::nth_element(disc_w.begin(), disc_w.begin() + disc_w.size() / 2, disc_w.end());
  const double disc_w_median = disc_w.empty() ? 0 : disc_w[disc_w.size() / 2];
  for (size_t i = 1; i + 1 < discs.size(); ++i) {
    const double wi = troughWidth(discs[i]);
    if (wi < 1.5 * disc_w_median) continue;
    auto chord = [&](int a, int b) { return std::hypot(c[b].x - c[a].x, c[b].y - c[a].y, c[b].z - c[a].z); };
    std::vector<double> around;  // the local spacing, leaving out the two gaps in question
    for (size_t j = i >= 4 ? i - 4 : 0; j + 1 < std::min(discs.size(), i + 5); ++j)
      if (j + 1 != i && j != i) around.push_back(chord(discs[j], discs[j + 1]));
    if (around.size() < 2) continue;
    std::nth_element(around.begin(), around.begin() + around.size() / 2, around.end());
    const double S = std::clamp(around[around.size() / 2], 24.0, 45.0);
    const double g1 = chord(discs[i - 1], discs[i]), g2 = chord(discs[i], discs[i + 1]);
    if (std::min(g1, g2) >= 0.7 * S || std::max(g1, g2) <= 1.25 * S) continue;
    auto dev = [&](double a, double b) { return std::max(std::abs(a / S - 1), std::abs(b / S - 1)); };
    const double now = dev(g1, g2);
    int best = -1;
    double best_dev = now;
    for (size_t t = 0; t < troughs.size(); ++t) {
      const int at = troughs[t].at;
      if (at <= discs[i - 1] || at >= discs[i + 1] || at == discs[i] || troughs[t].depth < 40 || w[t] <= wi)
        continue;
      const double a = chord(discs[i - 1], at), b = chord(at, discs[i + 1]);
      if (std::min(a, b) < 0.7 * S) continue;
      if (dev(a, b) < best_dev) {
        best_dev = dev(a, b);
        best = static_cast<int>(t);
      }
    }
    if (best < 0 || best_dev > 0.5 * now) continue;
    const Trough& t = troughs[best];
    spdlog::trace("disc at z {:.1f} moved to the trough at z {:.1f} (lengths {:.0f}/{:.0f} mm, local {:.0f})",
                  c[discs[i]].z, c[t.at].z, g1, g2, S);
    discs[i] = t.at;
    // a merged trough's far flank is the next endplate but one: keep the flanks near the disc
    if (flanks) (*flanks)[i] = {t.at - t.lo <= 12 ? t.lo : t.at - 5, t.hi - t.at <= 12 ? t.hi : t.at + 5};
  }
}

std::vector<int> findDiscs(const std::vector<double>& prof, const std::vector<CurvePoint>& c,
                           std::vector<double>* width_out, std::vector<std::pair<int, int>>* flanks) {
  // Along the spine the core profile alternates: marrow trough, endplate peak, disc trough,
  // endplate peak, marrow trough ... A disc is the *narrow* trough (about 10 mm between its
  // endplates); marrow is the wide one (20-30 mm). Depth alone cannot tell them apart:
  // osteoporotic marrow can be darker than a disc.
  const int n = static_cast<int>(prof.size());
  std::vector<int> discs;
  if (width_out) width_out->assign(n, 0.0);
  if (n < 20) return discs;
  std::vector<double> sm = movingMean(prof, 1);
  const std::vector<int> peaks = endplatePeaks(sm);
  auto troughs = troughsBetween(sm, peaks);
  if (spdlog::should_log(spdlog::level::trace))
    for (int pk : peaks) spdlog::trace("peak at z {:6.1f} core {:6.1f}", c[pk].z, sm[pk]);
  if (troughs.empty()) return discs;
  // Split widths into narrow (discs) and wide (marrow) by 1-D two-means.
  std::vector<double> w;
  for (const auto& t : troughs)  // along z: a centreline wandering at its ends must not widen it
    w.push_back(std::abs(c[t.hi].z - c[t.lo].z));
  std::vector<uint8_t> is_disc = discsByAlternation(troughs, w, c);
  discsByFloor(troughs, w, sm, c, is_disc);
  if (spdlog::should_log(spdlog::level::trace))
    for (size_t i = 0; i < troughs.size(); ++i)
      spdlog::trace("trough at z {:6.1f} (x {:6.1f}) width {:4.0f} depth {:5.1f} -> {}", c[troughs[i].at].z,
                    c[troughs[i].at].x, w[i], troughs[i].depth, is_disc[i] ? "disc" : "marrow");
  for (size_t i = 0; i < troughs.size(); ++i) {
    if (width_out) (*width_out)[troughs[i].at] = w[i];
    if (is_disc[i]) {
      discs.push_back(troughs[i].at);
      if (flanks) flanks->push_back({troughs[i].lo, troughs[i].hi});
    }
  }
  fillSpacingGaps(troughs, w, sm, c, discs, flanks);
  moveMisplacedDiscs(troughs, w, c, discs, flanks);
  return discs;
}

// A rib's cortex: coarse cells above this mean (HU), at least this fraction of its cells.
constexpr double kRibCortexHu = 300;
constexpr double kRibMinCortexFraction = 0.05;
std::vector<RibComponent> findRibs(const Volume& v, const std::vector<CurvePoint>& c) {
  std::vector<RibComponent> out;
  if (c.empty()) return out;
  // Coarse bone grid (~2 mm cells): a cell is bone when its mean is above 180 HU.
  int bx = std::max(1, static_cast<int>(std::lround(2.0 / v.sx)));
  int by = std::max(1, static_cast<int>(std::lround(2.0 / v.sy)));
  int bz = std::max(1, static_cast<int>(std::lround(2.0 / v.sz)));
  int gx = (v.nx + bx - 1) / bx, gy = (v.ny + by - 1) / by, gz = (v.nz + bz - 1) / bz;
  // spine centre per coarse z
  std::vector<double> scx(gz), scy(gz);
  for (int kz = 0; kz < gz; ++kz) {
    double z = v.z(std::min(v.nz - 1, kz * bz + bz / 2));
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i)
      if (std::abs(c[i].z - z) < std::abs(c[best].z - z)) best = i;
    scx[kz] = c[best].x;
    scy[kz] = c[best].y;
  }
  std::vector<uint8_t> bone(static_cast<size_t>(gx) * gy * gz, 0);
  for (int kz = 0; kz < gz; ++kz)
    for (int cj = 0; cj < gy; ++cj)
      for (int ci = 0; ci < gx; ++ci) {
        double x = v.x(ci * bx + 0.5 * (bx - 1)), y = v.y(cj * by + 0.5 * (by - 1));
        double dx = std::abs(x - scx[kz]), dy = y - scy[kz];
        // leave out the vertebral column itself (body, arch, processes' roots)
        if (dx < 32 && dy > -35 && dy < 75) continue;
        double s = 0;
        int cnt = 0;
        for (int k = kz * bz; k < std::min(v.nz, (kz + 1) * bz); ++k)
          for (int j = cj * by; j < std::min(v.ny, (cj + 1) * by); ++j)
            for (int i = ci * bx; i < std::min(v.nx, (ci + 1) * bx); ++i) {
              s += v.at(i, j, k);
              ++cnt;
            }
        if (cnt && s / cnt > 180)
          bone[(static_cast<size_t>(kz) * gy + cj) * gx + ci] = s / cnt > kRibCortexHu ? 2 : 1;
      }
  // 26-connected components by flood fill
  std::vector<int> lab(bone.size(), 0);
  int next = 0;
  std::vector<size_t> stack;
  const double cell_cm3 = bx * v.sx * by * v.sy * bz * v.sz / 1000.0;
  for (size_t s0 = 0; s0 < bone.size(); ++s0) {
    if (!bone[s0] || lab[s0]) continue;
    ++next;
    RibComponent rc;
    double med = 1e9, reach = 0, zmin = 1e9, zmax = -1e9, medz = 0;
    double side_sum = 0;
    long cells = 0, cortex_cells = 0;
    stack.push_back(s0);
    lab[s0] = next;
    while (!stack.empty()) {
      size_t q = stack.back();
      stack.pop_back();
      int ci = static_cast<int>(q % gx), cj = static_cast<int>((q / gx) % gy),
          kz = static_cast<int>(q / (static_cast<size_t>(gx) * gy));
      double x = v.x(ci * bx + 0.5 * (bx - 1)), y = v.y(cj * by + 0.5 * (by - 1)),
             z = v.z(kz * bz + 0.5 * (bz - 1));
      double dx = x - scx[kz];
      ++cells;
      cortex_cells += bone[q] == 2;
      side_sum += dx;
      reach = std::max(reach, std::abs(dx));
      zmin = std::min(zmin, z);
      zmax = std::max(zmax, z);
      if (std::abs(dx) < med && y - scy[kz] > -30) {
        med = std::abs(dx);
        medz = z;
      }
      for (int dk = -1; dk <= 1; ++dk)
        for (int dj = -1; dj <= 1; ++dj)
          for (int di = -1; di <= 1; ++di) {
            int a = ci + di, b = cj + dj, cz = kz + dk;
            if (a < 0 || b < 0 || cz < 0 || a >= gx || b >= gy || cz >= gz) continue;
            size_t r = (static_cast<size_t>(cz) * gy + b) * gx + a;
            if (bone[r] && !lab[r]) {
              lab[r] = next;
              stack.push_back(r);
            }
          }
    }
    rc.side = side_sum > 0 ? 1 : -1;
    rc.medial_dist = med;
    rc.medial_z = medz;
    rc.lateral_reach = reach;
    rc.z_extent = zmax - zmin;
    rc.volume_cm3 = cells * cell_cm3;
    // A rib: starts next to the column, runs out to the body wall, is not a whole pelvis.
    // ... and is bone: some of it cortex. An enhanced kidney (arterial cortex 150-250 HU) passes
    // every shape test but has none (the arterial phantom's right kidney: 0 of 65 cells; real
    // ribs: 18-41 % on example_ct at 3 mm, 63-68 % on CRLM-CT-1004 at 5 mm).
    const bool rib_shape = rc.medial_dist <= 48 && rc.lateral_reach >= 70 && rc.z_extent <= 160 &&
                           rc.volume_cm3 <= 60 && rc.volume_cm3 >= 0.5;
    const bool cortex = cortex_cells >= 2 && cortex_cells >= kRibMinCortexFraction * cells;
    if (rib_shape)
      spdlog::debug("rib candidate side {} z {:.1f}: {} cells, {:.0f} % above {} HU{}", rc.side, rc.medial_z,
                    cells, 100.0 * cortex_cells / cells, kRibCortexHu,
                    cortex ? "" : ": no cortex, not a rib");
    if (rib_shape && cortex) out.push_back(rc);
  }
  return out;
}

}  // namespace ctbmd::spine
