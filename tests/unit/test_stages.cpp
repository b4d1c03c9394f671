#include <gtest/gtest.h>

#include <cmath>

#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"
#include "test_support.hpp"

using namespace ctbmd;

TEST(Levels, NamesAndLabels) {
  EXPECT_EQ(levelName(19), "T12");
  EXPECT_EQ(levelName(20), "L1");
  EXPECT_EQ(levelName(24), "L5");
  EXPECT_EQ(levelName(28), "T13");
  for (int l : kReportedLevels) EXPECT_EQ(levelLabel(levelName(l)), l);
  EXPECT_THROW(levelLabel("X1"), UsageError);
}

TEST(RoiStats, PercentilesMatchNumpyLinear) {
  std::vector<float> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  auto s = computeStats(v, 2.0);
  EXPECT_DOUBLE_EQ(s.mean_hu, 5.5);
  EXPECT_DOUBLE_EQ(s.median_hu, 5.5);
  EXPECT_NEAR(s.sd_hu, 3.0276503540974917, 1e-12);  // numpy std(ddof=1)
  EXPECT_NEAR(s.p05, 1.45, 1e-12);                  // numpy.percentile(v, 5)
  EXPECT_NEAR(s.p25, 3.25, 1e-12);
  EXPECT_NEAR(s.p95, 9.55, 1e-12);
  EXPECT_EQ(s.voxels, 10);
  EXPECT_DOUBLE_EQ(s.volume_mm3, 20.0);
}

namespace {
RoiResult roiWith(std::map<int, std::pair<double, bool>> hu) {
  RoiResult r;
  r.protocol = "ellipse-s1";
  for (int l : kReportedLevels) {
    LevelRoi lr;
    lr.label = l;
    lr.name = levelName(l);
    auto it = hu.find(l);
    if (it != hu.end()) {
      lr.status = LevelStatus::Found;
      lr.usable = it->second.second;
      if (!lr.usable) lr.flags.push_back("suspected_fracture");
      lr.stats.mean_hu = lr.stats.median_hu = it->second.first;
      lr.stats.sd_hu = 30;
      lr.stats.voxels = 900;
    } else {
      lr.flags.push_back("missing");
    }
    r.levels.push_back(lr);
  }
  return r;
}
}  // namespace

TEST(Bmd, CalibrationArithmeticAndUncertainty) {
  Calibration c;
  c.calibrated = true;
  c.intercept = -4;
  c.slope = 0.8;
  c.intercept_se = 2;
  c.slope_se = 0.01;
  auto r = estimateBmd(roiWith({{kL1, {150, true}}, {kL2, {130, true}}}), c);
  const LevelBmd* l1 = r.find(kL1);
  EXPECT_DOUBLE_EQ(l1->bmd, -4 + 0.8 * 150);
  double se_hu = 30.0 / 30.0;  // sd / sqrt(900)
  double var = 0.64 * se_hu * se_hu + 4 + 150.0 * 150.0 * 1e-4;
  EXPECT_NEAR(l1->bmd_se, std::sqrt(var), 1e-12);
  ASSERT_TRUE(r.bmd_l1l2);
  EXPECT_DOUBLE_EQ(*r.bmd_l1l2, 0.5 * ((-4 + 120.0) + (-4 + 104.0)));
  EXPECT_EQ(r.levels_used, (std::vector<std::string>{"L1", "L2"}));
}

TEST(Bmd, T12SubstitutesForAnUnusableLevel) {
  auto c = Calibration::defaultUncalibrated();
  auto r = estimateBmd(roiWith({{kT12, {140, true}}, {kL1, {60, false}}, {kL2, {130, true}}}), c);
  EXPECT_EQ(r.levels_used, (std::vector<std::string>{"T12", "L2"}));
  EXPECT_NE(r.levels_reason.find("T12 substitutes for L1"), std::string::npos);
  EXPECT_DOUBLE_EQ(*r.bmd_l1l2, 0.5 * (0.8 * 140 + 0.8 * 130));
  auto j = r.toJson();
  EXPECT_EQ(j["status"], "uncalibrated");
  // Neither L1 nor L2 nor T12: no average at all.
  auto none = estimateBmd(roiWith({{kL3, {150, true}}}), c);
  EXPECT_FALSE(none.bmd_l1l2);
}

