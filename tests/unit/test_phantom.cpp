// The digital phantom's truth must agree with its own image.
#include <gtest/gtest.h>
#include <itkImageRegionConstIteratorWithIndex.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/phantom.hpp"
#include "internal/raster2d.hpp"
#include "test_support.hpp"

using namespace ctbmd;

namespace {
// Mean HU of a body's voxels farther than `depth_mm` (in-plane) and 2 slices (along z)
// from its surface: the trabecular interior, away from cortex and partial volume.
std::map<int, std::pair<double, long>> interiorMeans(const PhantomResult& r, double depth_mm) {
  auto am = canonicalAxisMap(r.labels.GetPointer());
  auto lab = toCanonical<uint8_t>(r.labels.GetPointer(), am);
  auto ct = toCanonical<int16_t>(r.ct.GetPointer(), am);
  auto sz = lab->GetLargestPossibleRegion().GetSize();
  int nx = sz[0], ny = sz[1], nz = sz[2];
  r2::Grid2 g{nx, ny, lab->GetSpacing()[0], lab->GetSpacing()[1]};
  std::map<int, std::pair<double, long>> out;
  for (int l : kReportedLevels) {
    double sum = 0;
    long n = 0;
    for (int k = 2; k < nz - 2; ++k) {
      std::vector<uint8_t> m(g.size());
      bool any = false;
      for (size_t q = 0; q < g.size(); ++q) {
        size_t base = static_cast<size_t>(k) * g.size() + q;
        m[q] = lab->GetBufferPointer()[base] == l && lab->GetBufferPointer()[base - 2 * g.size()] == l &&
               lab->GetBufferPointer()[base + 2 * g.size()] == l;
        any = any || m[q];
      }
      if (!any) continue;
      auto e = r2::erode(g, m, depth_mm);
      for (size_t q = 0; q < g.size(); ++q)
        if (e[q]) {
          sum += ct->GetBufferPointer()[static_cast<size_t>(k) * g.size() + q];
          ++n;
        }
    }
    out[l] = {n ? sum / n : 0.0, n};
  }
  return out;
}
}  // namespace

