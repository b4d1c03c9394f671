// Helpers of the classical spine analysis.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "internal/spine.hpp"

using namespace ctbmd;

TEST(Spine, InPlaneBinningAveragesBlocksAndKeepsTheFrame) {
  // 5 x 7 pixels of 0.7 x 0.5 mm, 2 slices: binned to 1.6 mm -> blocks of 2 x 3 pixels
  // (2 x 2 blocks; the fifth column and the seventh row are left over).
  spine::Volume v;
  v.nx = 5;
  v.ny = 7;
  v.nz = 2;
  v.sx = 0.7;
  v.sy = 0.5;
  v.sz = 2.0;
  v.ox = -10;
  v.oy = 20;
  v.oz = 5;
  std::vector<int16_t> hu(static_cast<size_t>(v.nx) * v.ny * v.nz);
  for (int k = 0; k < v.nz; ++k)
    for (int j = 0; j < v.ny; ++j)
      for (int i = 0; i < v.nx; ++i)
        hu[(static_cast<size_t>(k) * v.ny + j) * v.nx + i] =
            static_cast<int16_t>(k == 0 ? 10 * i + j : -7 * i - 100 * j);
  v.hu = hu.data();
  std::vector<int16_t> store;
  auto b = spine::binInPlane(v, 1.6, store);
  ASSERT_EQ(b.nx, 2);
  ASSERT_EQ(b.ny, 2);
  ASSERT_EQ(b.nz, 2);
  EXPECT_DOUBLE_EQ(b.sx, 1.4);
  EXPECT_DOUBLE_EQ(b.sy, 1.5);
  EXPECT_DOUBLE_EQ(b.sz, 2.0);
  // a block's value sits at its centre: the mean of its pixel positions
  EXPECT_DOUBLE_EQ(b.x(0), -10 + 0.35);
  EXPECT_DOUBLE_EQ(b.y(0), 20 + 0.5);
  EXPECT_DOUBLE_EQ(b.z(1), 7);
  // slice 0, block (1, 0): i in {2, 3}, j in {0, 1, 2}: mean of 10 i + j = 25 + 1 = 26
  EXPECT_EQ(b.at(0, 0, 0), 6);  // i {0,1}: 5 + 1
  EXPECT_EQ(b.at(1, 0, 0), 26);
  EXPECT_EQ(b.at(1, 1, 0), 29);  // j {3, 4, 5}
  // slice 1, block (0, 0): mean of -7 i - 100 j over i {0,1}, j {0,1,2} = -3.5 - 100 -> -104 (rounded)
  EXPECT_EQ(b.at(0, 0, 1), -104);
  // Coarse pixels are left alone (the same buffer).
  v.sx = v.sy = 0.9;
  auto same = spine::binInPlane(v, 1.6, store);
  EXPECT_EQ(same.hu, v.hu);
  EXPECT_EQ(same.nx, v.nx);
}

TEST(Spine, SlicesAreAveragedAlongTheColumnOnlyInVeryNoisyThinSliceScans) {
  EXPECT_EQ(spine::columnAveraging(10, 1.0), 0);
  EXPECT_EQ(spine::columnAveraging(50, 0.625), 0);
  EXPECT_EQ(spine::columnAveraging(80, 1.5), 1);     // (80/50)^2 = 2.6 slices -> 3 (4.5 mm)
  EXPECT_EQ(spine::columnAveraging(120, 0.625), 3);  // 5.8 -> 7 slices (4.4 mm)
  EXPECT_EQ(spine::columnAveraging(120, 1.0), 2);    // capped at 5 mm of column
  EXPECT_EQ(spine::columnAveraging(200, 3.0), 0);    // one 3 mm slice is all 5 mm allow
}
