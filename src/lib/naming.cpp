// Naming the vertebrae from the segment table, and the naming QC (internal/naming.hpp).
#include "internal/naming.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "ctbmd/levels.hpp"

namespace ctbmd::naming {

namespace {
bool named(const Segment& s) { return s.label >= 8 && s.label != 26; }
}  // namespace

std::vector<SegmentFlag> checkLengths(const std::vector<Segment>& segs, CountedFrom from,
                                      const LengthParams& p) {
  std::vector<SegmentFlag> out;
  const int n = static_cast<int>(segs.size());
  auto complete = [&](int j) { return j >= 0 && j < n && !segs[j].partial && !segs[j].sacral; };
  for (int i = 0; i < n; ++i) {
    if (!complete(i) || !named(segs[i])) continue;
    double sum = 0;
    int cnt = 0;
    for (int j : {i - 1, i + 1})
      if (complete(j)) {
        sum += segs[j].length_mm;
        ++cnt;
      }
    if (cnt == 0) continue;
    const double pred = sum / cnt;
    if (segs[i].length_mm < p.max_ratio * pred) continue;
    char buf[200];
    std::snprintf(buf, sizeof buf,
                  "body %.0f mm long against %.0f mm predicted by its neighbours (%.2f x, limit %.2f): a "
                  "disc may have been missed inside it",
                  segs[i].length_mm, pred, segs[i].length_mm / pred, p.max_ratio);
    out.push_back({i, "suspected_merge", buf});
    if (from == CountedFrom::Both || from == CountedFrom::None) continue;
    const int step = from == CountedFrom::Above ? 1 : -1;  // the far side of the body from the anchor
    for (int j = i + step; j >= 0 && j < n; j += step)
      if (named(segs[j]))
        out.push_back({j, "named_across_merge",
                       std::string("named by counting ") + (step > 0 ? "down" : "up") +
                           " across a suspected merged body: the name may be one level off"});
  }
  return out;
}

}  // namespace ctbmd::naming

// ---- the whole naming step ------------------------------------------------------------------
namespace ctbmd::naming {

using nlohmann::json;

json ColumnInput::toJson() const {
  json segs = json::array();
  for (const auto& s : segments)
    segs.push_back({{"z_lo_mm", s.z_lo_mm},
                    {"z_hi_mm", s.z_hi_mm},
                    {"chord_mm", s.chord_mm},
                    {"partial", s.partial},
                    {"sacral", s.sacral},
                    {"room_left_mm", std::min(s.room_left_mm, 1e6)},
                    {"room_right_mm", std::min(s.room_right_mm, 1e6)},
                    {"lung_area_mm2", s.lung_area_mm2}});
  json rs = json::array();
  for (const auto& r : ribs) rs.push_back({r.side, r.medial_z_mm});
  json j = {{"segments", segs}, {"ribs", rs}, {"scan_top_z_mm", scan_top_z_mm}};
  if (hint) j["hint"] = {{"text", hint->text}, {"label", hint->label}, {"segment", hint->segment}};
  return j;
}

ColumnInput ColumnInput::fromJson(const json& j) {
  ColumnInput in;
  for (const auto& s : j.at("segments"))
    in.segments.push_back({s.at("z_lo_mm").get<double>(), s.at("z_hi_mm").get<double>(),
                           s.at("chord_mm").get<double>(), s.at("partial").get<bool>(),
                           s.at("sacral").get<bool>(), s.value("room_left_mm", 1e9),
                           s.value("room_right_mm", 1e9), s.value("lung_area_mm2", 0.0)});
  for (const auto& r : j.at("ribs")) in.ribs.push_back({r.at(0).get<int>(), r.at(1).get<double>()});
  in.scan_top_z_mm = j.at("scan_top_z_mm").get<double>();
  if (j.contains("hint"))
    in.hint = LevelHint{j["hint"].at("text").get<std::string>(), j["hint"].at("label").get<int>(),
                        j["hint"].at("segment").get<int>()};
  return in;
}

namespace {

std::string name(int label) { return label == kSacrum ? "S1" : levelName(label); }

struct Namer {
  const ColumnInput& in;
  const NamingParams& p;
  NamingResult& r;
  int n;

