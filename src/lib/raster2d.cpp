#include "internal/raster2d.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ctbmd::r2 {

namespace {
// 1-D squared distance transform (Felzenszwalb & Huttenlocher) with sample spacing s.
// "Infinite" inputs are a large finite number so the envelope arithmetic stays finite.
constexpr double kBig = 1e20;
// h[q] = F(q) + (q s)^2 precomputed by the caller (F: the input, kBig for infinite).
void dt1d(const double* F, const double* h, float* d, int n, double s, std::vector<int>& v,
          std::vector<double>& z) {
  int k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  for (int q = 1; q < n; ++q) {
    double sq;
    while (true) {
      int p = v[k];
      sq = (h[q] - h[p]) / (2 * s * (q - p));
      if (sq <= z[k] && k > 0) {
        --k;
        continue;
      }
      break;
    }
    ++k;
    v[k] = q;
    z[k] = sq;
    z[k + 1] = std::numeric_limits<double>::infinity();
  }
  k = 0;
  for (int q = 0; q < n; ++q) {
    while (z[k + 1] < q * s) ++k;
    double dx = (q - v[k]) * s;
    double val = dx * dx + F[v[k]];
    d[q] = val >= kBig * 0.5 ? std::numeric_limits<float>::infinity() : static_cast<float>(val);
  }
}
}  // namespace

namespace {
// The distance map, exact wherever it is <= limit; elsewhere any value > limit (row distances
// above the limit are dropped: they cannot make a pixel's distance <= limit, and a pixel
// whose true distance is <= limit keeps the row that realises it). Columns left all 0 or all
// infinite are skipped. limit = +inf: the exact map.
std::vector<float> edtSquaredUpTo(const Grid2& g, const std::vector<uint8_t>& mask, float limit);
}  // namespace

std::vector<float> edtSquared(const Grid2& g, const std::vector<uint8_t>& mask) {
  return edtSquaredUpTo(g, mask, std::numeric_limits<float>::infinity());
}

