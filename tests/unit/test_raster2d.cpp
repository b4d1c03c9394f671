#include <gtest/gtest.h>

#include <cmath>
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
