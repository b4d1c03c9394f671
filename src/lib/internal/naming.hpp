#pragma once
// Naming the vertebrae: from the segment table the image analysis produced (bodies split at
// the discs, their lengths, rib heads, sacral alae, lung beside them) to VerSe labels, the
// anchor used, a confidence, flags and warnings. No image here: nameColumn() is a pure
// function of its typed input, so every decision is tested table-driven on the tables real
// scans and the phantom studies produced (tests/unit/test_naming.cpp), and localize.json
// keeps the input ("anchors.naming_input") so a naming on an unseen scan can be replayed.
//
// Naming QC along the column: a body far longer than its neighbours predict holds a disc the
// profile missed (two vertebrae taken for one, common at 5 mm slices), so its HU are not one
// body's and every name counted across it is one level off.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctbmd/levels.hpp"

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
  int index = -1;    // into the segment table
  std::string flag;  // suspected_merge | named_across_merge
  std::string note;  // for people
};

/// Flags for the table (top to bottom): each named, complete, non-sacral body at least
/// max_ratio times its complete non-sacral neighbours' mean length is `suspected_merge`; the
/// named bodies on the far side of it from the anchor get `named_across_merge`.
std::vector<SegmentFlag> checkLengths(const std::vector<Segment>& segs, CountedFrom from,
                                      const LengthParams& p = {});

// ---- the whole naming step ------------------------------------------------------------------

/// One vertebra-like segment of the column, top (superior) to bottom. z is the canonical
/// superior axis in mm (larger is higher).
struct SegmentFacts {
  double z_lo_mm = 0, z_hi_mm = 0;                 // its ends along z (disc centres or the column's ends)
  double chord_mm = 0;                             // straight-line length between its ends
  bool partial = false;                            // missing a disc or cut by the field of view
  bool sacral = false;                             // a bone row spanning both sacral alae
  double room_left_mm = 1e9, room_right_mm = 1e9;  // from its centre to the image's edge
  double lung_area_mm2 = 0;  // lung (< -500 HU) in the paravertebral gutters at its middle
};

/// A rib-like bone component: its side (+1 patient left, -1 right) and the z of its medial
/// end (where it meets the column).
struct RibFacts {
  int side = 0;
  double medial_z_mm = 0;
};

/// A level the user knows (--level-hint): the segment it points at and its label.
struct LevelHint {
  std::string text;  // as given, for messages
  int label = 0;
  int segment = -1;
};

struct ColumnInput {
  std::vector<SegmentFacts> segments;  // top to bottom
  std::vector<RibFacts> ribs;
  double scan_top_z_mm = 0;  // the scan's highest slice
  std::optional<LevelHint> hint;
  nlohmann::json toJson() const;
  static ColumnInput fromJson(const nlohmann::json& j);  // throws nlohmann::json::exception
};

struct NamingParams {
  // A rib belongs to the segment its medial end lies in, or within this of (mm): the rib
  // head articulates at the disc level, so it may sit just past either end of its body.
  double rib_attach_mm = 10;
  // A side of the body whose image ends closer to the spine than this (mm) cannot show the
  // rib there: the twelfth rib's head and neck run 40-60 mm out from the vertebral body.
  double rib_side_room_mm = 70;
  // Lung area (mm^2) beside a body that rules out a lumbar name (L2-L5 lie below the lungs;
  // the costophrenic recesses reach T12-L1 only).
  double lung_area_mm2 = 1500;
  LengthParams lengths;
};

struct NamingResult {
  std::vector<int> labels;                              // per segment (0: unnamed)
  std::vector<int> ribs_left, ribs_right;               // rib heads per segment
  std::vector<std::vector<SegmentFlag>> segment_flags;  // per segment (naming QC)
  std::string used =
      "none";  // the anchor: sacrum+ribs | first-rib+sacrum | first-rib | sacrum | ribs | user-hint | none
  double confidence = 0;
  SpineStatus status = SpineStatus::Named;  // Named | LevelsNotNamed
  std::string reason;
  std::vector<std::string> flags, warnings;
  // evidence for localize.json
  int last_rib_bearing = -1, first_rib = -1, sacrum = -1, rib_pairs = -1, t1_to_sacrum = -1;
  bool first_rib_in_view = false;
  std::string rib_count_from;
  int rib_components_left = 0, rib_components_right = 0;
  std::string note, rib_count_note;
};

/// Names the column: ribs attached to segments; the sacrum (both alae, no rib, lowest or
/// above another sacral piece); the rib-bearing run and its last vertebra (T12), anchored
/// only as a rib pair; the rib pairs counted from T1 where the first pair is in view (along
/// the column or by the rib components), against the sacrum; labels with the variants
/// (13 or 11 rib pairs, a lumbar rib, a transitional vertebra); --level-hint; the lung check
/// (no lumbar name beside lung); the length QC (suspected_merge).
NamingResult nameColumn(const ColumnInput& in, const NamingParams& p = {});

}  // namespace ctbmd::naming