TEST(Phantom, TruthMatchesImage) {
  auto p = test::smallPhantom(11);
  p.noise_sd = 20;
  auto r = makePhantom(p);
  auto means = interiorMeans(r, 3.0);
  for (int l : kReportedLevels) {
    const auto& t = r.truth["levels"][levelName(l)];
    ASSERT_EQ(t["coverage"], "complete") << levelName(l);
    auto [mean, n] = means[l];
    ASSERT_GT(n, 500) << levelName(l);
    // Noise SE (20/sqrt(n) < 1 HU) plus the residual mean of the zero-mean texture over a
    // ~20 mm region (a few HU at most for 2.5-5.5 mm wavelengths): 4 HU bounds both.
    EXPECT_NEAR(mean, t["hu_trabecular"].get<double>(), 4.0) << levelName(l);
    // HU follows the scanner calibration of the truth.
    double hu = p.cal_intercept_hu + p.cal_slope_hu * t["bmd_mg_cm3"].get<double>();
    EXPECT_NEAR(t["hu_trabecular"].get<double>(), hu, 1e-9);
  }
  // Centroids: the label map's own centroid in physical space.
  auto am = canonicalAxisMap(r.labels.GetPointer());
  (void)am;
  double sx = 0, sy = 0, sz = 0;
  long n = 0;
  itk::ImageRegionConstIteratorWithIndex<LabelImage> it(r.labels, r.labels->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
    if (it.Get() == kL3) {
      LabelImage::PointType pt;
      r.labels->TransformIndexToPhysicalPoint(it.GetIndex(), pt);
      sx += pt[0];
      sy += pt[1];
      sz += pt[2];
      ++n;
    }
  auto c = r.truth["levels"]["L3"]["centroid_mm"];
  EXPECT_NEAR(sx / n, c[0].get<double>(), 1e-6);
  EXPECT_NEAR(sy / n, c[1].get<double>(), 1e-6);
  EXPECT_NEAR(sz / n, c[2].get<double>(), 1e-6);
}

TEST(Phantom, DeterministicForASeed) {
  auto p = test::smallPhantom(5);
  p.nx = p.ny = 200;
  p.pixel_mm = 2.0;
  auto a = makePhantom(p), b = makePhantom(p);
  size_t n = a.ct->GetLargestPossibleRegion().GetNumberOfPixels();
  EXPECT_EQ(0, std::memcmp(a.ct->GetBufferPointer(), b.ct->GetBufferPointer(), n * 2));
  EXPECT_EQ(a.truth, b.truth);
  p.seed = 6;
  auto c = makePhantom(p);
  EXPECT_NE(a.truth["levels"]["L1"]["bmd_mg_cm3"], c.truth["levels"]["L1"]["bmd_mg_cm3"]);
}

TEST(Phantom, OrientationChangesStorageNotAnatomy) {
  auto p = test::smallPhantom(8);
  p.nx = p.ny = 200;
  p.pixel_mm = 2.0;
  auto lps = makePhantom(p);
  p.orientation = "PIR";
  auto pir = makePhantom(p);
  EXPECT_EQ(orientationCode(pir.ct->GetDirection()), "PIR");
  for (int l : kReportedLevels)
    for (int k = 0; k < 3; ++k)
      EXPECT_NEAR(lps.truth["levels"][levelName(l)]["centroid_mm"][k].get<double>(),
                  pir.truth["levels"][levelName(l)]["centroid_mm"][k].get<double>(), 1e-6);
  // same voxels at the same world positions
  auto back = toCanonical<int16_t>(pir.ct.GetPointer(), canonicalAxisMap(pir.ct.GetPointer()));
  EXPECT_EQ(0, std::memcmp(back->GetBufferPointer(), lps.ct->GetBufferPointer(),
                           lps.ct->GetLargestPossibleRegion().GetNumberOfPixels() * 2));
}

TEST(Phantom, HardCasesAreInTheTruth) {
  auto p = test::smallPhantom(9);
  p.nx = p.ny = 200;
  p.pixel_mm = 2.0;
  p.rib_pairs = 13;
  auto r = makePhantom(p);
  EXPECT_EQ(r.truth["anchors"]["last_rib_bearing"], "T13");
  EXPECT_EQ(r.truth["anchors"]["on_sacrum"], "L5");
  p.rib_pairs = 12;
  p.lumbar6 = true;
  r = makePhantom(p);
  EXPECT_EQ(r.truth["anchors"]["on_sacrum"], "L6");
  p.lumbar6 = false;
  p.fracture_level = "L2";
  r = makePhantom(p);
  EXPECT_TRUE(r.truth["levels"]["L2"]["fractured"].get<bool>());
  EXPECT_LT(r.truth["levels"]["L2"]["body_volume_mm3"].get<double>(),
            0.85 * r.truth["levels"]["L1"]["body_volume_mm3"].get<double>());
}

TEST(Phantom, CalibrationRodsHaveTheirDensity) {
  auto p = test::smallPhantom(4);
  p.rods = {0, 50, 100, 200};
  p.noise_sd = 10;
  auto r = makePhantom(p);
  ASSERT_EQ(r.truth["rods"].size(), 4u);
  std::map<int, std::pair<double, long>> acc;
  size_t n = r.ct->GetLargestPossibleRegion().GetNumberOfPixels();
  // interior of each rod: label present two voxels either side in x
  auto sz = r.labels->GetLargestPossibleRegion().GetSize();
  for (size_t i = 2; i + 2 < n; ++i) {
    int l = r.labels->GetBufferPointer()[i];
    if (l < phantom_labels::kRodFirst || l > phantom_labels::kRodFirst + 3) continue;
    if (r.labels->GetBufferPointer()[i - 2] != l || r.labels->GetBufferPointer()[i + 2] != l) continue;
    if (i < 3 * sz[0] || i + 3 * sz[0] >= n) continue;
    if (r.labels->GetBufferPointer()[i - 3 * sz[0]] != l || r.labels->GetBufferPointer()[i + 3 * sz[0]] != l)
      continue;
    acc[l].first += r.ct->GetBufferPointer()[i];
    acc[l].second++;
  }
  for (const auto& rod : r.truth["rods"]) {
    auto [s, c] = acc[rod["label"].get<int>()];
    ASSERT_GT(c, 50);
    EXPECT_NEAR(s / c, rod["hu"].get<double>(), 2.0);  // noise SE < 1.5 HU at n > 50
  }
}

namespace {
// Mean and SD of L1's voxels at least 3 voxels (along each axis) inside the body.
std::pair<double, double> l1Interior(const PhantomResult& r) {
  auto am = canonicalAxisMap(r.labels.GetPointer());
  auto lab = toCanonical<uint8_t>(r.labels.GetPointer(), am);
  auto ct = toCanonical<int16_t>(r.ct.GetPointer(), am);
  auto sz = lab->GetLargestPossibleRegion().GetSize();
  const long nx = long(sz[0]), ny = long(sz[1]), nz = long(sz[2]);
  const uint8_t* l = lab->GetBufferPointer();
  const int16_t* c = ct->GetBufferPointer();
  auto at = [&](long x, long y, long z) { return (z * ny + y) * nx + x; };
  double s = 0, s2 = 0;
  long n = 0;
  for (long z = 3; z < nz - 3; ++z)
    for (long y = 3; y < ny - 3; ++y)
      for (long x = 3; x < nx - 3; ++x) {
        if (l[at(x, y, z)] != kL1) continue;
        bool inner = true;
        for (long d : {-3L, 3L})
          inner =
              inner && l[at(x + d, y, z)] == kL1 && l[at(x, y + d, z)] == kL1 && l[at(x, y, z + d)] == kL1;
        if (!inner) continue;
        s += c[at(x, y, z)];
        s2 += double(c[at(x, y, z)]) * c[at(x, y, z)];
        ++n;
      }
  const double mean = s / double(n);
  return {mean, std::sqrt(s2 / double(n) - mean * mean)};
}
}  // namespace

// --texture-model density (radiomics cohorts): the texture of a low-density level is coarser and
// stronger by the documented factor, its mean is unchanged, and the default model is untouched
// (the golden phantoms cover that byte for byte).
TEST(Phantom, DensityTextureModelScalesTextureNotMean) {
  PhantomParams p;
  p.nx = p.ny = 256;
  p.pixel_mm = 1.2;
  p.slice_mm = 1.5;
  p.top = "T12";
  p.bottom = "L3";
  p.seed = 5;
  p.noise_sd = 0;  // the texture alone
  p.bmd = {{"L1", 60.0}};
  const auto uniform = l1Interior(makePhantom(p));
  p.texture_model = "density";
  const PhantomResult dens = makePhantom(p);
  const auto d = l1Interior(dens);
  const double factor = std::clamp(1.0 + (150.0 - 60.0) / 150.0, 0.6, 2.0);  // 1.6
  EXPECT_NEAR(d.first, uniform.first, 2.0) << "the texture must not move the mean HU";
  // The amplitude scales by `factor`, and the voxel's partial-volume averaging damps the uniform
  // model's 1.2-3 mm waves more than the coarser ones, so the SD grows by more than the factor
  // (measured 4.0x at 1.2 mm voxels), never less; 3x the factor bounds it from above.
  EXPECT_GE(d.second / uniform.second, 0.95 * factor) << uniform.second << " -> " << d.second;
  EXPECT_LE(d.second / uniform.second, 3.0 * factor) << uniform.second << " -> " << d.second;
  EXPECT_EQ(dens.truth.value("texture_model", ""), "density");
}