TEST(Classify, AcrQctThresholds) {
  auto c = Calibration::defaultUncalibrated();
  c.calibrated = true;
  c.slope = 1;
  auto cat = [&](double hu) {
    return classify(estimateBmd(roiWith({{kL1, {hu, true}}, {kL2, {hu, true}}}), c)).category;
  };
  EXPECT_EQ(cat(120.5), "normal");
  EXPECT_EQ(cat(120.0), "osteopenia");
  EXPECT_EQ(cat(80.0), "osteopenia");
  EXPECT_EQ(cat(79.9), "osteoporosis");
  EXPECT_EQ(classify(estimateBmd(roiWith({}), c)).category, "unavailable");
  ClassifyParams bad;
  bad.rule = "no-such-rule";
  EXPECT_THROW(classify(estimateBmd(roiWith({}), c), bad), UsageError);
}

TEST(Classify, WhoTScoreUsesTheGivenReference) {
  auto c = Calibration::defaultUncalibrated();
  c.calibrated = true;
  c.slope = 1;
  ClassifyParams p;
  p.rule = "who-tscore";
  auto b = estimateBmd(roiWith({{kL1, {100, true}}, {kL2, {100, true}}}), c);
  EXPECT_THROW(classify(b, p), UsageError);  // reference mean/SD are required
  p.ref_mean = 160;
  p.ref_sd = 24;  // T = (100 - 160) / 24 = -2.5 -> osteoporosis (T <= -2.5)
  auto r = classify(b, p);
  EXPECT_EQ(r.category, "osteoporosis");
  EXPECT_DOUBLE_EQ(r.inputs["t_score"].get<double>(), -2.5);
  p.ref_sd = 24.1;  // T = -2.49 -> osteopenia
  EXPECT_EQ(classify(b, p).category, "osteopenia");
  p.ref_mean = 124;  // T = -24/24.1 > -1 -> normal
  EXPECT_EQ(classify(b, p).category, "normal");
  p.ref_mean = 124.1;  // T = -1 exactly -> normal (T >= -1)
  p.ref_sd = 24.1;
  EXPECT_EQ(classify(b, p).category, "normal");
}

TEST(Classify, L1HuCutOffsNeedNoCalibration) {
  auto c = Calibration::defaultUncalibrated();
  ClassifyParams p;
  p.rule = "l1-hu";
  auto cat = [&](double hu) { return classify(estimateBmd(roiWith({{kL1, {hu, true}}}), c), p); };
  EXPECT_EQ(cat(110).category, "osteoporosis");
  EXPECT_EQ(cat(110.5).category, "indeterminate");
  EXPECT_EQ(cat(159.9).category, "indeterminate");
  EXPECT_EQ(cat(160).category, "normal");
  EXPECT_FALSE(cat(160).uncalibrated);  // a HU rule is not affected by the calibration
  // L1 unusable: no answer (the cut-offs are defined on L1).
  EXPECT_EQ(classify(estimateBmd(roiWith({{kL1, {100, false}}, {kT12, {90, true}}}), c), p).category,
            "unavailable");
}

TEST(Classify, TsMedianThresholdDependsOnThePhase) {
  auto c = Calibration::defaultUncalibrated();
  ClassifyParams p;
  p.rule = "ts-median";
  auto b = estimateBmd(roiWith({{kL1, {100, true}}}), c);
  auto r = classify(b, p);  // native threshold 90.25 assumed, with a note
  EXPECT_EQ(r.category, "no_osteoporosis");
  EXPECT_TRUE(r.details.contains("note"));
  p.contrast_phase = "portal-venous";  // 105.0
  EXPECT_EQ(classify(b, p).category, "osteoporosis");
  EXPECT_DOUBLE_EQ(classify(b, p).inputs["threshold_hu"].get<double>(), 105.0);
  p.contrast_phase = "arterial";  // 110.25
  EXPECT_EQ(classify(b, p).category, "osteoporosis");
  p.contrast_phase = "venous";
  EXPECT_THROW(classify(b, p), UsageError);
}

