// The weight-free stages on digital phantoms, in process.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/phantom.hpp"
#include "ctbmd/stages.hpp"
#include "test_support.hpp"

using namespace ctbmd;

namespace {
Scan asScan(const PhantomResult& r) {
  Scan s;
  s.image = r.ct;
  s.info.path = "phantom";
  return s;
}

// Every reported level found, its centre within `tol_mm` of the phantom truth's centroid.
void expectLevelsFoundNear(const LocalizeResult& loc, const PhantomResult& ph, double tol_mm) {
  for (int l : kReportedLevels) {
    const auto* lv = loc.find(l);
    ASSERT_EQ(lv->status, LevelStatus::Found) << levelName(l);
    auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
    EXPECT_LT(std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                         lv->center_mm[2] - c[2].get<double>()),
              tol_mm)
        << levelName(l);
  }
}
}  // namespace

// (seed, storage orientation, slice mm, in-plane pixel mm: below 0.8 the localizer bins it)
class PhantomPipeline : public ::testing::TestWithParam<std::tuple<int, std::string, double, double>> {};

TEST_P(PhantomPipeline, LevelsSegmentationAndRoi) {
  auto [seed, orient, slice, pixel] = GetParam();
  auto p = test::smallPhantom(seed);
  p.orientation = orient;
  p.slice_mm = slice;
  p.pixel_mm = pixel;
  p.nx = p.ny = static_cast<int>(std::lround(400.0 / pixel));  // the same 400 mm field of view
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto loc = localize(s);
  for (int l : kReportedLevels) {
    const auto* lv = loc.find(l);
    ASSERT_NE(lv, nullptr);
    EXPECT_EQ(lv->status, LevelStatus::Found) << levelName(l);
    auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
    double d = std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                          lv->center_mm[2] - c[2].get<double>());
    EXPECT_LT(d, 6.0) << levelName(l) << " centre off by " << d << " mm";
  }
  EXPECT_TRUE(loc.flags.empty());
  auto seg = segment(s, loc);
  for (int l : kReportedLevels) {
    double dc = test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l);
    // measured 0.951-0.985 over these four (min: seed 3, PIR, 3 mm); the 30-seed study's floor
    // is 0.92 for 100 % of levels (docs/validation.md): that is the bound
    EXPECT_GE(dc, 0.92) << levelName(l);
  }
  auto roi = extractRoi(s, seg, {"ellipse-s1"});
  for (int l : kReportedLevels) {
    const auto* r = roi.find(l);
    double truth = ph.truth["levels"][levelName(l)]["hu_trabecular"].get<double>();
    EXPECT_NEAR(r->stats.mean_hu, truth, 3.0) << levelName(l) << " (ellipse-s1 mean vs true trabecular HU)";
  }
}

INSTANTIATE_TEST_SUITE_P(SeedsOrientations, PhantomPipeline,
                         ::testing::Values(std::make_tuple(1, std::string("LPS"), 2.0, 1.0),
                                           std::make_tuple(2, std::string("RAS"), 1.0, 1.0),
                                           std::make_tuple(3, std::string("PIR"), 3.0, 1.0),
                                           std::make_tuple(4, std::string("LAS"), 1.25, 0.7)));

TEST(PhantomPipelineHard, FiveMillimetreSlicesAreNamedRight) {
  // 5 mm slices: thin thoracic discs are one slice, and the T11/T12 disc can vanish from the
  // profile (two vertebrae merged at the scan's edge, every name one level off). Names and
  // centres must hold; Dice is bounded by the slice: one 5 mm slice too many at each end of a
  // ~25 mm body gives 2*5/(5+7) = 0.83, so 0.75 allows that plus the in-plane edge.
  for (auto [seed, orient] : {std::pair{5, "RAS"}, std::pair{6, "LPS"}}) {
    auto p = test::smallPhantom(seed);
    p.orientation = orient;
    p.slice_mm = 5.0;
    auto ph = makePhantom(p);
    Scan s = asScan(ph);
    auto loc = localize(s);
    EXPECT_TRUE(loc.flags.empty()) << "seed " << seed;
    for (int l : kReportedLevels) {
      const auto* lv = loc.find(l);
      ASSERT_EQ(lv->status, LevelStatus::Found) << levelName(l) << " seed " << seed;
      auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
      EXPECT_LT(std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                           lv->center_mm[2] - c[2].get<double>()),
                6.0)
          << levelName(l) << " seed " << seed;
    }
    auto seg = segment(s, loc);
    for (int l : kReportedLevels)
      EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l), 0.75) << levelName(l);
  }
}