namespace {
std::vector<float> edtSquaredUpTo(const Grid2& g, const std::vector<uint8_t>& mask, float limit) {
  // Exact squared Euclidean distance to the nearest 0 pixel. Rows: a binary input needs only
  // the distance to the nearest 0 in the row (two sweeps). Columns: the lower envelope of
  // parabolas over the row results (Felzenszwalb & Huttenlocher), skipping columns that are
  // all 0 or all infinite. Same values, bit for bit, as the envelope on both passes.
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> a(g.size());
  const int nx = g.nx, ny = g.ny;
  // Squared row distances by pixel count, looked up (index nx: no 0 in the row).
  std::vector<float> dx2(static_cast<size_t>(nx) + 1, inf);
  for (int d = 0; d < nx; ++d) {
    double dx = d * g.sx;
    float v = static_cast<float>(dx * dx);
    dx2[static_cast<size_t>(d)] = v > limit ? inf : v;
  }
  std::vector<int> left(static_cast<size_t>(nx));
  for (int j = 0; j < ny; ++j) {
    const uint8_t* m = mask.data() + static_cast<size_t>(j) * nx;
    float* row = a.data() + static_cast<size_t>(j) * nx;
    int gap = nx;  // pixels to the nearest 0 on the left (nx: none)
    for (int i = 0; i < nx; ++i) {
      gap = m[i] ? std::min(gap + 1, nx) : 0;
      left[static_cast<size_t>(i)] = gap;
    }
    gap = nx;  // ... and on the right
    for (int i = nx - 1; i >= 0; --i) {
      gap = m[i] ? std::min(gap + 1, nx) : 0;
      row[i] = dx2[static_cast<size_t>(std::min(gap, left[static_cast<size_t>(i)]))];
    }
  }
  if (std::isfinite(limit)) {
    // Bounded: a pixel whose distance is <= limit takes it from a row within R of its own,
    // so the column pass is a running minimum over those 2R+1 rows, row by row (contiguous,
    // vectorised), in double as the envelope below computes it: the same values.
    const int R = static_cast<int>(std::floor(std::sqrt(static_cast<double>(limit)) / g.sy)) + 1;
    std::vector<double> dy2(static_cast<size_t>(R) + 1);
    for (int d = 0; d <= R; ++d) dy2[static_cast<size_t>(d)] = (d * g.sy) * (d * g.sy);
    std::vector<float> res(g.size());
    std::vector<double> acc(static_cast<size_t>(nx));
    for (int j = 0; j < ny; ++j) {
      const float* own = a.data() + static_cast<size_t>(j) * nx;
      for (int i = 0; i < nx; ++i) acc[static_cast<size_t>(i)] = own[i];
      for (int d = 1; d <= R; ++d) {
        const double add = dy2[static_cast<size_t>(d)];
        for (int jj : {j - d, j + d}) {
          if (jj < 0 || jj >= ny) continue;
          const float* src = a.data() + static_cast<size_t>(jj) * nx;
          for (int i = 0; i < nx; ++i) {
            double v2 = static_cast<double>(src[i]) + add;
            acc[static_cast<size_t>(i)] = v2 < acc[static_cast<size_t>(i)] ? v2 : acc[static_cast<size_t>(i)];
          }
        }
      }
      float* o = res.data() + static_cast<size_t>(j) * nx;
      for (int i = 0; i < nx; ++i) o[i] = static_cast<float>(acc[static_cast<size_t>(i)]);
    }
    return res;
  }
  std::vector<double> F(static_cast<size_t>(ny)), h(static_cast<size_t>(ny));
  std::vector<float> out(static_cast<size_t>(ny));
  std::vector<int> v(static_cast<size_t>(ny) + 2);
  std::vector<double> z(static_cast<size_t>(ny) + 3);
  for (int i = 0; i < nx; ++i) {
    bool any_zero = false, any_inf = false, any_other = false;
    for (int j = 0; j < ny; ++j) {
      float f = a[static_cast<size_t>(j) * nx + i];
      if (f == 0.f)
        any_zero = true;
      else if (std::isinf(f))
        any_inf = true;
      else
        any_other = true;
      F[static_cast<size_t>(j)] = std::isfinite(f) ? static_cast<double>(f) : kBig;
      h[static_cast<size_t>(j)] = F[static_cast<size_t>(j)] + (j * g.sy) * (j * g.sy);
    }
    if (!any_other && !(any_zero && any_inf)) continue;  // all 0 or all infinite: unchanged
    dt1d(F.data(), h.data(), out.data(), ny, g.sy, v, z);
    for (int j = 0; j < ny; ++j) a[static_cast<size_t>(j) * nx + i] = out[static_cast<size_t>(j)];
  }
  return a;
}
}  // namespace

std::vector<uint8_t> erode(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  const float r2 = static_cast<float>(r * r);
  auto d = edtSquaredUpTo(g, m, r2);
  std::vector<uint8_t> o(g.size());
  for (size_t i = 0; i < g.size(); ++i) o[i] = d[i] > r2;
  return o;
}

std::vector<uint8_t> dilate(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  std::vector<uint8_t> inv(g.size());
  for (size_t i = 0; i < g.size(); ++i) inv[i] = !m[i];
  const float r2 = static_cast<float>(r * r);
  auto d = edtSquaredUpTo(g, inv, r2);
  std::vector<uint8_t> o(g.size());
  for (size_t i = 0; i < g.size(); ++i) o[i] = d[i] <= r2;
  return o;
}