TEST(Segment, FlagsBodiesFarLowerOrTallerThanTheColumns) {
  // Mean heights (anterior, middle, posterior) of a lumbar column, ~26 mm.
  auto level = [](int label, double a, double m, double p) {
    LevelSegmentation l;
    l.label = label;
    l.name = levelName(label);
    l.status = LevelStatus::Found;
    l.voxels = 1000;
    l.height_anterior_mm = a;
    l.height_middle_mm = m;
    l.height_posterior_mm = p;
    return l;
  };
  std::vector<LevelSegmentation> col{level(kT12, 24, 24, 25), level(kL1, 25, 25, 26), level(kL2, 26, 26, 27),
                                     level(kL3, 27, 26, 27),  level(kL4, 27, 27, 28), level(kL5, 28, 27, 26)};
  auto normal = col;
  flagFractures(normal, 0.8);
  for (const auto& l : normal) EXPECT_FALSE(l.suspected_fracture || l.suspected_merge) << l.name;
  // L2 took in half of L3 (a disc missed): 40 mm against a median of 26 -> merged, and only L2.
  auto merged = col;
  merged[2] = level(kL2, 40, 40, 41);
  flagFractures(merged, 0.8);
  EXPECT_TRUE(merged[2].suspected_merge);
  EXPECT_NE(merged[2].merge_reason.find("median"), std::string::npos);
  for (size_t i = 0; i < merged.size(); ++i) {
    if (i != 2) {
      EXPECT_FALSE(merged[i].suspected_merge) << merged[i].name;
    }
  }
  // 33 mm (130 %) is a tall body, not a merge; a 35 % anterior wedge is a fracture.
  auto tall = col;
  tall[2] = level(kL2, 33, 33, 33);
  tall[3] = level(kL3, 17, 24, 27);
  flagFractures(tall, 0.8);
  EXPECT_FALSE(tall[2].suspected_merge);
  EXPECT_TRUE(tall[3].suspected_fracture);
  // The flag and its reason survive the JSON round trip (roi-extract reads them from there).
  SegmentResult r;
  r.levels = merged;
  auto back = SegmentResult::fromJson(r.toJson(), nullptr);
  EXPECT_TRUE(back.find(kL2)->suspected_merge);
  EXPECT_EQ(back.find(kL2)->merge_reason, merged[2].merge_reason);
}

TEST(StageJson, RoundTrips) {
  auto c = Calibration::defaultUncalibrated();
  auto roi = roiWith({{kT12, {140, true}}, {kL1, {60, false}}, {kL2, {130, true}}});
  auto roi2 = RoiResult::fromJson(roi.toJson());
  EXPECT_EQ(roi2.toJson(), roi.toJson());
  auto b = estimateBmd(roi, c);
  EXPECT_EQ(BmdResult::fromJson(b.toJson()).toJson(), b.toJson());
  auto k = classify(b);
  EXPECT_EQ(ClassifyResult::fromJson(k.toJson()).toJson(), k.toJson());
  EXPECT_THROW(LocalizeResult::fromJson(nlohmann::json::object()), InputError);
}

TEST(Erode4mm, ReproducesTheSpineReportConvention) {
  if (!test::haveReference()) GTEST_SKIP();
  // With TotalSegmentator's own body masks, the protocol must give the voxel counts and
  // HU the reference README reproduced from ts_spine_report.json.
  Scan s = readScan(test::reference("totalsegmentator/example_ct.nii.gz"));
  SegmentResult seg;
  seg.labels =
      readLabels(test::reference("totalsegmentator/ts_vertebral_bodies.nii.gz"), s.image.GetPointer());
  for (int l : kReportedLevels) {
    LevelSegmentation ls;
    ls.label = l;
    ls.name = levelName(l);
    ls.status = LevelStatus::Found;
    seg.levels.push_back(ls);
  }
  auto r = extractRoi(s, seg, {"erode-4mm"});
  struct Ref {
    int label;
    long voxels;
    double mean, median;
  };
  const Ref refs[] = {{19, 760, 115.87, 110}, {20, 877, 132.62, 110}, {21, 910, 131.55, 122},
                      {22, 966, 131.92, 120}, {23, 985, 137.75, 124}, {24, 786, 145.44, 129}};
  for (const auto& ref : refs) {
    const LevelRoi* l = r.find(ref.label);
    EXPECT_EQ(l->stats.voxels, ref.voxels) << l->name;
    EXPECT_NEAR(l->stats.mean_hu, ref.mean, 0.01) << l->name;
    EXPECT_NEAR(l->stats.median_hu, ref.median, 0.5) << l->name;
  }
}

TEST(CtCheck, RefusesMr) {
  if (!test::haveReference()) GTEST_SKIP();
  Scan s = readScan(test::reference("totalsegmentator/example_mr_small.nii.gz"));
  try {
    localize(s);
    FAIL() << "MR must be refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("does not look like CT"), std::string::npos);
  }
  Scan ct = readScan(test::reference("totalsegmentator/example_ct.nii.gz"));
  EXPECT_NO_THROW(checkLooksLikeCt(ct.image.GetPointer(), "ct"));
  Scan crop = readScan(test::reference("tptbox/sub-ct_label-22_ct.nii.gz"));
  EXPECT_NO_THROW(checkLooksLikeCt(crop.image.GetPointer(), "crop"));
}
