// The naming step, its QC and the anatomy gate's verdict, table-driven: the cases the
// phantom studies and the shared real scans produced (tables as measured there), and the
// anatomical variants the rules are written for.
#include <gtest/gtest.h>

#include <algorithm>

#include "ctbmd/levels.hpp"
#include "internal/column.hpp"
#include "internal/naming.hpp"

namespace ctbmd {
namespace {

using naming::CountedFrom;
using naming::Segment;

struct LengthCase {
  const char* what;
  std::vector<Segment> segs;  // top to bottom
  CountedFrom from;
  std::vector<std::pair<int, std::string>> want;  // (index, flag), in order
};

TEST(NamingQc, LengthTable) {
  const std::vector<LengthCase> cases = {
      // example_ct (3 mm): T12 cut at the top, L1-L5 36-38 mm, the sacrum below: nothing.
      {"example_ct",
       {{24, true, false, 19},
        {36, false, false, 20},
        {38, false, false, 21},
        {37, false, false, 22},
        {38, false, false, 23},
        {36, false, false, 24},
        {61, false, true, 26}},
       CountedFrom::Both,
       {}},
      // CRLM-CT-1004 (5 mm, named from the ribs above): "L1" 55 mm against 39/38 below; its
      // neighbour above is cut (partial) and says nothing. L1 merged, L2-L4 counted across it.
      {"CRLM-CT-1004",
       {{60, true, false, 19},
        {55, false, false, 20},
        {39, false, false, 21},
        {38, false, false, 22},
        {15, true, false, 23}},
       CountedFrom::Above,
       {{1, "suspected_merge"},
        {2, "named_across_merge"},
        {3, "named_across_merge"},
        {4, "named_across_merge"}}},
      // The same column named from the sacrum below: the names above the merge are suspect.
      {"merge, counted from the sacrum",
       {{30, true, false, 19},
        {36, false, false, 20},
        {72, false, false, 21},
        {37, false, false, 23},
        {38, false, false, 24},
        {60, false, true, 26}},
       CountedFrom::Below,
       {{2, "suspected_merge"}, {1, "named_across_merge"}, {0, "named_across_merge"}}},
      // Both anchors agree: a merge would have broken the count, so only the body is flagged.
      {"anchors agree",
       {{36, false, false, 20}, {50, false, false, 21}, {37, false, false, 22}},
       CountedFrom::Both,
       {{1, "suspected_merge"}}},
      // 1.25 x (L5 longer than L4, a tilted lumbosacral level): within the limit.
      {"long but plausible",
       {{36, false, false, 22}, {38, false, false, 23}, {46, false, false, 24}},
       CountedFrom::Above,
       {}},
      // An unnamed or partial long segment is not judged; a partial neighbour predicts nothing.
      {"partial and unnamed",
       {{80, true, false, 20}, {38, false, false, 21}, {90, false, false, 0}},
       CountedFrom::Above,
       {}},
  };
  for (const auto& c : cases) {
    const auto got = naming::checkLengths(c.segs, c.from);
    ASSERT_EQ(got.size(), c.want.size()) << c.what;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].index, c.want[i].first) << c.what << " #" << i;
      EXPECT_EQ(got[i].flag, c.want[i].second) << c.what << " #" << i;
      EXPECT_FALSE(got[i].note.empty()) << c.what;
    }
  }
}

spine::SegmentEvidence ev(double enclosure, bool canal, std::optional<double> offset = std::nullopt,
                          bool sacral = false) {
  spine::SegmentEvidence e;
  e.canal_enclosure = enclosure;
  e.canal = canal;
  e.midline_offset = offset;
  e.sacral = sacral;
  return e;
}