std::vector<int> components(const Grid2& g, const std::vector<uint8_t>& mask, std::vector<long>& areas) {
  // Run-based: the runs of each row, joined (union-find, the root being the run first in
  // raster order) with the runs they overlap in the row above; labels are numbered by each
  // component's first pixel in raster order (the order a seed-and-flood scan would give).
  const int nx = g.nx, ny = g.ny;
  struct Run {
    int y, x0, x1;  // [x0, x1)
  };
  std::vector<Run> runs;
  std::vector<size_t> row_start(static_cast<size_t>(ny) + 1);
  for (int y = 0; y < ny; ++y) {
    row_start[static_cast<size_t>(y)] = runs.size();
    const uint8_t* m = mask.data() + static_cast<size_t>(y) * nx;
    for (int x = 0; x < nx;) {
      if (!m[x]) {
        ++x;
        continue;
      }
      int x0 = x;
      while (x < nx && m[x]) ++x;
      runs.push_back({y, x0, x});
    }
  }
  row_start[static_cast<size_t>(ny)] = runs.size();
  std::vector<int> parent(runs.size());
  for (size_t r = 0; r < runs.size(); ++r) parent[r] = static_cast<int>(r);
  auto find = [&](int x) {
    while (parent[static_cast<size_t>(x)] != x) {
      parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
      x = parent[static_cast<size_t>(x)];
    }
    return x;
  };
  for (int y = 1; y < ny; ++y) {
    size_t a = row_start[static_cast<size_t>(y) - 1], a1 = row_start[static_cast<size_t>(y)];
    size_t b = a1, b1 = row_start[static_cast<size_t>(y) + 1];
    while (a < a1 && b < b1) {
      const Run &up = runs[a], &cur = runs[b];
      if (up.x0 < cur.x1 && cur.x0 < up.x1) {  // 4-connected: columns overlap
        int ra = find(static_cast<int>(a)), rb = find(static_cast<int>(b));
        if (ra != rb) parent[static_cast<size_t>(std::max(ra, rb))] = std::min(ra, rb);
      }
      if (up.x1 < cur.x1)
        ++a;
      else
        ++b;
    }
  }
  std::vector<int> lab(g.size(), 0);
  std::vector<int> final_of(runs.size(), 0);
  areas.assign(1, 0);
  for (size_t r = 0; r < runs.size(); ++r) {
    int root = find(static_cast<int>(r));
    int& f = final_of[static_cast<size_t>(root)];
    if (!f) {  // the root is the component's first run: labels in raster order
      f = static_cast<int>(areas.size());
      areas.push_back(0);
    }
    const Run& run = runs[r];
    std::fill(lab.begin() + static_cast<long>(run.y) * nx + run.x0,
              lab.begin() + static_cast<long>(run.y) * nx + run.x1, f);
    areas[static_cast<size_t>(f)] += run.x1 - run.x0;
  }
  return lab;
}

std::vector<uint8_t> fillHoles(const Grid2& g, const std::vector<uint8_t>& mask, double max_area_mm2,
                               double min_area_mm2) {
  std::vector<uint8_t> bg(g.size());
  for (size_t i = 0; i < g.size(); ++i) bg[i] = !mask[i];
  std::vector<long> areas;
  auto lab = components(g, bg, areas);
  std::vector<uint8_t> border(areas.size(), 0);
  for (int x = 0; x < g.nx; ++x) {
    border[lab[x]] = 1;
    border[lab[static_cast<size_t>(g.ny - 1) * g.nx + x]] = 1;
  }
  for (int y = 0; y < g.ny; ++y) {
    border[lab[static_cast<size_t>(y) * g.nx]] = 1;
    border[lab[static_cast<size_t>(y) * g.nx + g.nx - 1]] = 1;
  }
  const double px = g.sx * g.sy;
  std::vector<uint8_t> out = mask;
  for (size_t i = 0; i < g.size(); ++i) {
    int l = lab[i];
    if (l && !border[l] && (max_area_mm2 < 0 || areas[l] * px <= max_area_mm2) &&
        areas[l] * px >= min_area_mm2)
      out[i] = 1;
  }
  return out;
}

void binomialBlur(const Grid2& g, std::vector<float>& v, int passes) {
  std::vector<float> t(v.size());
  for (int p = 0; p < passes; ++p) {
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        size_t q = static_cast<size_t>(y) * g.nx + x;
        float l = v[x > 0 ? q - 1 : q], r = v[x + 1 < g.nx ? q + 1 : q];
        t[q] = 0.25f * (l + r) + 0.5f * v[q];
      }
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        size_t q = static_cast<size_t>(y) * g.nx + x;
        float u = t[y > 0 ? q - g.nx : q], d = t[y + 1 < g.ny ? q + g.nx : q];
        v[q] = 0.25f * (u + d) + 0.5f * t[q];
      }
  }
}

}  // namespace ctbmd::r2
