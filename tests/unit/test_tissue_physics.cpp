// The phantom's tissue model (internal/tissue_physics.hpp): CT numbers from NIST attenuation
// coefficients, against hand-computed values and the literature's ranges, and the phantom's
// reference tissues off the internal calibrator's table (so internal calibration is measured,
// not restated).
#include <gtest/gtest.h>

#include <cmath>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/phantom.hpp"
#include "internal/tissue_physics.hpp"
#include "test_support.hpp"

using namespace ctbmd::tissue;

namespace {

TEST(TissuePhysics, WaterIsZeroAndAirMinusOneThousand) {
  for (double e : {50.0, 63.0, 80.0, 97.0}) {
    EXPECT_NEAR(ctNumber(Material::Water, 1.0, e), 0.0, 1e-9) << e;
    EXPECT_NEAR(ctNumber(Material::Air, 0.001205, e), -999.0, 0.5) << e;
  }
}

TEST(TissuePhysics, HydroxyapatiteSlopeFromTheTables) {
  // At 60 keV by hand: mu/rho(HA) = 0.3989 Ca 0.6578 + 0.1850 P 0.3494 + 0.4141 O 0.1907 +
  // 0.0020 H 0.3260 = 0.4067; (0.4067 - 0.2059 / 3.16) / 0.2059 = 1.659 HU per mg/cm3.
  EXPECT_NEAR(hydroxyapatiteSlope(60), 1.659, 0.002);
  // At 80 keV: (0.2589 - 0.1837 / 3.16) / 0.1837 = 1.093.
  EXPECT_NEAR(hydroxyapatiteSlope(80), 1.093, 0.002);
  double last = 1e9;
  for (double e = 50; e <= 100; e += 2.5) {
    const double s = hydroxyapatiteSlope(e);
    EXPECT_LT(s, last) << e;  // falls with energy: the inversion is unique
    last = s;
    if (e > 50 && e < 100) {
      EXPECT_NEAR(effectiveEnergyForSlope(s), e, 0.01) << e;
    }
  }
}

TEST(TissuePhysics, SoftTissuesInTheLiteratureRanges) {
  // 120 kVp scanners (effective energy ~65-80 keV): subcutaneous fat -90 to -120 HU, skeletal
  // muscle +35 to +55, unenhanced blood +35 to +60.
  for (double e : {65.0, 72.0, 80.0}) {
    const double fat = ctNumber(Material::Adipose, 0.92, e);
    EXPECT_GT(fat, -120) << e;
    EXPECT_LT(fat, -90) << e;
    const double muscle = ctNumber(Material::Muscle, 1.05, e);
    EXPECT_GT(muscle, 35) << e;
    EXPECT_LT(muscle, 55) << e;
    const double blood = ctNumber(Material::Blood, 1.055, e);
    EXPECT_GT(blood, 35) << e;
    EXPECT_LT(blood, 60) << e;
  }
}

// The phantom's reference tissues come from the model: their HA-equivalent densities
// ((HU - intercept) / slope) move with the scanner's energy, as real ones do, where the
// internal calibrator's table holds them fixed.
TEST(TissuePhysics, PhantomTissuesAreNotTheCalibratorsTable) {
  const auto table = ctbmd::TissueTable::builtin();
  double fat_eq[2];
  int i = 0;
  for (double slope : {1.15, 1.35}) {
    auto p = ctbmd::test::smallPhantom(3);
    p.nx = p.ny = 200;
    p.pixel_mm = 2.0;
    p.cal_slope_hu = slope;
    p.cal_intercept_hu = -5;
    const auto r = ctbmd::makePhantom(p);
    const auto& tm = r.truth.at("tissue_model");
    const double e = tm.at("effective_energy_kev").get<double>();
    EXPECT_NEAR(e, effectiveEnergyForSlope(slope), 1e-9);
    const double fat = r.truth.at("tissues_hu").at("fat").get<double>();
    const double rho = tm.at("density_g_cm3").at("fat").get<double>();
    EXPECT_NEAR(fat, -5 + ctNumber(Material::Adipose, rho, e), 1e-9);
    fat_eq[i++] = (fat + 5) / slope;
  }
  // Same seed, so the same fat density: only the energy moves its equivalent density, by
  // more than 5 mg/cm3 between the two scanners; the table says -80 for both.
  EXPECT_GT(std::abs(fat_eq[0] - fat_eq[1]), 5.0);
  EXPECT_EQ(table.find("fat")->density, -80.0);
}

}  // namespace