  bool hasRibs(int i) const { return r.ribs_left[i] + r.ribs_right[i] > 0; }
  double zTop(int i) const { return std::max(in.segments[i].z_lo_mm, in.segments[i].z_hi_mm); }
  double zBottom(int i) const { return std::min(in.segments[i].z_lo_mm, in.segments[i].z_hi_mm); }
  bool aboveSacrum(int i) const { return i < n && (r.sacrum < 0 || i < r.sacrum); }

  // Ribs attach where their medial end is.
  void attachRibs() {
    for (const auto& rib : in.ribs) {
      int best = -1;
      double bestd = 1e9;
      for (int i = 0; i < n; ++i) {
        const double z0 = zBottom(i), z1 = zTop(i), z = rib.medial_z_mm;
        const double d = z < z0 ? z0 - z : (z > z1 ? z - z1 : 0);
        if (d < bestd) {
          bestd = d;
          best = i;
        }
      }
      if (best >= 0 && bestd <= p.rib_attach_mm) (rib.side > 0 ? r.ribs_left : r.ribs_right)[best]++;
    }
  }

  // The sacrum (S1): the first segment from the top whose bone row spans both alae, with no
  // rib, and either the scan's lowest segment or with another such segment below it (the
  // sacral segments and coccyx under S1 are often split into narrower pieces at the foramina;
  // one wide row high in the column is no sacrum).
  void findSacrum() {
    for (int i = 1; i < n && r.sacrum < 0; ++i) {
      if (!in.segments[i].sacral || hasRibs(i)) continue;
      bool below = i == n - 1;
      for (int j = i + 1; j < n && !below; ++j) below = in.segments[j].sacral;
      if (below) r.sacrum = i;
    }
  }

  // The rib-bearing run: from the topmost vertebra with ribs down to the last one above the
  // sacrum; one vertebra without a rib found between two with ribs counts as rib-bearing (a
  // rib head missed or given to its neighbour). A run that does not start at the scan's top
  // (or below a partial sliver there) must be a thorax, >= 6 vertebrae: a lone lumbar "rib"
  // (a stray bone piece) is not an anchor.
  void findRibRun() {
    for (int i = 0; i < n && aboveSacrum(i) && r.first_rib < 0; ++i)
      if (hasRibs(i)) r.first_rib = i;
    if (r.first_rib < 0) return;
    int t = r.first_rib;
    for (;;) {
      if (aboveSacrum(t + 1) && hasRibs(t + 1))
        t += 1;
      else if (aboveSacrum(t + 2) && hasRibs(t + 2) && t + 2 - r.first_rib < 13)
        t += 2;
      else
        break;
    }
    const bool at_top = r.first_rib == 0 || (r.first_rib == 1 && in.segments[0].partial);
    if (!at_top && t - r.first_rib + 1 < 6)
      r.first_rib = -1;
    else if (aboveSacrum(t + 1))
      r.last_rib_bearing = t;  // the last rib-bearing vertebra needs one below it
  }

  // A rib anchors T12 only as one of a pair: a rib on each side of the last rib-bearing
  // vertebra, or one side's rib where the field of view ends before the other side's rib
  // could be seen. A single unpaired "rib" (a stray bone piece, the femoral neck's cortex)
  // is no anchor.
  void checkRibPair() {
    const int t12 = r.last_rib_bearing;
    if (t12 < 0) return;
    const auto& g = in.segments[t12];
    const int L = r.ribs_left[t12], R = r.ribs_right[t12];
    const bool left_seen = g.room_left_mm >= p.rib_side_room_mm,
               right_seen = g.room_right_mm >= p.rib_side_room_mm;
    const bool paired = (L > 0 && R > 0) || (L > 0 && !right_seen) || (R > 0 && !left_seen);
    if (!paired) {
      const bool left = L > 0;
      r.flags.push_back("rib_unpaired");
      r.warnings.push_back(std::string("the lowest rib-bearing vertebra has a rib on the ") +
                           (left ? "left" : "right") + " only, and the " + (left ? "right" : "left") +
                           " side is in view: an unpaired rib-like bone is not taken as T12's rib pair");
      r.last_rib_bearing = -1;
    } else if (L == 0 || R == 0) {
      r.warnings.push_back(std::string("T12's rib is seen on the ") + (L ? "left" : "right") +
                           " only: the field of view ends " +
                           std::to_string(static_cast<int>(L ? g.room_right_mm : g.room_left_mm)) +
                           " mm from the spine on the other side, before its rib could be seen");
    }
  }

