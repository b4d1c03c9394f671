// [tier: unit] The clinical rules (ctbmd/clinical_rules.hpp): each threshold's side at its exact
// boundary as the published definitions state it, the string tables, and classify() deciding
// by the same functions that evaluate and the rules table use.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {
namespace {

using rules::Category;

struct Boundary {
  double value;
  Category expected;
};

TEST(ClinicalRules, AcrThresholdsFallOnThePublishedSide) {
  // ACR: normal > 120, osteopenia 80-120 (both ends included), osteoporosis < 80 mg/cm3
  const Boundary cases[] = {{120.001, Category::Normal},     {120.0, Category::Osteopenia},
                            {80.0, Category::Osteopenia},    {79.999, Category::Osteoporosis},
                            {250.0, Category::Normal},       {0.0, Category::Osteoporosis},
                            {-20.0, Category::Osteoporosis}, {100.0, Category::Osteopenia}};
  for (const auto& c : cases) EXPECT_EQ(rules::acrCategory(c.value), c.expected) << c.value;
}

TEST(ClinicalRules, WhoTscoreThresholdsFallOnThePublishedSide) {
  // WHO: normal T >= -1, osteopenia -2.5 < T < -1, osteoporosis T <= -2.5
  const Boundary cases[] = {{-1.0, Category::Normal},       {-1.001, Category::Osteopenia},
                            {-2.499, Category::Osteopenia}, {-2.5, Category::Osteoporosis},
                            {-4.0, Category::Osteoporosis}, {1.5, Category::Normal}};
  for (const auto& c : cases) EXPECT_EQ(rules::whoCategory(c.value), c.expected) << c.value;
}

TEST(ClinicalRules, L1HuThresholdsFallOnThePublishedSide) {
  // Pickhardt 2013: <= 110 HU osteoporosis likely, >= 160 HU normal likely, between indeterminate
  const Boundary cases[] = {{110.0, Category::Osteoporosis},    {110.001, Category::Indeterminate},
                            {159.999, Category::Indeterminate}, {160.0, Category::Normal},
                            {60.0, Category::Osteoporosis},     {300.0, Category::Normal}};
  for (const auto& c : cases) EXPECT_EQ(rules::l1HuCategory(c.value), c.expected) << c.value;
}

TEST(ClinicalRules, TsMedianThresholdsPerPhase) {
  // Wasserthal 2023: 90.25 HU native, +20 arterial, +14.75 portal-venous; below is osteoporosis
  EXPECT_DOUBLE_EQ(*rules::tsMedianThresholdHu("native"), 90.25);
  EXPECT_DOUBLE_EQ(*rules::tsMedianThresholdHu("arterial"), 110.25);
  EXPECT_DOUBLE_EQ(*rules::tsMedianThresholdHu("portal-venous"), 105.0);
  EXPECT_FALSE(rules::tsMedianThresholdHu("delayed"));
  EXPECT_EQ(rules::tsMedianCategory(90.25, 90.25), Category::NoOsteoporosis);
  EXPECT_EQ(rules::tsMedianCategory(90.24, 90.25), Category::Osteoporosis);
}

TEST(ClinicalRules, StringTablesRoundTripAndRefuseNearMisses) {
  for (auto c : {Category::Normal, Category::Osteopenia, Category::Osteoporosis, Category::Indeterminate,
                 Category::NoOsteoporosis, Category::Unavailable})
    EXPECT_EQ(rules::parseCategory(rules::toString(c)), c);
  EXPECT_FALSE(rules::parseCategory("Normal"));
  EXPECT_FALSE(rules::parseCategory("low_bone_mass"));
  const auto names = rules::ruleNames();
  ASSERT_EQ(names.size(), 6u);  // acr-qct who-tscore l1-hu ts-median bccnet radiomics-rf
  for (const auto& n : names) EXPECT_EQ(rules::toString(*rules::parseRule(n)), n);
  EXPECT_FALSE(rules::parseRule("acr"));
  EXPECT_EQ(rules::threeClasses(), (std::vector<std::string>{"normal", "osteopenia", "osteoporosis"}));
  // every rule has its row in the table classify and docs/methods.md show
  const auto table = classifyRules();
  for (const auto& n : names) EXPECT_TRUE(table.contains(n)) << n;
  EXPECT_EQ(table.size(), names.size());
  EXPECT_EQ(table["acr-qct"]["classes"]["osteopenia"], "80 - 120");
  EXPECT_EQ(table["who-tscore"]["classes"]["osteopenia"], "-2.5 < T < -1");
}

TEST(LevelStatusTable, RoundTripsAndRefusesOtherTextNamingTheFile) {
  for (auto s : {LevelStatus::Found, LevelStatus::Partial, LevelStatus::Missing})
    EXPECT_EQ(parseLevelStatus(toString(s)), s);
  for (auto s : {SpineStatus::Named, SpineStatus::LevelsNotNamed, SpineStatus::NoSpine})
    EXPECT_EQ(parseSpineStatus(toString(s)), s);
  try {
    parseLevelStatus("Found", "case/localize.json");
    FAIL() << "accepted 'Found'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("case/localize.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parseSpineStatus("ok"), InputError);
  for (auto s : {CaseStatus::Ok, CaseStatus::NoSpine, CaseStatus::LevelsNotNamed, CaseStatus::Error})
    EXPECT_EQ(parseCaseStatus(toString(s)), s);
  EXPECT_EQ(caseStatusOf(SpineStatus::Named), CaseStatus::Ok);
  EXPECT_EQ(caseStatusOf(SpineStatus::NoSpine), CaseStatus::NoSpine);
  EXPECT_EQ(caseStatusOf(SpineStatus::LevelsNotNamed), CaseStatus::LevelsNotNamed);
  EXPECT_THROW(parseCaseStatus("named", "out/a/case.json"), InputError);
}

// classify() decides by the same function as evaluate: at each ACR boundary and either side.
TEST(ClinicalRules, ClassifyAgreesWithTheRuleFunctions) {
  for (double v : {79.999, 80.0, 100.0, 120.0, 120.001}) {
    BmdResult b;
    b.method = "calibration";
    b.calibration.calibrated = true;
    b.bmd_l1l2 = v;
    const auto r = classify(b);
    EXPECT_EQ(r.category, rules::toString(rules::acrCategory(v))) << v;
  }
  BmdResult none;
  EXPECT_EQ(classify(none).category, "unavailable");
}

// The nominal conversion carries its own uncertainty: 9.2 % of the slope at 120 kVp, 28.2 %
// off it (Skornitzke et al. 2022); a KVP that is not a number is unknown, not off.
TEST(ClinicalRules, NominalConversionUncertaintyByTubeVoltage) {
  EXPECT_FALSE(rules::kvpOffNominal("120"));
  EXPECT_FALSE(rules::kvpOffNominal("121.5"));
  EXPECT_FALSE(rules::kvpOffNominal(""));
  EXPECT_FALSE(rules::kvpOffNominal("n/a"));
  EXPECT_TRUE(rules::kvpOffNominal("100"));
  EXPECT_TRUE(rules::kvpOffNominal("140"));
  const auto c = Calibration::defaultUncalibrated();
  EXPECT_FALSE(c.calibrated);
  EXPECT_NEAR(c.slope_se / c.slope, 0.092, 1e-12);
  EXPECT_NEAR(Calibration::nominalFor("120").slope_se, c.slope_se, 1e-12);
  EXPECT_NEAR(Calibration::nominalFor("140").slope_se / c.slope, 0.282, 1e-12);
  // the SE of a level: 150 HU with an ROI SE of 1 HU -> sqrt((0.8 * 1)^2 + (150 * 0.0736)^2)
  RoiResult roi;
  LevelRoi lr;
  lr.label = kL1;
  lr.name = "L1";
  lr.status = LevelStatus::Found;
  lr.usable = true;
  lr.stats.voxels = 100;
  lr.stats.mean_hu = lr.stats.median_hu = 150;
  lr.stats.sd_hu = 10;
  roi.levels.push_back(lr);
  const auto b = estimateBmd(roi, c, {});
  const auto l1 =
      std::find_if(b.levels.begin(), b.levels.end(), [](const LevelBmd& l) { return l.label == kL1; });
  ASSERT_NE(l1, b.levels.end());
  EXPECT_NEAR(l1->bmd_se, std::hypot(0.8 * 1.0, 150 * 0.0736), 1e-9);
}

}  // namespace
}  // namespace ctbmd