TEST(PhantomPipelineHard, ThickSlicesKeepTheDiscsAroundACompressedBody) {
  // 4.5 mm slices, L2 wedge-compressed: its upper endplate is too faint to stand as a peak, so
  // L2's marrow and the L1/L2 disc merge into one wide trough and the alternation took L1's
  // marrow for the disc (L1 12 mm off, silently). The disc moves to the deep trough that makes
  // both vertebrae ordinary lengths (seed 26; fails without that step).
  auto p = test::smallPhantom(26);
  p.orientation = "PIR";
  p.slice_mm = 4.5;
  p.noise_sd = 37;
  p.fracture_level = "L2";
  auto ph = makePhantom(p);
  auto loc = localize(asScan(ph));
  EXPECT_TRUE(loc.flags.empty());
  expectLevelsFoundNear(loc, ph, 6.0);
}

TEST(PhantomPipeline, FiveMillimetreBodiesWithMarrowAtTheThresholdAreSegmented) {
  // 5 mm slices, 0.85 mm pixels, marrow ~100 HU right at the dense-bone threshold: the ring
  // finder breaks the marrow into holes too small to fill and finds half a body or none in
  // the middle slices of L2 and L3 (Dice 0.18 and 0.55, L2 flagged as a fracture). The
  // radial trace takes those slices over (seed 129 of the thick-slice study).
  auto p = test::smallPhantom(129);
  p.nx = p.ny = 471;
  p.pixel_mm = 0.85;
  p.slice_mm = 5.0;
  p.orientation = "RAS";
  p.noise_sd = 27;
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto loc = localize(s);
  EXPECT_TRUE(loc.flags.empty());
  auto seg = segment(s, loc);
  // one 5 mm slice too many or too few at each end of a ~25 mm body costs up to ~0.17
  EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), kL2), 0.85);
  EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), kL3), 0.75);
  EXPECT_FALSE(seg.find(kL2)->suspected_fracture);  // heights of 5 mm slices may still flag others
}

TEST(PhantomPipeline, DenseMarrowDiscsAreFoundByTheirFloors) {
  // 5 mm slices, marrow ~190 HU: L3's lower endplate is only ~12 HU above its marrow, so it
  // is merged away and L3's marrow joins the L3/L4 disc in one trough; the alternation then
  // took the lower lumbar marrow for discs (every name wrong, flagged anchors_disagree). The
  // troughs' floors (discs ~100 HU, marrow ~195 HU) tell them apart (seed 41).
  auto p = test::smallPhantom(41);
  p.orientation = "RAS";
  p.slice_mm = 5.0;
  p.noise_sd = 27;
  auto ph = makePhantom(p);
  auto loc = localize(asScan(ph));
  EXPECT_TRUE(loc.flags.empty());
  expectLevelsFoundNear(loc, ph, 6.0);
}

TEST(PhantomPipeline, DiscLostInsideTheColumnIsPlacedOnItsEndplateBand) {
  // 5 mm slices: the L2/L3 disc's two endplates blur into one bright band with no trough.
  // The spacing says a disc is missing there; it was put at the darkest point, in marrow,
  // and L2 and L3 came out 8 mm off (seed 202 of the third thick-slice study, PIR).
  auto p = test::smallPhantom(202);
  p.nx = p.ny = 471;
  p.pixel_mm = 0.85;
  p.slice_mm = 5.0;
  p.orientation = "PIR";
  p.noise_sd = 24;
  auto ph = makePhantom(p);
  auto loc = localize(asScan(ph));
  EXPECT_TRUE(loc.flags.empty());
  expectLevelsFoundNear(loc, ph, 5.0);
}