  // Every vertebra from `from` down to the sacrum 0.6-1.5 times as long as its neighbours,
  // and none above the last rib-bearing one with two ribs on a side.
  bool plausibleFrom(int from) const {
    const int last = r.sacrum > 0 ? r.sacrum - 1 : n - 1;
    for (int i = std::max(0, from); i <= last; ++i) {
      if (in.segments[i].partial) continue;
      double s = 0;
      int c = 0;
      for (int j : {i - 1, i + 1})
        if (j >= from && j <= last && !in.segments[j].partial) {
          s += in.segments[j].chord_mm;
          ++c;
        }
      const double len = in.segments[i].chord_mm;
      if (c && (len < 0.6 * s / c || len > 1.5 * s / c)) return false;
      // two ribs on one side of one vertebra: two vertebrae taken for one (a disc missed)
      if (i <= r.last_rib_bearing && (r.ribs_left[i] > 1 || r.ribs_right[i] > 1)) return false;
    }
    return true;
  }

  // Counting from T1: the first rib pair is in the field of view when no rib starts above the
  // first rib-bearing vertebra and the scan shows the spine above it: a complete rib-free
  // vertebra (C7) directly above, or 30 mm of scan above its top (cervical bodies are often
  // too small to be outlined, so the column may seem to end at T1). The rib pairs can then
  // be counted, and with the sacrum the thoracolumbar vertebrae too (17 in most people): this
  // tells 13 rib pairs with a T13 (18) from a rib on L1 (17), and six lumbar vertebrae (18
  // with 12 rib pairs) from a lumbarised S1. Only while the segments have plausible lengths
  // (no disc missed or split).
  void countFromT1() {
    const int t12 = r.last_rib_bearing;
    // (a) along the column: rib-bearing vertebrae from the first to the last (>= 10 of them:
    // a thorax, not a scan that starts at T11).
    bool first_rib_visible = false;
    if (t12 >= 0 && t12 - r.first_rib + 1 >= 10) {
      const double top_z = zTop(r.first_rib);
      const bool ribs_above = std::any_of(in.ribs.begin(), in.ribs.end(),
                                          [&](const RibFacts& rib) { return rib.medial_z_mm > top_z + 5; });
      const bool c7_seen =
          r.first_rib >= 1 && !in.segments[r.first_rib - 1].partial && !hasRibs(r.first_rib - 1);
      const bool room_above = in.scan_top_z_mm - top_z >= 30;
      first_rib_visible = !ribs_above && (c7_seen || room_above);
    }
    const int run = t12 - r.first_rib + 1;
    if (first_rib_visible && plausibleFrom(r.first_rib) && run >= 11 && run <= 13) {
      r.rib_pairs = run;
      r.first_rib_in_view = true;
      r.rib_count_from = "column";
    }
    // (b) the ribs themselves, where the upper column was not followed (small upper thoracic
    // bodies in a noisy scan): as many rib components on the left as on the right (11-13), the
    // highest starting 30 mm or more below the scan's top. The last rib-bearing vertebra of
    // the column is then T(count).
    double cage_top = -1e18;
    // only the rib cage: from the last rib-bearing vertebra up (not the iliac wings below)
    const double cage_bottom = t12 >= 0 ? zBottom(t12) - 10 : std::numeric_limits<double>::max();
    for (const auto& rib : in.ribs) {
      if (rib.medial_z_mm < cage_bottom) continue;
      (rib.side > 0 ? r.rib_components_left : r.rib_components_right)++;
      cage_top = std::max(cage_top, rib.medial_z_mm);
    }
    const int cl = r.rib_components_left, cr = r.rib_components_right;
    const bool cage_in_view = cl >= 10 && cr >= 10 && in.scan_top_z_mm - cage_top >= 30;
    const bool cage_countable = cage_in_view && cl == cr && cl >= 11 && cl <= 13;
    std::string conflict;
    if (r.first_rib_in_view && cage_countable && cl != r.rib_pairs) {
      // Both ways counted and they disagree: one of them missed something; trust neither.
      conflict = "the column gives " + std::to_string(r.rib_pairs) +
                 " rib-bearing vertebrae, the rib-like bones " + std::to_string(cl) + " pairs";
      r.first_rib_in_view = false;
      r.rib_pairs = -1;
    }
    if (!r.first_rib_in_view && conflict.empty() && t12 >= 0 && cage_countable && plausibleFrom(t12)) {
      r.rib_pairs = cl;
      r.first_rib_in_view = true;
      r.rib_count_from = "rib components";
      r.first_rib = t12 - r.rib_pairs + 1;  // T1's place in the column (above the part followed, maybe)
    }
    if (r.first_rib_in_view && r.sacrum > 0) r.t1_to_sacrum = r.sacrum - r.first_rib;
    if (!r.first_rib_in_view && t12 >= 0 && (first_rib_visible || cage_in_view)) {
      r.warnings.push_back(
          "the first rib pair seems to be in view, but the rib pairs could not be counted (" +
          (conflict.empty() ? std::to_string(cl) + " rib-like bones on the left, " + std::to_string(cr) +
                                  " on the right; the column " +
                                  (first_rib_visible ? "followed up to T1" : "not followed up to T1")
                            : conflict) +
          "): a 13th rib pair (T13) cannot be ruled out");
      r.flags.push_back("rib_count_unverified");
    }
  }