TEST(AnatomyGate, VerdictTable) {
  struct Case {
    const char* what;
    std::vector<spine::SegmentEvidence> segs;
    bool seen;
    const char* reason_has;
  };
  const std::vector<Case> cases = {
      // CRLM-CT-1004: five bodies, a canal behind each, on the midline.
      {"CRLM",
       {ev(1, true, 0.01), ev(1, true, 0.0), ev(1, true, 0.0), ev(1, true, 0.02), ev(1, true, 0.02)},
       true,
       "spinal canal"},
      // STS_026 (femur, named T12-L3 before): one "canal" in four segments.
      {"STS_026 femur", {ev(0.94, true), ev(0, false), ev(0, false), ev(0, false)}, false, "no spinal canal"},
      // A long bone with the body outline whole: far off the midline.
      {"femur off midline", {ev(1, true, 0.55), ev(1, true, 0.5), ev(0.9, true, 0.6)}, false, "midline"},
      // STS_004 femoral shaft: no closed hole at all.
      {"shaft", {ev(0.56, false)}, false, "no spinal canal"},
      // tptbox cut-out: three vertebrae, body cut by the field of view (midline unknown).
      {"cut-out", {ev(1, true), ev(1, true), ev(1, true)}, true, "midline not checked"},
      // sacral segments are not judged; only sacrum seen: no column.
      {"sacrum only", {ev(0, false, std::nullopt, true)}, false, "no bone segment"},
      // half the segments with a canal (the rest at discs or thin 5 mm ends): a column.
      {"half", {ev(1, true, 0.05), ev(0.7, false, 0.04)}, true, "1 of 2"},
  };
  for (const auto& c : cases) {
    const auto v = spine::judgeColumn(c.segs);
    EXPECT_EQ(v.seen, c.seen) << c.what << ": " << v.reason;
    EXPECT_NE(v.reason.find(c.reason_has), std::string::npos) << c.what << ": " << v.reason;
  }
}

// ---- nameColumn: the whole naming step -------------------------------------------------------

// A column of `n` complete 32 mm segments, top to bottom from z = 0, with rib pairs on the
// segments in `rib_pairs`, sacral rows on those in `sacral`, and the image's edges 150 mm
// either side (both rib sides in view).
naming::ColumnInput column(int n, std::vector<int> rib_pairs, std::vector<int> sacral, double top_room = 50) {
  naming::ColumnInput in;
  for (int i = 0; i < n; ++i) {
    naming::SegmentFacts f;
    f.z_hi_mm = -32.0 * i;
    f.z_lo_mm = f.z_hi_mm - 32;
    f.chord_mm = 32;
    f.sacral = std::find(sacral.begin(), sacral.end(), i) != sacral.end();
    if (f.sacral) f.chord_mm = 60;
    f.room_left_mm = f.room_right_mm = 150;
    in.segments.push_back(f);
  }
  for (int i : rib_pairs) {
    in.ribs.push_back({+1, -32.0 * i - 10});
    in.ribs.push_back({-1, -32.0 * i - 10});
  }
  in.scan_top_z_mm = top_room;
  return in;
}

