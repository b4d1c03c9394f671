// Calibration: statistics against published values, rods/paired/internal fits on phantoms
// with a known scanner calibration, and the checks that stop a bad internal calibration.
#include <cmath>
#include <fstream>
#include <random>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/stats.hpp"
#include "test_support.hpp"

namespace ctbmd {
namespace {

TEST(Stats, DistributionsMatchPublishedTables) {
  // Student t two-sided 95 % critical values (any statistics textbook table, e.g. NIST/SEMATECH
  // e-Handbook 1.3.6.7.2): df 1 -> 12.706, 2 -> 4.303, 10 -> 2.228, 30 -> 2.042.
  EXPECT_NEAR(stats::studentTQuantile(0.975, 1), 12.7062047, 1e-6);
  EXPECT_NEAR(stats::studentTQuantile(0.975, 2), 4.30265273, 1e-7);
  EXPECT_NEAR(stats::studentTQuantile(0.975, 10), 2.22813885, 1e-7);
  EXPECT_NEAR(stats::studentTQuantile(0.975, 30), 2.04227246, 1e-7);
  EXPECT_NEAR(stats::studentTCdf(2.0, 5), 0.94903026, 1e-7);
  EXPECT_NEAR(stats::normalQuantile(0.975), 1.959963985, 1e-9);
  EXPECT_NEAR(stats::normalQuantile(1e-6), -4.753424309, 1e-8);
  EXPECT_NEAR(stats::normalCdf(-1.0), 0.158655254, 1e-9);
  EXPECT_NEAR(stats::incompleteBeta(2, 3, 0.4), 0.5248, 1e-12);  // closed form for integer a, b
}

TEST(Stats, LeastSquaresRecoversAnExactLineAndScalesItsErrors) {
  std::vector<double> x{0, 1, 2, 3, 4}, y;
  for (double v : x) y.push_back(3 + 2 * v);
  auto f = stats::fitOls(x, y);
  EXPECT_NEAR(f.intercept, 3, 1e-12);
  EXPECT_NEAR(f.slope, 2, 1e-12);
  EXPECT_NEAR(f.r2, 1, 1e-12);
  // Residuals +-1 alternating: hand-computed SEs (Sxx = 10, s^2 = sum r^2 / 3).
  std::vector<double> y2{4, 4, 8, 8, 12};
  auto g = stats::fitOls(x, y2);
  double sxx = 10, n = 5, xbar = 2;
  double sse = 0;
  for (size_t i = 0; i < x.size(); ++i) sse += std::pow(y2[i] - g.intercept - g.slope * x[i], 2);
  double s2 = sse / 3;
  EXPECT_NEAR(g.slope, 2.0, 1e-12);  // sum (x - 2)(y - 7.2) / 10 = 20 / 10
  EXPECT_NEAR(g.slope_se, std::sqrt(s2 / sxx), 1e-12);
  EXPECT_NEAR(g.intercept_se, std::sqrt(s2 * (1 / n + xbar * xbar / sxx)), 1e-12);
  EXPECT_NEAR(g.slope_ci95[1] - g.slope, 3.18244631 * g.slope_se, 1e-7);  // t(0.975, 3)
  EXPECT_THROW(stats::fitOls({1, 1, 1}, {1, 2, 3}), std::invalid_argument);
}

TEST(Stats, HuberResistsOutliersWhereLeastSquaresDoesNot) {
  std::mt19937 rng(5);
  std::normal_distribution<double> noise(0, 3);
  std::vector<double> x, y;
  for (int i = 0; i < 60; ++i) {
    double hu = 40 + 3 * i;
    x.push_back(hu);
    y.push_back(4 + 0.8 * hu + noise(rng));
  }
  for (int i = 0; i < 6; ++i) y[static_cast<size_t>(i * 10)] += 80;  // 10 % gross errors
  auto ols = stats::fitOls(x, y);
  auto hub = stats::fitHuber(x, y);
  EXPECT_LT(std::abs(hub.slope - 0.8), 0.02);
  EXPECT_LT(std::abs(hub.intercept - 4), 3.0);
  // Least squares is pulled by the outliers by more than the robust fit's error.
  EXPECT_GT(std::abs(ols.intercept - 4), 2 * std::abs(hub.intercept - 4));
  int down = 0;
  for (double w : hub.weights) down += w < 1;
  EXPECT_GE(down, 6);
}

PhantomResult rodPhantom(uint64_t seed, double a, double b, const std::vector<double>& rods,
                         const std::string& contrast = "none") {
  PhantomParams p;
  p.nx = p.ny = 336;
  p.pixel_mm = 1.15;
  p.slice_mm = 2.5;
  p.top = "T12";
  p.bottom = "L3";
  p.seed = seed;
  p.cal_intercept_hu = a;
  p.cal_slope_hu = b;
  p.noise_sd = 20;
  p.rods = rods;
  p.contrast = contrast;
  return makePhantom(p);
}

Scan scanOf(const PhantomResult& r) {
  Scan s;
  s.image = r.ct;
  s.info.path = "phantom";
  return s;
}

TEST(Calibrate, RodsRecoverTheScannerCalibration) {
  struct Case {
    uint64_t seed;
    double a, b;
    const char* def;
    std::vector<double> rods;
  };
  for (const Case& c : {Case{11, -20, 1.30, "esp-ha", {50, 100, 200}},
                        Case{12, 8, 1.15, "k2hpo4-5rod", {25, 50, 100, 150, 250}}}) {
    auto ph = rodPhantom(c.seed, c.a, c.b, c.rods);
    auto fit = calibrateRods(scanOf(ph), PhantomDefinition::builtin(c.def));
    // Truth: HU = a + b * BMD  ->  BMD = -a / b + HU / b.
    double slope = 1 / c.b, intercept = -c.a / c.b;
    EXPECT_NEAR(fit.fit.slope, slope, 0.01 * slope) << c.def;
    EXPECT_NEAR(fit.fit.intercept, intercept, 2.0) << c.def;  // 2 mg/cm3 = 1 % of a 200 mg/cm3 range
    ASSERT_EQ(fit.points.size(), c.rods.size());
    for (size_t i = 0; i < c.rods.size(); ++i)
      EXPECT_NEAR(fit.points[i].hu, c.a + c.b * fit.points[i].density, 2.0) << fit.points[i].name;
    // Round trip through the JSON that bmd-estimate reads.
    auto cal = Calibration::fromJson(fit.toJson(), "x");
    EXPECT_DOUBLE_EQ(cal.slope, fit.fit.slope);
    EXPECT_GT(cal.slope_se, 0);
  }
}

TEST(Calibrate, RodsThatAreNotThereAreNotInvented) {
  auto ph = rodPhantom(13, -5, 1.25, {});  // no phantom under the patient
  EXPECT_THROW(calibrateRods(scanOf(ph), PhantomDefinition::builtin("esp-ha")), ProcessingError);
}

// Internal calibration on phantoms whose tissues follow their own attenuation
// (internal/tissue_physics.hpp), not the table: (1) the measurement is exact — the fit is the
// least-squares line through the phantom's true tissue HU and the table's densities; (2) the
// table's fixed HA-equivalent densities (made for 1.25 HU per mg/cm3) then leave a model error
// against the scanner's own line, measured 5-6 % at 150 mg/cm3 for slopes 1.18 and 1.32 (70 and
// 77 keV): bounded by 8 % + 2 mg/cm3 over 50-250 mg/cm3. A kVp-specific table removes it.
TEST(Calibrate, InternalRecoversTheScannerCalibrationOnPhantoms) {
  const auto table = TissueTable::builtin();
  for (auto [seed, a, b] : {std::tuple<uint64_t, double, double>{21, -15, 1.32}, {22, 10, 1.18}}) {
    auto ph = rodPhantom(seed, a, b, {});
    Scan s = scanOf(ph);
    auto loc = localize(s);
    auto fit = calibrateInternal(s, loc, table);
    for (const auto& p : fit.points) EXPECT_TRUE(p.used) << p.name << ": " << p.note;
    // (1) the line through (true HU, table density) of air, fat, muscle and blood
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    const char* names[] = {"air", "fat", "muscle", "blood"};
    for (const char* n : names) {
      const double x = ph.truth["tissues_hu"][n].get<double>(), y = table.find(n)->density;
      sx += x;
      sy += y;
      sxx += x * x;
      sxy += x * y;
    }
    const double slope = (4 * sxy - sx * sy) / (4 * sxx - sx * sx), icpt = (sy - slope * sx) / 4;
    EXPECT_NEAR(fit.fit.slope, slope, 0.005 * slope) << "seed " << seed;
    EXPECT_NEAR(fit.fit.intercept, icpt, 1.0) << "seed " << seed;
    // (2) against the scanner's own line
    for (double bmd : {50.0, 150.0, 250.0}) {
      double hu = a + b * bmd;
      EXPECT_NEAR(fit.fit.intercept + fit.fit.slope * hu, bmd, 0.08 * bmd + 2.0) << "seed " << seed;
    }
  }
}

TEST(Calibrate, InternalStopsOnImplausibleTissues) {
  // A scanner whose HU scale is off by +150 HU: every tissue fails its range -> refused.
  auto ph = rodPhantom(23, 150, 1.25, {});
  Scan s = scanOf(ph);
  auto loc = localize(s);
  try {
    calibrateInternal(s, loc, TissueTable::builtin());
    FAIL() << "a bad calibration was accepted";
  } catch (const ProcessingError& e) {
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
  }
  // Contrast-enhanced blood is excluded (not used), the rest still calibrates.
  auto pv = rodPhantom(24, -5, 1.25, {}, "portal-venous");
  Scan s2 = scanOf(pv);
  auto fit = calibrateInternal(s2, localize(s2), TissueTable::builtin());
  for (const auto& p : fit.points)
    if (p.name == "blood") {
      EXPECT_FALSE(p.used);
      EXPECT_NE(p.note.find("contrast"), std::string::npos) << p.note;
    }
  EXPECT_NEAR(fit.fit.slope, 0.8, 0.016);
}

TEST(Calibrate, PairedCsvWithHuberFit) {
  test::TempDir tmp;
  auto csv = tmp / "pairs.csv";
  {
    std::ofstream o(csv);
    o << "case,level,hu,bmd\n";
    std::mt19937 rng(3);
    std::normal_distribution<double> n(0, 4);
    for (int i = 0; i < 40; ++i)
      o << "c" << i << ",L1," << 50 + 5 * i << "," << (i == 7 ? 400.0 : 2 + 0.82 * (50 + 5 * i) + n(rng))
        << "\n";
  }
  auto rows = readPairedCsv(csv);
  ASSERT_EQ(rows.size(), 40u);
  auto hub = calibratePaired(rows, "huber", "hydroxyapatite");
  EXPECT_NEAR(hub.fit.slope, 0.82, 0.02);
  EXPECT_EQ(hub.points[7].note, "down-weighted (huber)");
  auto j = hub.toJson();
  EXPECT_EQ(j["fit"]["method"], "huber");
  EXPECT_THROW(calibratePaired(rows, "lasso", "hydroxyapatite"), UsageError);
  {
    std::ofstream o(tmp / "bad.csv");
    o << "case,x,y\nA,1,2\n";
  }
  EXPECT_THROW(readPairedCsv(tmp / "bad.csv"), InputError);
}

}  // namespace
}  // namespace ctbmd