  void variant(const std::string& flag, const std::string& what) {
    r.flags.push_back(flag);
    r.warnings.push_back(what);
    r.confidence = 0.7;
  }

  // Names by position from T1: n_thoracic vertebrae (T1..T12, then T13), then lumbar ones.
  void nameFromT1(int n_thoracic) {
    for (int i = 0; i < n; ++i) {
      const int j = i - r.first_rib;
      if (r.sacrum > 0 && i >= r.sacrum)
        r.labels[i] = kSacrum;
      else if (j < 0)
        r.labels[i] = 8 + j >= 1 ? 8 + j : 0;  // C7, C6, ...
      else if (j < n_thoracic)
        r.labels[i] = j < 12 ? 8 + j : kT13;
      else
        r.labels[i] = kL1 + (j - n_thoracic) <= kL6 ? kL1 + (j - n_thoracic) : 0;
    }
  }

  void applyAnchors() {
    const int sac = r.sacrum, t12 = r.last_rib_bearing, nrib = r.rib_pairs, total = r.t1_to_sacrum;
    r.confidence = 0.9;
    // With the sacrum: 13 thoracic vertebrae when 13 rib pairs and >= 18 vertebrae, else 12
    // (a 13th rib pair on L1 is a lumbar rib, an 11th pair's T12 has none); 4-6 lumbar ones.
    const int n_thoracic = nrib == 13 && total >= 18 ? 13 : 12, n_lumbar = total - n_thoracic;
    if (r.first_rib_in_view && (sac < 0 || (n_lumbar >= 4 && n_lumbar <= 6))) {
      const std::string counted = std::to_string(nrib) + " rib pairs counted from T1";
      if (sac < 0) {
        r.used = "first-rib";
        r.confidence = 0.8;
        nameFromT1(std::max(12, nrib));
        if (nrib == 13)
          variant("rib_pairs_13",
                  counted +
                      " and no sacrum in view: the 13th rib-bearing vertebra is named T13; if it "
                      "is an L1 with a lumbar rib, every lumbar name is one level too high. Check.");
        if (nrib == 11)
          variant("rib_pairs_11", counted + ": the 12th vertebra from T1, without ribs, is named T12");
      } else {
        r.used = "first-rib+sacrum";
        r.confidence = 0.95;
        nameFromT1(n_thoracic);
        const std::string counts =
            counted + ", " + std::to_string(total) + " vertebrae from T1 down to the sacrum";
        if (n_thoracic == 13)
          variant("rib_pairs_13",
                  counts + ": a supernumerary T13 (VerSe label 28); T12 is the vertebra above it");
        else if (nrib == 13)
          variant("lumbar_rib", counts + ": the 13th rib pair sits on L1 (a lumbar rib); L1 keeps its name");
        else if (nrib == 11)
          variant("rib_pairs_11", counts + ": T12 carries no ribs; it is named by its position");
        if (n_lumbar != 5)
          variant("transitional_vertebra", counts + ": " + std::to_string(n_lumbar) + " lumbar vertebrae (" +
                                               (n_lumbar > 5 ? "a lumbarised S1 is named L6"
                                                             : "a sacralised L5 is part of the sacrum") +
                                               "); names count down from T1");
      }
    } else if (sac > 0) {
      for (int i = sac - 1, lbl = kL5; i >= 0; --i, --lbl) r.labels[i] = lbl >= 8 ? lbl : 0;
      for (int i = sac; i < n; ++i) r.labels[i] = kSacrum;
      r.used = "sacrum";
      r.confidence = 0.75;
      if (t12 >= 0) {
        const int lumbar = sac - 1 - t12;
        if (lumbar == 5 && !r.first_rib_in_view) {
          r.used = "sacrum+ribs";
          r.confidence = 0.9;
        } else {
          r.flags.push_back("anchors_disagree");
          r.warnings.push_back(
              r.first_rib_in_view
                  ? "counting from T1 gives " + std::to_string(total) +
                        " vertebrae down to the sacrum, far from the usual 17: a disc missed or split, or a "
                        "rare "
                        "variant. Labels count up from the sacrum; check them."
                  : "the last rib-bearing vertebra and the vertebra on the sacrum are " +
                        std::to_string(lumbar + 1) +
                        " levels apart, not 6: a transitional vertebra or an unusual rib count (e.g. 13 rib "
                        "pairs, "
                        "six lumbar vertebrae). Labels count up from the sacrum; check them.");
          r.confidence = 0.5;
        }
      }
    } else if (t12 >= 0) {
      // Without a count from T1 nothing below L5 is named: a sixth lumbar vertebra cannot be
      // told from S1 when the sacrum was not recognised.
      for (int i = t12, lbl = kT12; i < n; ++i, ++lbl) r.labels[i] = lbl <= kL5 ? lbl : 0;
      for (int i = t12 - 1, lbl = kT12 - 1; i >= 0; --i, --lbl) r.labels[i] = lbl >= 8 ? lbl : 0;
      r.used = "ribs";
      r.confidence = 0.75;
    } else {
      r.used = "none";
      r.status = SpineStatus::LevelsNotNamed;
      r.reason =
          "a vertebral column is seen, but neither anchor (a last rib pair with a vertebra below it, the "
          "sacrum) is visible, so no level can be named";
      r.warnings.push_back(
          "neither anchor is visible (no last rib-bearing vertebra with a vertebra below it, no sacrum): "
          "vertebrae were found but cannot be named, so all levels are reported missing");
    }
  }

