#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "internal/raster2d.hpp"

using namespace ctbmd::r2;

TEST(Raster2d, DistanceTransformMatchesBruteForce) {
  std::mt19937 g(3);
  for (int trial = 0; trial < 5; ++trial) {
    Grid2 gr{23 + trial, 17 + 2 * trial, 0.7 + 0.3 * trial, 1.1};
    std::vector<uint8_t> m(gr.size());
    for (auto& v : m) v = (g() % 10) < 8;
    auto d = edtSquared(gr, m);
    for (int y = 0; y < gr.ny; ++y)
      for (int x = 0; x < gr.nx; ++x) {
        size_t q = static_cast<size_t>(y) * gr.nx + x;
        double best = std::numeric_limits<double>::infinity();
        if (!m[q])
          best = 0;
        else
          for (int yy = 0; yy < gr.ny; ++yy)
            for (int xx = 0; xx < gr.nx; ++xx)
              if (!m[static_cast<size_t>(yy) * gr.nx + xx])
                best = std::min(best, std::pow((x - xx) * gr.sx, 2) + std::pow((y - yy) * gr.sy, 2));
        if (std::isinf(best))
          EXPECT_TRUE(std::isinf(d[q]));
        else
          EXPECT_NEAR(d[q], best, 1e-3 * (1 + best)) << x << "," << y;
      }
  }
}

TEST(Raster2d, DiskErosionAndDilation) {
  Grid2 gr{41, 41, 1.0, 1.0};
  std::vector<uint8_t> m(gr.size(), 0);
  m[20 * 41 + 20] = 1;
  auto d = dilate(gr, m, 5.0);
  long n = 0;
  for (auto v : d) n += v;
  EXPECT_EQ(n, 81);  // lattice points with x^2 + y^2 <= 25
  auto e = erode(gr, d, 5.0);
  long k = 0;
  for (auto v : e) k += v;
  EXPECT_EQ(k, 1);
}

TEST(Raster2d, FillHolesRespectsMaximumArea) {
  Grid2 gr{30, 30, 1.0, 1.0};
  std::vector<uint8_t> m(gr.size(), 0);
  auto ring = [&](int x0, int y0, int s) {
    for (int i = 0; i < s; ++i) {
      m[y0 * 30 + x0 + i] = m[(y0 + s - 1) * 30 + x0 + i] = 1;
      m[(y0 + i) * 30 + x0] = m[(y0 + i) * 30 + x0 + s - 1] = 1;
    }
  };
  ring(1, 1, 12);   // hole of 100 px
  ring(16, 16, 5);  // hole of 9 px
  auto all = fillHoles(gr, m);
  auto small = fillHoles(gr, m, 20.0);
  EXPECT_EQ(all[6 * 30 + 6], 1);
  EXPECT_EQ(all[18 * 30 + 18], 1);
  EXPECT_EQ(small[6 * 30 + 6], 0);
  EXPECT_EQ(small[18 * 30 + 18], 1);
  EXPECT_EQ(all[0], 0);
}

// Bounded distance maps (erosion, dilation) against brute force: random masks,
// anisotropic pixels, radii away from lattice distances.
namespace {
std::vector<uint8_t> randomMask(const Grid2& g, double p_one, unsigned seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution one(p_one);
  std::vector<uint8_t> m(g.size());
  for (auto& v : m) v = one(rng);
  return m;
}

// Squared distance (mm^2) to the nearest 0 pixel, by trying every pixel (inf if none).
std::vector<double> bruteDistance(const Grid2& g, const std::vector<uint8_t>& m) {
  std::vector<double> d(g.size(), std::numeric_limits<double>::infinity());
  for (int j = 0; j < g.ny; ++j)
    for (int i = 0; i < g.nx; ++i)
      for (int jj = 0; jj < g.ny; ++jj)
        for (int ii = 0; ii < g.nx; ++ii)
          if (!m[static_cast<size_t>(jj) * g.nx + ii]) {
            double dx = (i - ii) * g.sx, dy = (j - jj) * g.sy;
            auto& v = d[static_cast<size_t>(j) * g.nx + i];
            v = std::min(v, dx * dx + dy * dy);
          }
  return d;
}
}  // namespace

TEST(Raster2d, ErosionAndDilationAreDiskMorphology) {
  // Radii away from every lattice distance (no ties at the disk's edge).
  for (double r : {0.95, 1.6, 2.45, 4.1, 7.3}) {
    for (unsigned seed = 1; seed <= 4; ++seed) {
      Grid2 g{41, 33 + static_cast<int>(seed), 0.78, 0.93};
      auto m = randomMask(g, 0.93, seed * 17 + static_cast<unsigned>(r * 10));
      auto d = bruteDistance(g, m);
      std::vector<uint8_t> inv(g.size());
      for (size_t q = 0; q < g.size(); ++q) inv[q] = !m[q];
      auto dinv = bruteDistance(g, inv);
      auto e = erode(g, m, r);
      auto di = dilate(g, m, r);
      long n_eroded = 0;
      for (size_t q = 0; q < g.size(); ++q) {
        ASSERT_EQ(e[q], d[q] > r * r ? 1 : 0) << "erode r " << r << " seed " << seed << " pixel " << q;
        ASSERT_EQ(di[q], dinv[q] <= r * r ? 1 : 0) << "dilate r " << r << " seed " << seed << " pixel " << q;
        n_eroded += e[q];
      }
      if (r < 2) {
        EXPECT_GT(n_eroded, 0);
      }  // the test sees both outcomes
    }
  }
}

TEST(Raster2d, ComponentsMatchFloodFillInRasterOrder) {
  for (unsigned seed = 1; seed <= 8; ++seed) {
    Grid2 g{31 + static_cast<int>(seed), 27, 1.0, 1.0};
    auto m = randomMask(g, 0.35 + 0.03 * seed, seed);
    std::vector<long> areas;
    auto lab = components(g, m, areas);
    // Seed-and-flood in raster order, 4-connected.
    std::vector<int> want(g.size(), 0);
    std::vector<long> want_areas(1, 0);
    for (size_t q0 = 0; q0 < g.size(); ++q0) {
      if (!m[q0] || want[q0]) continue;
      int l = static_cast<int>(want_areas.size());
      want_areas.push_back(0);
      std::vector<size_t> stack{q0};
      want[q0] = l;
      while (!stack.empty()) {
        size_t q = stack.back();
        stack.pop_back();
        ++want_areas.back();
        int x = static_cast<int>(q % g.nx), y = static_cast<int>(q / g.nx);
        const int nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
        for (const auto& n : nb) {
          if (n[0] < 0 || n[1] < 0 || n[0] >= g.nx || n[1] >= g.ny) continue;
          size_t p = static_cast<size_t>(n[1]) * g.nx + n[0];
          if (m[p] && !want[p]) {
            want[p] = l;
            stack.push_back(p);
          }
        }
      }
    }
    EXPECT_EQ(lab, want) << "seed " << seed;
    EXPECT_EQ(areas, want_areas) << "seed " << seed;
    EXPECT_GT(want_areas.size(), 3u);
  }
}