std::vector<int> range(int a, int b) {
  std::vector<int> v;
  for (int i = a; i <= b; ++i) v.push_back(i);
  return v;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

struct NamingCase {
  const char* what;
  naming::ColumnInput in;
  std::string used;
  std::string status;
  int index;  // a segment whose label is checked ...
  int label;  // ... against this (0: unnamed)
  double confidence;
  std::vector<std::string> flags;  // all of these, and no other
};

TEST(Naming, AnchorTable) {
  auto unpaired = column(9, {0, 1}, {7, 8});
  unpaired.ribs.erase(unpaired.ribs.begin() + 2);  // T12's left rib gone, the left side in view
  auto one_side_cut = unpaired;
  for (auto& s : one_side_cut.segments) s.room_left_mm = 40;  // the image ends 40 mm to the left
  auto lung = column(7, {0, 1}, {});
  lung.segments[3].lung_area_mm2 = 4000;  // beside "L2": a chest scan whose anchor failed
  auto merge = column(7, {0, 1}, {});
  merge.segments[2].chord_mm = 52;         // "L1" against 32 mm neighbours: a disc missed inside it
  auto high_row = column(8, {}, {2});      // one wide bone row high up, no sacral piece below it
  auto lone_rib = column(9, {4}, {7, 8});  // a "rib" on a lumbar body, not at the scan's top
  auto thorax = column(19, range(0, 11), {17, 18}, 60);      // T1-T12, L1-L5, S1, S2
  auto t13 = column(20, range(0, 12), {18, 19}, 60);         // 13 rib pairs, 18 vertebrae
  auto l6 = column(20, range(0, 11), {18, 19}, 60);          // 12 rib pairs, 6 lumbar
  auto lumbar_rib = column(19, range(0, 12), {17, 18}, 60);  // 13 pairs, 17 vertebrae: rib on L1
  const std::vector<NamingCase> cases = {
      {"lumbar scan: T11-T12 rib pairs, L1-L5, sacrum",
       column(9, {0, 1}, {7, 8}),
       "sacrum+ribs",
       "named",
       2,
       kL1,
       0.9,
       {}},
      {"T12's rib on one side only, the other in view: no rib anchor",
       unpaired,
       "sacrum",
       "named",
       6,
       kL5,
       0.75,
       {"rib_unpaired"}},
      {"one side out of view: one rib anchors", one_side_cut, "sacrum+ribs", "named", 1, kT12, 0.9, {}},
      {"ribs, no sacrum: T12 down to L5 and nothing below",
       column(9, {0, 1}, {}),
       "ribs",
       "named",
       7,
       0,
       0.75,
       {}},
      {"ribs, no sacrum: L5", column(9, {0, 1}, {}), "ribs", "named", 6, kL5, 0.75, {}},
      {"sacrum, no ribs", column(7, {}, {5, 6}), "sacrum", "named", 4, kL5, 0.75, {}},
      {"neither anchor", column(6, {}, {}), "none", "levels_not_named", 2, 0, 0, {}},
      {"4 lumbar between T12 and the sacrum",
       column(8, {0, 1}, {6, 7}),
       "sacrum",
       "named",
       1,
       kL1,
       0.5,
       {"anchors_disagree"}},
      {"lung beside L2", lung, "none", "levels_not_named", 3, 0, 0.75, {"anatomy_inconsistent"}},
      {"merged L1 counted from the ribs", merge, "ribs", "named", 2, kL1, 0.75, {"suspected_merge"}},
      {"one wide row high in the column is no sacrum", high_row, "none", "levels_not_named", 2, 0, 0, {}},
      {"a lone low rib is no anchor", lone_rib, "sacrum", "named", 6, kL5, 0.75, {}},
      {"first rib in view, 12 pairs, sacrum", thorax, "first-rib+sacrum", "named", 11, kT12, 0.95, {}},
      {"first rib in view: T1", thorax, "first-rib+sacrum", "named", 0, 8, 0.95, {}},
      {"13 rib pairs and 18 vertebrae: T13",
       t13,
       "first-rib+sacrum",
       "named",
       12,
       kT13,
       0.7,
       {"rib_pairs_13"}},
      {"13 rib pairs and 18 vertebrae: L1 below T13",
       t13,
       "first-rib+sacrum",
       "named",
       13,
       kL1,
       0.7,
       {"rib_pairs_13"}},
      {"12 rib pairs, 6 lumbar: L6",
       l6,
       "first-rib+sacrum",
       "named",
       17,
       kL6,
       0.7,
       {"transitional_vertebra"}},
      {"13 rib pairs, 17 vertebrae: a lumbar rib on L1",
       lumbar_rib,
       "first-rib+sacrum",
       "named",
       12,
       kL1,
       0.7,
       {"lumbar_rib"}},
      {"first rib in view, no sacrum",
       column(16, range(0, 11), {}, 60),
       "first-rib",
       "named",
       12,
       kL1,
       0.8,
       {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto r = naming::nameColumn(c.in);
    EXPECT_EQ(r.used, c.used);
    EXPECT_EQ(toString(r.status), c.status);
    ASSERT_LT(c.index, static_cast<int>(r.labels.size()));
    EXPECT_EQ(r.labels[c.index], c.label);
    if (c.status == "named") {
      EXPECT_NEAR(r.confidence, c.confidence, 1e-9);
    }
    for (const auto& f : c.flags) EXPECT_TRUE(has(r.flags, f)) << "missing flag " << f;
    EXPECT_EQ(r.flags.size(), c.flags.size());
    if (c.status != "named") {
      EXPECT_FALSE(r.reason.empty());
      EXPECT_TRUE(std::all_of(r.labels.begin(), r.labels.end(), [](int l) { return l == 0; }));
    }
  }
}

TEST(Naming, MergeFlagsTheBodyAndTheLevelsCountedAcrossIt) {
  auto in = column(7, {0, 1}, {});
  in.segments[2].chord_mm = 52;
  const auto r = naming::nameColumn(in);
  ASSERT_EQ(r.segment_flags.size(), 7u);
  ASSERT_EQ(r.segment_flags[2].size(), 1u);
  EXPECT_EQ(r.segment_flags[2][0].flag, "suspected_merge");
  for (int i = 3; i < 7; ++i) {
    ASSERT_EQ(r.segment_flags[i].size(), 1u) << i;
    EXPECT_EQ(r.segment_flags[i][0].flag, "named_across_merge");
  }
  EXPECT_TRUE(r.segment_flags[1].empty());  // T12 is named from the ribs above the merge
}

TEST(Naming, HintNamesWithoutAnchorsAndIsCheckedWithThem) {
  auto in = column(6, {}, {});
  in.hint = naming::LevelHint{"L3", kL3, 2};
  auto r = naming::nameColumn(in);
  EXPECT_EQ(r.used, "user-hint");
  EXPECT_EQ(r.status, SpineStatus::Named);
  EXPECT_EQ(r.labels[0], kL1);
  EXPECT_EQ(r.labels[4], kL5);
  EXPECT_EQ(r.labels[5], 0);  // below L5, not sacral: unnamed
  EXPECT_NEAR(r.confidence, 0.6, 1e-9);
  EXPECT_NE(r.note.find("--level-hint L3"), std::string::npos);
  EXPECT_FALSE(std::any_of(r.warnings.begin(), r.warnings.end(),
                           [](const std::string& w) { return w.rfind("neither anchor", 0) == 0; }));

  auto anchored = column(9, {0, 1}, {7, 8});
  anchored.hint = naming::LevelHint{"L3", kL3, 2};  // anatomy says L1 there
  r = naming::nameColumn(anchored);
  EXPECT_EQ(r.used, "sacrum+ribs");
  EXPECT_EQ(r.labels[2], kL1);
  EXPECT_TRUE(has(r.flags, "hint_disagrees"));
}

// The naming tables four real or phantom scans produced (localize.json's
// anchors.naming_input, rounded to 0.1 mm), with the names verified on them: example_ct
// against TotalSegmentator's labels (tests ReferenceCt.*), CRLM-CT-1004's merged "L1" against
// its middle height (40 mm vs L2's 30 mm), the phantom against its truth.
struct RealTable {
  const char* what;
  const char* json;
  std::string used, status;
  std::vector<int> labels;  // of the first segments (top to bottom)
  std::vector<std::string> flags;
};

TEST(Naming, RealScanTables) {
  const std::vector<RealTable> cases = {
      {"example_ct (3 mm, T12 cut at the top, the sacrum split at its foramina)",
       R"({"ribs":[[1,409.3],[-1,415.3]],"scan_top_z_mm":427.3,"segments":[{"chord_mm":23.9,"lung_area_mm2":1890.0,"partial":true,"room_left_mm":173.0,"room_right_mm":190.0,"sacral":false,"z_hi_mm":427.1,"z_lo_mm":403.6},{"chord_mm":35.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":172.2,"room_right_mm":190.8,"sacral":false,"z_hi_mm":403.6,"z_lo_mm":370.1},{"chord_mm":37.8,"lung_area_mm2":0.0,"partial":false,"room_left_mm":172.5,"room_right_mm":190.5,"sacral":false,"z_hi_mm":370.1,"z_lo_mm":333.6},{"chord_mm":36.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":173.5,"room_right_mm":189.5,"sacral":false,"z_hi_mm":333.6,"z_lo_mm":296.8},{"chord_mm":37.6,"lung_area_mm2":0.0,"partial":false,"room_left_mm":174.8,"room_right_mm":188.2,"sacral":false,"z_hi_mm":296.8,"z_lo_mm":259.2},{"chord_mm":35.3,"lung_area_mm2":0.0,"partial":false,"room_left_mm":176.8,"room_right_mm":186.2,"sacral":false,"z_hi_mm":259.2,"z_lo_mm":230.4},{"chord_mm":37.0,"lung_area_mm2":0.0,"partial":false,"room_left_mm":163.6,"room_right_mm":199.4,"sacral":true,"z_hi_mm":230.4,"z_lo_mm":198.2},{"chord_mm":9.5,"lung_area_mm2":0.0,"partial":false,"room_left_mm":160.1,"room_right_mm":202.9,"sacral":false,"z_hi_mm":198.2,"z_lo_mm":191.3},{"chord_mm":25.4,"lung_area_mm2":9.0,"partial":false,"room_left_mm":160.1,"room_right_mm":202.9,"sacral":false,"z_hi_mm":191.3,"z_lo_mm":170.9},{"chord_mm":55.6,"lung_area_mm2":0.0,"partial":false,"room_left_mm":160.1,"room_right_mm":202.9,"sacral":false,"z_hi_mm":170.9,"z_lo_mm":119.7},{"chord_mm":25.5,"lung_area_mm2":27.0,"partial":false,"room_left_mm":160.1,"room_right_mm":202.9,"sacral":true,"z_hi_mm":119.7,"z_lo_mm":107.3},{"chord_mm":18.8,"lung_area_mm2":0.0,"partial":true,"room_left_mm":166.1,"room_right_mm":196.9,"sacral":false,"z_hi_mm":107.3,"z_lo_mm":94.3}]})",
       "sacrum+ribs",
       "named",
       {kT12, kL1, kL2, kL3, kL4, kL5, kSacrum},
       {}},
      {"CRLM-CT-1004 (5 mm, no sacrum): L1 merged with its neighbour",
       R"({"ribs":[[-1,-210.0],[-1,-175.0],[1,-180.0],[1,-210.0]],"scan_top_z_mm":-175.0,"segments":[{"chord_mm":59.6,"lung_area_mm2":7705.2,"partial":true,"room_left_mm":216.6,"room_right_mm":190.6,"sacral":false,"z_hi_mm":-175.2,"z_lo_mm":-233.4},{"chord_mm":54.8,"lung_area_mm2":205.7,"partial":false,"room_left_mm":213.0,"room_right_mm":194.2,"sacral":false,"z_hi_mm":-233.4,"z_lo_mm":-285.4},{"chord_mm":38.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":208.9,"room_right_mm":198.3,"sacral":false,"z_hi_mm":-285.4,"z_lo_mm":-323.3},{"chord_mm":37.8,"lung_area_mm2":0.0,"partial":false,"room_left_mm":207.0,"room_right_mm":200.3,"sacral":false,"z_hi_mm":-323.3,"z_lo_mm":-360.4},{"chord_mm":14.8,"lung_area_mm2":0.0,"partial":true,"room_left_mm":206.9,"room_right_mm":200.3,"sacral":false,"z_hi_mm":-360.4,"z_lo_mm":-375.0}]})",
       "ribs",
       "named",
       {kT12, kL1, kL2, kL3, kL4},
       {"suspected_merge"}},
      {"STS_002 (a limb crop that passed the gate): one segment, no anchor",
       R"({"ribs":[[-1,-602.9],[1,-475.3]],"scan_top_z_mm":-475.3,"segments":[{"chord_mm":118.9,"lung_area_mm2":0.0,"partial":true,"room_left_mm":95.8,"room_right_mm":60.4,"sacral":false,"z_hi_mm":-488.5,"z_lo_mm":-606.0}]})",
       "none",
       "levels_not_named",
       {0},
       {}},
      {"phantom, 5 mm slices, T10-S1",
       R"({"ribs":[[1,219.3],[-1,219.3],[1,254.3],[-1,254.3],[1,284.3],[-1,284.3]],"scan_top_z_mm":294.3,"segments":[{"chord_mm":30.0,"lung_area_mm2":4993.9,"partial":true,"room_left_mm":202.6,"room_right_mm":206.2,"sacral":false,"z_hi_mm":293.8,"z_lo_mm":263.9},{"chord_mm":35.0,"lung_area_mm2":2158.7,"partial":false,"room_left_mm":203.2,"room_right_mm":205.6,"sacral":false,"z_hi_mm":263.9,"z_lo_mm":228.9},{"chord_mm":32.7,"lung_area_mm2":31.4,"partial":false,"room_left_mm":203.1,"room_right_mm":205.7,"sacral":false,"z_hi_mm":228.9,"z_lo_mm":196.4},{"chord_mm":36.8,"lung_area_mm2":0.0,"partial":false,"room_left_mm":203.5,"room_right_mm":205.3,"sacral":false,"z_hi_mm":196.4,"z_lo_mm":160.1},{"chord_mm":35.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":204.2,"room_right_mm":204.6,"sacral":false,"z_hi_mm":160.1,"z_lo_mm":124.4},{"chord_mm":40.0,"lung_area_mm2":0.0,"partial":false,"room_left_mm":205.2,"room_right_mm":203.6,"sacral":false,"z_hi_mm":124.4,"z_lo_mm":84.5},{"chord_mm":38.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":205.8,"room_right_mm":203.0,"sacral":false,"z_hi_mm":84.5,"z_lo_mm":45.7},{"chord_mm":40.9,"lung_area_mm2":0.0,"partial":false,"room_left_mm":206.3,"room_right_mm":202.5,"sacral":false,"z_hi_mm":45.7,"z_lo_mm":7.7},{"chord_mm":37.2,"lung_area_mm2":0.0,"partial":true,"room_left_mm":191.4,"room_right_mm":217.4,"sacral":true,"z_hi_mm":7.7,"z_lo_mm":-25.7}]})",
       "sacrum+ribs",
       "named",
       {17, 18, kT12, kL1, kL2, kL3, kL4, kL5, kSacrum},
       {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const auto in = naming::ColumnInput::fromJson(nlohmann::json::parse(c.json));
    const auto r = naming::nameColumn(in);
    EXPECT_EQ(r.used, c.used);
    EXPECT_EQ(toString(r.status), c.status);
    ASSERT_GE(r.labels.size(), c.labels.size());
    for (size_t i = 0; i < c.labels.size(); ++i) EXPECT_EQ(r.labels[i], c.labels[i]) << "segment " << i;
    EXPECT_EQ(r.flags, c.flags);
  }
  // CRLM-CT-1004: the merged body and every level counted across it are flagged.
  const auto crlm = naming::nameColumn(naming::ColumnInput::fromJson(nlohmann::json::parse(cases[1].json)));
  ASSERT_EQ(crlm.segment_flags.size(), 5u);
  EXPECT_EQ(crlm.segment_flags[1].at(0).flag, "suspected_merge");
  for (int i = 2; i < 5; ++i) EXPECT_EQ(crlm.segment_flags[i].at(0).flag, "named_across_merge");
}

TEST(Naming, InputRoundTripsThroughJson) {
  auto in = column(9, {0, 1}, {7, 8});
  in.segments[3].lung_area_mm2 = 123;
  in.hint = naming::LevelHint{"L2", kL2, 3};
  const auto back = naming::ColumnInput::fromJson(in.toJson());
  ASSERT_EQ(back.segments.size(), in.segments.size());
  EXPECT_EQ(back.toJson(), in.toJson());
  const auto a = naming::nameColumn(in), b = naming::nameColumn(back);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.used, b.used);
}

}  // namespace
}  // namespace ctbmd
