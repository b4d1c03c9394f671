#pragma once
// Naming QC along the column: a body far longer than its neighbours predict holds a disc the
// profile missed (two vertebrae taken for one, common at 5 mm slices), so its HU are not one
// body's and every name counted across it is one level off. Pure functions of the segment
// table, tested table-driven (tests/unit/test_naming.cpp).
#include <string>
#include <vector>

namespace ctbmd::naming {

struct Segment {
  double length_mm = 0;  // along the centreline, disc centre to disc centre
  bool partial = false;  // cut by the field of view or missing a disc: its length says nothing
  bool sacral = false;
  int label = 0;  // VerSe label given by the anchors (0: unnamed)
};

/// Which way the names were counted: from an anchor above (ribs, T1), below (sacrum), or
/// both agreeing (then a merge would have made them disagree: only the body is flagged).
enum class CountedFrom { Above, Below, Both, None };

struct LengthParams {
  // A body this much longer than its complete neighbours' mean is suspect. Adjacent lumbar
  // bodies (with their discs) differ by < 10 % (T12-L5 grow ~2-3 mm per level), and the
  // disc placement error is a few mm; 1.3 x is a third of a level.
  double max_ratio = 1.3;
};

struct SegmentFlag {
  int index = -1;            // into the segment table
  std::string flag;          // suspected_merge | named_across_merge
  std::string note;          // for people
};

/// Flags for the table (top to bottom): each named, complete, non-sacral body at least
/// max_ratio times its complete non-sacral neighbours' mean length is `suspected_merge`; the
/// named bodies on the far side of it from the anchor get `named_across_merge`.
std::vector<SegmentFlag> checkLengths(const std::vector<Segment>& segs, CountedFrom from,
                                      const LengthParams& p = {});

}  // namespace ctbmd::naming
