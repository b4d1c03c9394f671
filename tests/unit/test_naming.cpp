// Naming QC and the anatomy gate's verdict, table-driven: the cases the phantom studies and
// the shared real scans produced (lengths and canal figures as measured there).
#include <gtest/gtest.h>

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
       {{24, true, false, 19}, {36, false, false, 20}, {38, false, false, 21}, {37, false, false, 22},
        {38, false, false, 23}, {36, false, false, 24}, {61, false, true, 26}},
       CountedFrom::Both,
       {}},
      // CRLM-CT-1004 (5 mm, named from the ribs above): "L1" 55 mm against 39/38 below; its
      // neighbour above is cut (partial) and says nothing. L1 merged, L2-L4 counted across it.
      {"CRLM-CT-1004",
       {{60, true, false, 19}, {55, false, false, 20}, {39, false, false, 21}, {38, false, false, 22},
        {15, true, false, 23}},
       CountedFrom::Above,
       {{1, "suspected_merge"}, {2, "named_across_merge"}, {3, "named_across_merge"}, {4, "named_across_merge"}}},
      // The same column named from the sacrum below: the names above the merge are suspect.
      {"merge, counted from the sacrum",
       {{30, true, false, 19}, {36, false, false, 20}, {72, false, false, 21}, {37, false, false, 23},
        {38, false, false, 24}, {60, false, true, 26}},
       CountedFrom::Below,
       {{2, "suspected_merge"}, {1, "named_across_merge"}, {0, "named_across_merge"}}},
      // Both anchors agree: a merge would have broken the count, so only the body is flagged.
      {"anchors agree",
       {{36, false, false, 20}, {50, false, false, 21}, {37, false, false, 22}},
       CountedFrom::Both,
       {{1, "suspected_merge"}}},
      // 1.25 x (L5 longer than L4, a tilted lumbosacral level): within the limit.
      {"long but plausible", {{36, false, false, 22}, {38, false, false, 23}, {46, false, false, 24}},
       CountedFrom::Above, {}},
      // An unnamed or partial long segment is not judged; a partial neighbour predicts nothing.
      {"partial and unnamed", {{80, true, false, 20}, {38, false, false, 21}, {90, false, false, 0}},
       CountedFrom::Above, {}},
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
      {"CRLM", {ev(1, true, 0.01), ev(1, true, 0.0), ev(1, true, 0.0), ev(1, true, 0.02), ev(1, true, 0.02)},
       true, "spinal canal"},
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

}  // namespace
}  // namespace ctbmd
