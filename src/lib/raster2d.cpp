#include "internal/raster2d.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ctbmd::r2 {

namespace {
// 1-D squared distance transform (Felzenszwalb & Huttenlocher) with sample spacing s.
// "Infinite" inputs are a large finite number so the envelope arithmetic stays finite.
constexpr double kBig = 1e20;
void dt1d(const float* f, float* d, int n, double s, std::vector<int>& v, std::vector<double>& z) {
  auto F = [&](int q) { return std::isfinite(f[q]) ? static_cast<double>(f[q]) : kBig; };
  int k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  for (int q = 1; q < n; ++q) {
    double fq = F(q) + (q * s) * (q * s);
    double sq;
    while (true) {
      int p = v[k];
      sq = (fq - (F(p) + (p * s) * (p * s))) / (2 * s * (q - p));
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
    double val = dx * dx + F(v[k]);
    d[q] = val >= kBig * 0.5 ? std::numeric_limits<float>::infinity() : static_cast<float>(val);
  }
}
}  // namespace

std::vector<float> edtSquared(const Grid2& g, const std::vector<uint8_t>& mask) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> a(g.size()), tmp(std::max(g.nx, g.ny)), out(std::max(g.nx, g.ny));
  for (size_t i = 0; i < g.size(); ++i) a[i] = mask[i] ? inf : 0.f;
  int n = std::max(g.nx, g.ny) + 2;
  std::vector<int> v(n);
  std::vector<double> z(n + 1);
  for (int j = 0; j < g.ny; ++j) {
    float* row = a.data() + static_cast<size_t>(j) * g.nx;
    dt1d(row, out.data(), g.nx, g.sx, v, z);
    std::copy(out.begin(), out.begin() + g.nx, row);
  }
  for (int i = 0; i < g.nx; ++i) {
    for (int j = 0; j < g.ny; ++j) tmp[j] = a[static_cast<size_t>(j) * g.nx + i];
    dt1d(tmp.data(), out.data(), g.ny, g.sy, v, z);
    for (int j = 0; j < g.ny; ++j) a[static_cast<size_t>(j) * g.nx + i] = out[j];
  }
  return a;
}

std::vector<uint8_t> erode(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  auto d = edtSquared(g, m);
  std::vector<uint8_t> o(g.size());
  const float r2 = static_cast<float>(r * r);
  for (size_t i = 0; i < g.size(); ++i) o[i] = d[i] > r2;
  return o;
}

std::vector<uint8_t> dilate(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  std::vector<uint8_t> inv(g.size());
  for (size_t i = 0; i < g.size(); ++i) inv[i] = !m[i];
  auto d = edtSquared(g, inv);
  std::vector<uint8_t> o(g.size());
  const float r2 = static_cast<float>(r * r);
  for (size_t i = 0; i < g.size(); ++i) o[i] = d[i] <= r2;
  return o;
}

std::vector<int> components(const Grid2& g, const std::vector<uint8_t>& mask, std::vector<long>& areas) {
  std::vector<int> lab(g.size(), 0);
  areas.assign(1, 0);
  std::vector<size_t> stack;
  int next = 0;
  for (size_t s = 0; s < g.size(); ++s) {
    if (!mask[s] || lab[s]) continue;
    ++next;
    areas.push_back(0);
    stack.push_back(s);
    lab[s] = next;
    while (!stack.empty()) {
      size_t p = stack.back();
      stack.pop_back();
      ++areas[next];
      int x = static_cast<int>(p % g.nx), y = static_cast<int>(p / g.nx);
      auto visit = [&](int xx, int yy) {
        if (xx < 0 || yy < 0 || xx >= g.nx || yy >= g.ny) return;
        size_t q = static_cast<size_t>(yy) * g.nx + xx;
        if (mask[q] && !lab[q]) {
          lab[q] = next;
          stack.push_back(q);
        }
      };
      visit(x - 1, y);
      visit(x + 1, y);
      visit(x, y - 1);
      visit(x, y + 1);
    }
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