TEST(PhantomPipelineHard, ContrastEnhancedOrgansAreNotTakenForBone) {
  // Portal-venous phase: liver ~115 HU, vessels ~160 HU, above the dense-bone threshold a
  // non-contrast scan would use. Seed 18 (PIR, low noise): at the L4/L5 disc the slice finder
  // takes the contrast-filled iliac vessels for the body on six slices in a row; unless those
  // strays are dropped they pull the centreline 40 mm forward and an extra "disc" appears.
  for (auto [seed, orient, noise] : {std::make_tuple(8, "LPS", 15.0), std::make_tuple(18, "PIR", 12.0)}) {
    auto p = test::smallPhantom(seed);
    p.contrast = "portal-venous";
    p.orientation = orient;
    p.noise_sd = noise;
    auto ph = makePhantom(p);
    Scan s = asScan(ph);
    auto loc = localize(s);
    ASSERT_TRUE(loc.anchors.naming);
    EXPECT_GT(loc.anchors.naming->dense_bone_threshold_hu, 120.0);
    EXPECT_TRUE(loc.flags.empty()) << "seed " << seed;
    for (int l : kReportedLevels) {
      const auto* lv = loc.find(l);
      ASSERT_EQ(lv->status, LevelStatus::Found) << levelName(l) << " seed " << seed;
      auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
      double d = std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                            lv->center_mm[2] - c[2].get<double>());
      EXPECT_LT(d, 6.0) << levelName(l) << " seed " << seed;
    }
  }
}

TEST(PhantomPipelineHard, CutOutIsNamedOnlyFromALevelHint) {
  // L2-L4 only: neither the last rib nor the sacrum is in the scan.
  auto p = test::smallPhantom(11);
  p.top = "L2";
  p.bottom = "L4";
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto plain = localize(s);
  EXPECT_EQ(plain.anchors.used, "none");
  for (const auto& l : plain.levels) EXPECT_EQ(l.status, LevelStatus::Missing) << l.name;
  auto at = [&](const std::string& name) { return ph.truth["levels"][name]["centroid_mm"]; };
  auto off = [&](const LevelLocation* lv, const std::string& name) {
    auto c = at(name);
    return std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                      lv->center_mm[2] - c[2].get<double>());
  };
  // "L3": the complete vertebra nearest the scan's centre; "L2@z": the one nearest z.
  for (std::string hint : {std::string("L3"), "L2@" + std::to_string(at("L2")[2].get<double>())}) {
    LocalizeParams lp;
    lp.level_hint = hint;
    auto loc = localize(s, lp);
    EXPECT_EQ(loc.anchors.used, "user-hint") << hint;
    const auto* l3 = loc.find(kL3);
    ASSERT_NE(l3->status, LevelStatus::Missing) << hint;
    EXPECT_LT(off(l3, "L3"), 6.0) << hint;
    EXPECT_EQ(loc.find(kL1)->status, LevelStatus::Missing) << hint << ": no level outside the scan";
    EXPECT_TRUE(std::any_of(loc.warnings.begin(), loc.warnings.end(), [](const std::string& w) {
      return w.find("--level-hint") != std::string::npos;
    }));
  }
  LocalizeParams bad;
  bad.level_hint = "L3@middle";
  EXPECT_THROW(localize(s, bad), UsageError);
  bad.level_hint = "C5";
  EXPECT_THROW(localize(s, bad), UsageError);
}

TEST(PhantomPipelineHard, LevelHintNeverOverridesAnatomy) {
  auto ph = makePhantom(test::smallPhantom(1));
  Scan s = asScan(ph);
  LocalizeParams lp;
  lp.level_hint = "L1@" + std::to_string(ph.truth["levels"]["L2"]["centroid_mm"][2].get<double>());
  auto loc = localize(s, lp);
  EXPECT_NE(std::find(loc.flags.begin(), loc.flags.end(), "hint_disagrees"), loc.flags.end());
  auto c = ph.truth["levels"]["L2"]["centroid_mm"];
  const auto* l2 = loc.find(kL2);
  EXPECT_LT(std::hypot(l2->center_mm[0] - c[0].get<double>(), l2->center_mm[1] - c[1].get<double>(),
                       l2->center_mm[2] - c[2].get<double>()),
            6.0)
      << "the anatomical names are kept";
}

TEST(PhantomPipelineHard, TransitionalVertebraIsFlaggedNotSilent) {
  auto p = test::smallPhantom(5);
  p.lumbar6 = true;
  auto ph = makePhantom(p);
  auto loc = localize(asScan(ph));
  // Six lumbar vertebrae: the rib anchor and the sacrum anchor cannot both hold.
  bool right = true;
  for (int l : kReportedLevels) {
    const auto* lv = loc.find(l);
    auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
    if (lv->status == LevelStatus::Missing ||
        std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                   lv->center_mm[2] - c[2].get<double>()) > 6.0)
      right = false;
  }
  EXPECT_TRUE(right || !loc.flags.empty()) << "wrong labels without a flag";
}