  // A level the user knows (--level-hint): names the vertebrae when anatomy cannot, and is
  // checked against anatomy when it can.
  void applyHint() {
    if (!in.hint || n == 0) return;
    const auto& h = *in.hint;
    const int ih = std::clamp(h.segment, 0, n - 1);
    if (r.used == "none") {
      for (int i = 0; i < n; ++i) {
        const int lbl = h.label + (i - ih);
        r.labels[i] = in.segments[i].sacral && lbl > kL5 ? kSacrum : (lbl >= 8 && lbl <= kL5 ? lbl : 0);
      }
      r.used = "user-hint";
      r.status = SpineStatus::Named;
      r.reason.clear();
      r.confidence = 0.6;
      r.note = "labels rest on --level-hint " + h.text + " (no anatomical anchor visible)";
      r.warnings.erase(std::remove_if(r.warnings.begin(), r.warnings.end(),
                                      [](const std::string& w) { return w.rfind("neither anchor", 0) == 0; }),
                       r.warnings.end());
      r.warnings.push_back("no anatomical anchor is visible: the names rest on --level-hint " + h.text);
    } else if (r.labels[ih] != h.label) {
      r.flags.push_back("hint_disagrees");
      r.warnings.push_back("--level-hint " + h.text +
                           " disagrees with anatomy: the vertebra it points at is " +
                           (r.labels[ih] ? levelName(r.labels[ih]) : std::string("unnamed")) + " by the " +
                           r.used + " anchor; the anatomical names are kept, check them");
    }
  }

