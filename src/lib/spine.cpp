#include "internal/spine.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

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

SliceBody analyseSlice(const Volume& v, int k, double cx, double cy, const SliceParams& p,
                       bool want_mask) {
  SliceBody out;
  int i0 = std::max(0, static_cast<int>(std::floor((cx - p.half_x - v.ox) / v.sx)));
  int i1 = std::min(v.nx - 1, static_cast<int>(std::ceil((cx + p.half_x - v.ox) / v.sx)));
  int j0 = std::max(0, static_cast<int>(std::floor((cy - p.y_front - v.oy) / v.sy)));
  int j1 = std::min(v.ny - 1, static_cast<int>(std::ceil((cy + p.y_back - v.oy) / v.sy)));
  if (i1 - i0 < 8 || j1 - j0 < 8 || k < 0 || k >= v.nz) return out;
  r2::Grid2 g{i1 - i0 + 1, j1 - j0 + 1, v.sx, v.sy};
  std::vector<float> f(g.size());
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i) f[static_cast<size_t>(j) * g.nx + i] = v.at(i0 + i, j0 + j, k);
  // Bone: the cortex (light smoothing, high threshold) or dense trabecular bone (heavier
  // smoothing, lower threshold). Sparse (osteoporotic) marrow is found as a hole in the ring.
  // Smoothing is set in mm (each [1 2 1] pass adds 0.5 px^2 of variance), so thick and
  // thin pixels see the same scale: light ~0.6 mm against noise, heavy ~1.5 mm.
  const double px_mm = std::sqrt(g.sx * g.sy);
  auto passes = [&](double sigma_mm) { return static_cast<int>(std::lround(2.0 * std::pow(sigma_mm / px_mm, 2))); };
  r2::binomialBlur(g, f, passes(0.6));
  std::vector<float> f3 = f;
  r2::binomialBlur(g, f3, std::max(0, passes(1.5) - passes(0.6)));
  std::vector<uint8_t> dense(g.size());
  for (size_t q = 0; q < g.size(); ++q) dense[q] = f3[q] > p.trabecular_hu;
  dense = r2::erode(g, dense, 1.5);  // the heavy blur spreads the cortex outwards: pull back
  std::vector<uint8_t> bone(g.size());
  for (size_t q = 0; q < g.size(); ++q) bone[q] = f[q] > p.bone_hu || dense[q];
  // Close ring gaps (partial volume, thin osteoporotic cortex) before looking for holes:
  // at least 2 mm or 1.5 pixels, so coarse 3 mm pixels bridge 2-pixel gaps too.
  auto closed = r2::close(g, bone, std::max(2.0, 1.5 * px_mm));
  // Holes big enough to be a body's marrow are filled; the spinal canal (smaller) is not.
  std::vector<uint8_t> bg(g.size());
  for (size_t q = 0; q < g.size(); ++q) bg[q] = !closed[q];
  std::vector<long> hole_area;
  auto holes = r2::components(g, bg, hole_area);
  std::vector<uint8_t> touches(hole_area.size(), 0);
  for (int x = 0; x < g.nx; ++x) {
    touches[holes[x]] = 1;
    touches[holes[static_cast<size_t>(g.ny - 1) * g.nx + x]] = 1;
  }
  for (int y = 0; y < g.ny; ++y) {
    touches[holes[static_cast<size_t>(y) * g.nx]] = 1;
    touches[holes[static_cast<size_t>(y) * g.nx + g.nx - 1]] = 1;
  }
  const double px = g.sx * g.sy;
  std::vector<uint8_t> filled = closed;
  std::vector<double> canal_y;  // anterior edges of canal-sized holes
  std::vector<int> canal_ids;
  for (size_t q = 0; q < g.size(); ++q) {
    int h = holes[q];
    if (!h || touches[h]) continue;
    double a = hole_area[h] * px;
    if (a >= 500) filled[q] = 1;
  }
  auto opened = r2::open(g, filled, p.open_mm);
  std::vector<long> comp_area;
  auto comps = r2::components(g, opened, comp_area);
  if (comp_area.size() <= 1) return out;
  auto dist = r2::edtSquared(g, filled);
  // Choose the component with the largest inscribed disk, preferring ones near the centre.
  std::vector<double> best_r(comp_area.size(), 0);
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
    double d = std::hypot(ccx - cx, ccy - cy);
    double score = best_r[c] * std::exp(-d / 40.0);
    if (score > pick_score) {
      pick_score = score;
      pick = static_cast<int>(c);
    }
  }
  if (!pick) return out;
  std::vector<uint8_t> body(g.size());
  for (size_t q = 0; q < g.size(); ++q) body[q] = comps[q] == pick;
  // Reconstruct the corners the opening rounded off, but stay inside the filled bone.
  auto grown = r2::dilate(g, body, p.open_mm + 0.5);
  for (size_t q = 0; q < g.size(); ++q) body[q] = grown[q] && filled[q];
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
    if (n0 == 0) return out;
    out.cx = v.x(i0 + sx0 / n0);
    out.cy = v.y(j0 + sy0 / n0);
    out.half_width = 0.5 * (xmax0 - xmin0 + 1) * g.sx;
  }
  // Cut what lies behind the anterior wall of the spinal canal (pedicle roots).
  {
    double best_canal_y = 1e9;
    for (size_t h = 1; h < hole_area.size(); ++h) {
      if (touches[h]) continue;
      double a = hole_area[h] * px;
      if (a < 40 || a >= 500) continue;
      double hx = 0, hy = 0, ymin = 1e9;
      long hn = 0;
      for (size_t q = 0; q < g.size(); ++q)
        if (holes[q] == static_cast<int>(h)) {
          hx += q % g.nx;
          hy += q / g.nx;
          ymin = std::min<double>(ymin, q / g.nx);
          ++hn;
        }
      double wx = v.x(i0 + hx / hn), wy = v.y(j0 + hy / hn);
      if (wy > out.cy + 5 && std::abs(wx - out.cx) < out.half_width * 0.6 && wy - out.cy < 45)
        best_canal_y = std::min(best_canal_y, ymin);
    }
    if (best_canal_y < 1e8) {
      for (size_t q = 0; q < g.size(); ++q)
        if (body[q] && static_cast<double>(q / g.nx) >= best_canal_y) body[q] = 0;
    }
  }
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
  if (n == 0) return out;
  out.cx = v.x(i0 + sx / n);
  out.cy = v.y(j0 + sy / n);
  out.half_width = 0.5 * (xmax - xmin + 1) * g.sx;
  out.area = n * px;
  double rmax = 0;
  for (size_t q = 0; q < g.size(); ++q)
    if (body[q]) rmax = std::max(rmax, static_cast<double>(dist[q]));
  out.r_max = std::sqrt(rmax);
  // Bone connected to the body that reaches out laterally (sacral alae; transverse processes).
  {
    std::vector<long> a3;
    auto c3 = r2::components(g, filled, a3);
    int bl = 0;
    for (size_t q = 0; q < g.size(); ++q)
      if (body[q] && c3[q]) {
        bl = c3[q];
        break;
      }
    long lat = 0;
    for (size_t q = 0; q < g.size(); ++q) {
      if (c3[q] != bl || !bl) continue;
      double wx = v.x(i0 + static_cast<double>(q % g.nx));
      double wy = v.y(j0 + static_cast<double>(q / g.nx));
      if (std::abs(wx - out.cx) > out.half_width + 6 && wy < out.cy + 25) ++lat;
    }
    out.lateral_area = lat * px;
  }
  // Rib bands: posterolateral, beyond the reach of lumbar transverse processes.
  {
    auto band = [&](int side) {
      double x_lo = out.cx + side * 52, x_hi = out.cx + side * 100;
      if (x_lo > x_hi) std::swap(x_lo, x_hi);
      int a0 = std::max(0, static_cast<int>((x_lo - v.ox) / v.sx));
      int a1 = std::min(v.nx - 1, static_cast<int>((x_hi - v.ox) / v.sx));
      int b0 = std::max(0, static_cast<int>((out.cy - 10 - v.oy) / v.sy));
      int b1 = std::min(v.ny - 1, static_cast<int>((out.cy + 60 - v.oy) / v.sy));
      long cnt = 0;
      for (int j = b0; j <= b1; ++j)
        for (int i = a0; i <= a1; ++i)
          if (v.at(i, j, k) > 250) ++cnt;
      return cnt * px;
    };
    out.rib_left = band(+1);
    out.rib_right = band(-1);
  }
  out.valid = out.r_max >= p.min_radius_mm;
  if (const char* dbg = std::getenv("CTBMD_DEBUG_SLICE"); dbg && std::atoi(dbg) == k) {
    auto dump = [&](const char* name, auto get) {
      std::FILE* fp = std::fopen((std::string("/tmp/ctbmd_dbg_") + name + ".pgm").c_str(), "wb");
      if (!fp) return;
      std::fprintf(fp, "P5 %d %d 255\n", g.nx, g.ny);
      for (size_t q = 0; q < g.size(); ++q) std::fputc(get(q), fp);
      std::fclose(fp);
    };
    dump("ct", [&](size_t q) { return static_cast<int>(std::clamp((f[q] + 200.f) / 800.f * 255.f, 0.f, 255.f)); });
    dump("bone", [&](size_t q) { return bone[q] ? 255 : 0; });
    dump("filled", [&](size_t q) { return filled[q] ? 255 : 0; });
    dump("body", [&](size_t q) { return body[q] ? 255 : 0; });
  }
  if (want_mask) {
    out.wx0 = i0;
    out.wy0 = j0;
    out.wnx = g.nx;
    out.wny = g.ny;
    out.mask = std::move(body);
  }
  return out;
}

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
  for (int s = 0; s < ns; ++s) {
    double bsx = 0, bsy = 0;
    long bn = 0;
    auto& m = maps[s];
    for (int k = s * slab; k < std::min(v.nz, (s + 1) * slab); k += step)
      for (int j = 0; j < v.ny; ++j) {
        const int16_t* row = v.hu + (static_cast<size_t>(k) * v.ny + j) * v.nx;
        float* mrow = m.data() + static_cast<size_t>(j / by) * cnx;
        for (int i = 0; i < v.nx; ++i) {
          int h = row[i];
          if (h > -400) {
            bsx += i;
            bsy += j;
            ++bn;
          }
          if (h > 100) mrow[i / bx] += std::min(1.f, (h - 100) / 200.f);
        }
      }
    body_x[s] = bn ? v.x(bsx / bn) : v.x(v.nx / 2.0);
    body_y[s] = bn ? v.y(bsy / bn) : v.y(v.ny / 2.0);
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
        if (d > 22) continue;
        double val = maps[to][static_cast<size_t>(cj) * cnx + ci] * std::exp(-d / 25.0);
        if (val > bestv) {
          bestv = val;
          tp = {x, y, maps[to][static_cast<size_t>(cj) * cnx + ci]};
        }
      }
    if (bestv <= 0) tp.strength = 0;
    slabs[to] = tp;
  };
  for (int s = s0 + 1; s < ns; ++s) follow(s - 1, s);
  for (int s = s0 - 1; s >= 0; --s) follow(s + 1, s);
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