TEST(PhantomPipelineHard, ThirteenthRibOnL1IsFlaggedOrIgnored) {
  // 13 rib pairs as a rib on L1 (twelve thoracic vertebrae): a full-length rib makes the rib
  // anchor one level off the sacrum's, which must be flagged (labels then count from the
  // sacrum, so they stay right); a rudimentary one (< 40 mm, never reaching the body wall)
  // is not a rib and changes nothing. (A supernumerary T13 instead cannot be told apart in a
  // T11-S1 field of view: see the README.)
  for (double len : {95.0, 30.0}) {
    auto p = test::smallPhantom(7);
    p.lumbar_rib_mm = len;
    auto ph = makePhantom(p);
    auto loc = localize(asScan(ph));
    bool flagged = std::find(loc.flags.begin(), loc.flags.end(), "anchors_disagree") != loc.flags.end();
    EXPECT_EQ(flagged, len > 40) << "lumbar rib " << len << " mm";
    for (int l : kReportedLevels) {
      const auto* lv = loc.find(l);
      auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
      EXPECT_LT(std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                           lv->center_mm[2] - c[2].get<double>()),
                6.0)
          << levelName(l) << " with a " << len << " mm lumbar rib";
    }
  }
}

// Rib pairs counted from T1 when the scan reaches the neck (C6-S1, a chest-abdomen-pelvis
// field of view): (rib pairs, lumbar rib mm, six lumbar vertebrae, expected flag, expected
// vertebrae from T1 to the sacrum).
class RibCount : public ::testing::TestWithParam<std::tuple<int, double, bool, std::string, int>> {};

TEST_P(RibCount, VariantsAreNamedFromT1AndFlagged) {
  auto [pairs, lumbar_rib, six_lumbar, flag, total] = GetParam();
  auto p = test::smallPhantom(11);
  p.top = "C6";
  p.rib_pairs = pairs;
  p.lumbar_rib_mm = lumbar_rib;
  p.lumbar6 = six_lumbar;
  auto ph = makePhantom(p);
  auto loc = localize(asScan(ph));
  EXPECT_EQ(loc.anchors.used, "first-rib+sacrum");
  ASSERT_TRUE(loc.anchors.naming);
  EXPECT_EQ(loc.anchors.naming->rib_pairs_counted.value_or(0), pairs + (lumbar_rib > 0 ? 1 : 0));
  EXPECT_EQ(loc.anchors.naming->vertebrae_t1_to_sacrum.value_or(0), total);
  if (flag.empty())
    EXPECT_TRUE(loc.flags.empty()) << loc.flags.front();
  else
    EXPECT_NE(std::find(loc.flags.begin(), loc.flags.end(), flag), loc.flags.end())
        << "expected flag " << flag;
  // Every level named right, the supernumerary T13 and a sixth lumbar vertebra included.
  for (int l : kReportedLevels) {
    const auto* lv = loc.find(l);
    auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
    ASSERT_EQ(lv->status, LevelStatus::Found) << levelName(l);
    EXPECT_LT(std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                         lv->center_mm[2] - c[2].get<double>()),
              6.0)
        << levelName(l);
  }
  for (const auto& v : loc.vertebrae) {
    const std::string name = v.name;
    if (name.empty() || name == "S1" || !ph.truth["levels"].contains(name)) continue;
    auto c = ph.truth["levels"][name]["centroid_mm"];
    const auto& m = v.center_mm;
    EXPECT_LT(std::hypot(m[0] - c[0].get<double>(), m[1] - c[1].get<double>(), m[2] - c[2].get<double>()),
              10.0)
        << "vertebra named " << name;
  }
  const bool t13_named = std::any_of(loc.vertebrae.begin(), loc.vertebrae.end(),
                                     [](const VertebraFound& v) { return v.label == kT13; });
  EXPECT_EQ(t13_named, pairs == 13);
  // Bodies: T12 and L1 are not neighbours when a T13 lies between them (segment must not
  // grow them into it).
  auto seg = segment(asScan(ph), loc);
  for (int l : kReportedLevels)
    EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l), 0.92) << levelName(l);
  if (pairs == 13) {
    // Without a disc between them, T12 and L1 would be grown towards each other into the
    // discs around the T13 (up to 6 mm each): their volumes stay within 6 % of the truth's
    // (a voxel layer of partial volume at 2 mm slices and 1 mm pixels).
    for (int l : {kT12, kL1}) {
      const double v = seg.find(l) ? seg.find(l)->volume_mm3 : 0.0;
      const double t = ph.truth["levels"][levelName(l)]["body_volume_mm3"].get<double>();
      EXPECT_NEAR(v / t, 1.0, 0.06) << levelName(l) << " volume against the truth's";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(FromT1, RibCount,
                         ::testing::Values(std::make_tuple(12, 0.0, false, std::string(), 17),
                                           std::make_tuple(13, 0.0, false, std::string("rib_pairs_13"), 18),
                                           std::make_tuple(12, 95.0, false, std::string("lumbar_rib"), 17),
                                           std::make_tuple(12, 0.0, true,
                                                           std::string("transitional_vertebra"), 18)));

TEST(PhantomPipelineHard, RibCountIsNotClaimedWithoutTheFirstRibPair) {
  // A T11-S1 field of view of a spine with 13 rib pairs looks like a normal one: the rib
  // count cannot be checked and the output must say so rather than imply it was.
  auto p = test::smallPhantom(11);
  p.rib_pairs = 13;
  auto loc = localize(asScan(makePhantom(p)));
  ASSERT_TRUE(loc.anchors.naming);
  EXPECT_FALSE(loc.anchors.naming->first_rib_in_view);
  EXPECT_FALSE(loc.anchors.naming->rib_pairs_counted);
  EXPECT_FALSE(loc.anchors.naming->rib_count_note.empty());
}

TEST(PhantomPipelineHard, OsteoporoticBodiesWithThinCortexAreSegmentedWhole) {
  // Marrow near soft-tissue density (BMD ~40 mg/cm3 -> ~45 HU) inside a cortex under 1 mm: the
  // cortical ring breaks up at the usual threshold, and where the posterior wall is broken the
  // canal joins the marrow. Before the lower-threshold retry and the 3-D slice consistency,
  // these bodies came out at 10-30 % of their volume and the ROI mean was 10-20 HU high.
  for (uint64_t seed : {1005u, 1002u}) {
    auto p = test::smallPhantom(seed);
    p.population = "osteoporosis";
    p.noise_sd = 20;
    auto ph = makePhantom(p);
    Scan s = asScan(ph);
    auto loc = localize(s);
    auto seg = segment(s, loc);
    auto roi = extractRoi(s, seg, {"ellipse-s1"});
    for (int l : {kL1, kL2, kL3, kL4}) {
      double truth_bmd = ph.truth["levels"][levelName(l)]["bmd_mg_cm3"].get<double>();
      ASSERT_LT(truth_bmd, 80.0);
      EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l), 0.85) << levelName(l);
      const auto* r = roi.find(l);
      double truth = ph.truth["levels"][levelName(l)]["hu_trabecular"].get<double>();
      EXPECT_NEAR(r->stats.mean_hu, truth, 4.0) << levelName(l) << " seed " << seed;
    }
  }
}