  // Consistency: lumbar levels L2-L5 lie below the lungs. Lung tissue beside a body named
  // L2-L5 means the names cannot be right (a chest scan whose rib anchor failed, say):
  // report nothing rather than invent lumbar levels.
  void checkLung() {
    std::vector<std::string> bad;
    for (int i = 0; i < n; ++i)
      if (r.labels[i] >= kL2 && r.labels[i] <= kL6 && in.segments[i].lung_area_mm2 > p.lung_area_mm2)
        bad.push_back(levelName(r.labels[i]) + " (" +
                      std::to_string(static_cast<int>(in.segments[i].lung_area_mm2 / 100)) + " cm2)");
    if (bad.empty()) return;
    std::string list;
    for (size_t i = 0; i < bad.size(); ++i) list += (i ? ", " : "") + bad[i];
    r.flags.push_back("anatomy_inconsistent");
    r.warnings.push_back(
        "lung tissue lies beside the bodies that would be " + list +
        ": the levels cannot be named reliably (is this a chest scan?), so none are reported");
    std::fill(r.labels.begin(), r.labels.end(), 0);
    r.used = "none";
    r.status = SpineStatus::LevelsNotNamed;
    r.reason = "lung tissue lies beside the bodies that would be " + list +
               ": the names cannot be right (a chest scan whose rib anchor failed?)";
  }

  // Naming QC: a body far longer than its neighbours (a disc missed) is never used silently,
  // nor the names counted across it.
  void checkBodyLengths() {
    std::vector<Segment> table;
    // straight-line lengths: the centreline bends at the lumbosacral junction, its arc is longer
    for (int i = 0; i < n; ++i)
      table.push_back({in.segments[i].chord_mm, in.segments[i].partial, in.segments[i].sacral, r.labels[i]});
    const auto& u = r.used;
    const auto from = u == "ribs" || u == "first-rib"                 ? CountedFrom::Above
                      : u == "sacrum"                                 ? CountedFrom::Below
                      : u == "sacrum+ribs" || u == "first-rib+sacrum" ? CountedFrom::Both
                                                                      : CountedFrom::None;
    for (const auto& f : checkLengths(table, from, p.lengths)) {
      r.segment_flags[f.index].push_back(f);
      if (f.flag != "suspected_merge") continue;
      if (std::find(r.flags.begin(), r.flags.end(), "suspected_merge") == r.flags.end())
        r.flags.push_back("suspected_merge");
      r.warnings.push_back(name(r.labels[f.index]) + ": " + f.note + "; it is not used for BMD" +
                           (from == CountedFrom::Above || from == CountedFrom::Below
                                ? std::string(", nor the levels named across it")
                                : std::string()));
    }
  }

  void notes() {
    const auto& u = r.used;
    if (u == "user-hint") return;  // applyHint's note
    r.note.clear();
    r.rib_count_note.clear();
    if (u == "sacrum")
      r.note = r.last_rib_bearing >= 0 ? "labels count up from the sacrum (the rib anchor disagrees)"
                                       : "labels rest on the sacrum (no rib anchor visible)";
    if (u == "ribs") r.note = "labels rest on the last rib pair (sacrum not visible)";
    if (u == "ribs" || u == "sacrum+ribs")
      r.rib_count_note =
          "the first rib pair is not in view, so 12 rib pairs are assumed: a 13th pair (T13) would shift "
          "T12's name";
    if (u == "first-rib") r.note = "labels count down from T1 (first rib pair in view; no sacrum)";
    if (u == "first-rib+sacrum")
      r.note = "labels count down from T1 (first rib pair in view), checked against the sacrum";
  }
};

}  // namespace

NamingResult nameColumn(const ColumnInput& in, const NamingParams& p) {
  NamingResult r;
  const int n = static_cast<int>(in.segments.size());
  r.labels.assign(n, 0);
  r.ribs_left.assign(n, 0);
  r.ribs_right.assign(n, 0);
  r.segment_flags.assign(n, {});
  Namer nm{in, p, r, n};
  nm.attachRibs();
  nm.findSacrum();
  nm.findRibRun();
  nm.checkRibPair();
  nm.countFromT1();
  nm.applyAnchors();
  nm.applyHint();
  nm.checkLung();
  nm.checkBodyLengths();
  nm.notes();
  return r;
}

}  // namespace ctbmd::naming