TEST(PhantomPipelineHard, MetalIsFlaggedAndItsLevelNotUsed) {
  auto p = test::smallPhantom(17);
  p.metal_level = "L4";
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto loc = localize(s);
  ASSERT_NE(std::find(loc.flags.begin(), loc.flags.end(), "metal"), loc.flags.end());
  auto seg = segment(s, loc);
  auto roi = extractRoi(s, seg, {"ellipse-s1"});
  // The screwed level, wherever it was placed, is not used; no usable ROI holds metal.
  int unusable_metal = 0;
  for (const auto& l : roi.levels) {
    bool metal = std::find(l.flags.begin(), l.flags.end(), "metal") != l.flags.end();
    unusable_metal += metal && !l.usable;
    if (l.usable) {
      EXPECT_LT(l.stats.max_hu, 2500.0) << l.name;
    }
  }
  EXPECT_GE(unusable_metal, 1);
  // An ordinary phantom raises no metal flag.
  auto clean = localize(asScan(makePhantom(test::smallPhantom(18))));
  EXPECT_EQ(std::find(clean.flags.begin(), clean.flags.end(), "metal"), clean.flags.end());
}

TEST(PhantomPipeline, RibHeadsAreNotPartOfTheBody) {
  // The last ribs meet T12's posterolateral corners without a narrow neck. Before they were
  // clipped, T12's widest row came out 40-60 % wider than the body's (ribs included), which
  // stretched ellipse-s1's ellipse onto the anterior cortex (ROI +3.5 HU).
  auto p = test::smallPhantom(3);
  p.orientation = "LAS";
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto seg = segment(s, localize(s));
  auto widest = [](const LabelImage* lab, int label, int k) {
    auto sz = lab->GetLargestPossibleRegion().GetSize();
    int best = 0;
    for (unsigned j = 0; j < sz[1]; ++j) {
      int n = 0;
      for (unsigned i = 0; i < sz[0]; ++i) {
        LabelImage::IndexType idx{{static_cast<long>(i), static_cast<long>(j), static_cast<long>(k)}};
        n += lab->GetPixel(idx) == label;
      }
      best = std::max(best, n);
    }
    return best;
  };
  // LAS storage: axis 2 is z. Every slice the truth's T12 body fills at least half of.
  auto sz = ph.labels->GetLargestPossibleRegion().GetSize();
  int checked = 0;
  std::vector<int> truth_w(sz[2]);
  int max_w = 0;
  for (unsigned k = 0; k < sz[2]; ++k)
    max_w = std::max(max_w, truth_w[k] = widest(ph.labels.GetPointer(), kT12, k));
  for (unsigned k = 0; k < sz[2]; ++k) {
    if (truth_w[k] < max_w * 0.9) continue;
    const int got = widest(seg.labels.GetPointer(), kT12, k);
    // (the widest row sets the ellipse's short axis: within 20 % of the truth's, ellipse-s1
    // stays within 3 HU of the trabecular mean in the phantom study; the ribs made it 46 %)
    EXPECT_LE(got, 1.2 * truth_w[k]) << "T12 slice " << k << ": widest row " << got << " px, truth "
                                     << truth_w[k];
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

TEST(PhantomPipeline, TiltedEndplatesAtThinSlicesAreFollowed) {
  // Fine voxels (0.7 x 0.7 x 1 mm): the T12/L1 disc is tilted, so its slices hold a crescent
  // of L1 beside the disc, which the slice finder rejects. Without the lent traces L1 lost
  // 15 % of its voxels here (Dice 0.90; the phantom study's thin-slice cases 0.88-0.91).
  auto p = test::smallPhantom(16);
  p.slice_mm = 1.0;
  p.pixel_mm = 0.7;
  p.nx = p.ny = 571;
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto seg = segment(s, localize(s));
  for (int l : kReportedLevels) {
    EXPECT_GE(test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l), 0.94) << levelName(l);
  }
}

TEST(PhantomPipelineHard, LowDoseScanKeepsLabelsAndBodies) {
  // Pixel noise 85 HU (a low-dose scan; the tptbox cut-out has 82): the radial trace
  // (spine::radialSlice) takes over the slices where the ring finder fails or merges body
  // and canal. The phantom's cortex is clearer than the real cut-out's (where the trace
  // lifts Dice from 0.14 to 0.94, ReferenceCt.NoisyCutOutWithLevelHintSegmentsL3): here it
  // must keep what the ring finder got right. Measured Dice 0.957-0.970, ROI -4.3..+2.7 HU
  // (the ROI's share of 85 HU noise and texture); the issue's 3 HU is for 10-40 HU noise.
  auto p = test::smallPhantom(6);
  p.orientation = "PIR";
  p.slice_mm = 1.5;
  p.noise_sd = 85;
  p.population = "osteoporosis";
  auto ph = makePhantom(p);
  Scan s = asScan(ph);
  auto loc = localize(s);
  ASSERT_TRUE(loc.anchors.naming);
  EXPECT_GT(loc.anchors.naming->noise_hu, 50.0);
  EXPECT_GT(loc.anchors.naming->slices_traced_radially, 0);
  for (int l : kReportedLevels) {
    const auto* lv = loc.find(l);
    ASSERT_EQ(lv->status, LevelStatus::Found) << levelName(l);
    auto c = ph.truth["levels"][levelName(l)]["centroid_mm"];
    double d = std::hypot(lv->center_mm[0] - c[0].get<double>(), lv->center_mm[1] - c[1].get<double>(),
                          lv->center_mm[2] - c[2].get<double>());
    EXPECT_LT(d, 6.0) << levelName(l) << " centre off by " << d << " mm";
  }
  auto seg = segment(s, loc);
  auto roi = extractRoi(s, seg, {"ellipse-s1"});
  for (int l : kReportedLevels) {
    double dc = test::dice(seg.labels.GetPointer(), ph.labels.GetPointer(), l);
    const auto* r = roi.find(l);
    double truth = ph.truth["levels"][levelName(l)]["hu_trabecular"].get<double>();
    EXPECT_GE(dc, 0.90) << levelName(l);
    EXPECT_NEAR(r->stats.mean_hu, truth, 5.0) << levelName(l);
  }
}
