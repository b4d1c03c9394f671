// localize, weight-free default ("classical"): track the spinal column, find vertebral
// bodies slice by slice (cortical ring filled, posterior elements opened away), split the
// column at the intervertebral discs, and name the bodies from anatomical anchors: the last
// rib-bearing vertebra is T12, the vertebra resting on the sacrum is L5.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/methods.hpp"
#include "ctbmd/stages.hpp"
#include "internal/column.hpp"
#include "internal/naming.hpp"
#include "internal/parallel.hpp"
#include "internal/spine.hpp"
#include "localize_learned.hpp"

namespace ctbmd {

using nlohmann::json;

namespace {
// In-plane pixel (mm) the classical localizer works at: finer grids are binned to it.
constexpr double kLocalizePixelMm = 1.6;
}  // namespace

// ---- JSON -----------------------------------------------------------------------------------
namespace {
json columnJson(const ColumnAssessment& c) {
  json segj = json::array();
  for (const auto& e : c.segments)
    segj.push_back({{"canal", e.canal},
                    {"canal_enclosure", e.canal_enclosure},
                    {"canal_radius_mm", e.canal_radius_mm},
                    {"canal_slices", e.canal_slices},
                    {"holes_in_marrow", e.holes_in_marrow},
                    {"posterior_bone_mm", e.posterior_bone_mm},
                    {"holes_without_arch", e.holes_without_arch},
                    {"canal_depth_mm", e.canal_depth_mm},
                    {"canal_at", {e.canal_x, e.canal_y, e.canal_z}},
                    {"midline_offset", e.midline_offset ? json(*e.midline_offset) : json(nullptr)},
                    {"sacral", e.sacral}});
  const auto& v = c.verdict;
  return {{"seen", v.seen},
          {"reason", v.reason},
          {"segments", v.segments},
          {"with_canal", v.with_canal},
          {"midline_known", v.midline_known},
          {"off_midline", v.off_midline},
          {"evidence", segj}};
}

ColumnAssessment columnFromJson(const json& j) {
  ColumnAssessment c;
  c.verdict.seen = j.at("seen").get<bool>();
  c.verdict.reason = j.at("reason").get<std::string>();
  c.verdict.segments = j.at("segments").get<int>();
  c.verdict.with_canal = j.at("with_canal").get<int>();
  c.verdict.midline_known = j.at("midline_known").get<int>();
  c.verdict.off_midline = j.at("off_midline").get<int>();
  for (const auto& s : j.at("evidence")) {
    SegmentEvidence e;
    e.canal = s.at("canal").get<bool>();
    e.canal_enclosure = s.at("canal_enclosure").get<double>();
    e.canal_radius_mm = s.at("canal_radius_mm").get<double>();
    e.canal_slices = s.at("canal_slices").get<int>();
    e.holes_in_marrow = s.at("holes_in_marrow").get<int>();
    e.posterior_bone_mm = s.at("posterior_bone_mm").get<double>();
    e.holes_without_arch = s.at("holes_without_arch").get<int>();
    e.canal_depth_mm = s.at("canal_depth_mm").get<double>();
    const auto at = s.at("canal_at").get<std::array<double, 3>>();
    e.canal_x = at[0];
    e.canal_y = at[1];
    e.canal_z = at[2];
    if (!s.at("midline_offset").is_null()) e.midline_offset = s["midline_offset"].get<double>();
    e.sacral = s.at("sacral").get<bool>();
    c.segments.push_back(e);
  }
  return c;
}

json vertebraJson(const VertebraFound& v) {
  return {{"index", v.index},
          {"name", v.name},
          {"label", v.label},
          {"center_mm", v.center_mm},
          {"length_mm", v.length_mm},
          {"partial", v.partial},
          {"ribs_left", v.ribs_left},
          {"ribs_right", v.ribs_right},
          {"row_width_mm", v.row_width_mm},
          {"ala_reach_mm", v.ala_reach_mm},
          {"sacral", v.sacral}};
}

VertebraFound vertebraFromJson(const json& j) {
  VertebraFound v;
  v.index = j.at("index").get<int>();
  v.name = j.at("name").get<std::string>();
  v.label = j.at("label").get<int>();
  v.center_mm = j.at("center_mm").get<PointMm>();
  v.length_mm = j.at("length_mm").get<double>();
  v.partial = j.at("partial").get<bool>();
  v.ribs_left = j.at("ribs_left").get<int>();
  v.ribs_right = j.at("ribs_right").get<int>();
  v.row_width_mm = j.at("row_width_mm").get<double>();
  v.ala_reach_mm = j.at("ala_reach_mm").get<double>();
  v.sacral = j.at("sacral").get<bool>();
  return v;
}

template <class T>
json orNull(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
template <class T>
std::optional<T> nullOr(const json& j, const char* key) {
  if (j.at(key).is_null()) return std::nullopt;
  return j[key].get<T>();
}
}  // namespace

json Anchors::toJson() const {
  json a = json::object();
  if (!method.empty()) a["method"] = method;
  if (l1_top_mm) a["l1_top_mm"] = *l1_top_mm;
  if (!used.empty()) a["used"] = used;
  if (naming) {
    const auto& n = *naming;
    a["dense_bone_threshold_hu"] = n.dense_bone_threshold_hu;
    a["noise_hu"] = n.noise_hu;
    a["slices_averaged"] = n.slices_averaged;
    a["slices_traced_radially"] = n.slices_traced_radially;
    a["last_rib_bearing_index"] = n.last_rib_bearing_index;
    a["first_rib_index"] = n.first_rib_index;
    a["first_rib_in_view"] = n.first_rib_in_view;
    a["rib_pairs_counted"] = orNull(n.rib_pairs_counted);
    a["rib_pairs_counted_from"] = orNull(n.rib_pairs_counted_from);
    a["rib_components"] = {{"left", n.rib_components_left}, {"right", n.rib_components_right}};
    a["vertebrae_t1_to_sacrum"] = orNull(n.vertebrae_t1_to_sacrum);
    a["sacrum_index"] = n.sacrum_index;
    a["ribs_found"] = n.ribs_found;
    a["sacrum_seen"] = n.sacrum_seen;
    a["naming_input"] = n.naming_input;
    if (!n.note.empty()) a["note"] = n.note;
    if (!n.rib_count_note.empty()) a["rib_count_note"] = n.rib_count_note;
  }
  if (!metal_levels.empty()) a["metal_levels"] = metal_levels;
  if (!level_hint.empty()) a["level_hint"] = level_hint;
  return a;
}

Anchors Anchors::fromJson(const json& j) {
  Anchors a;
  a.method = j.value("method", std::string());
  if (j.contains("l1_top_mm")) a.l1_top_mm = j["l1_top_mm"].get<double>();
  a.used = j.value("used", std::string());
  if (j.contains("naming_input")) {
    NamingAnchors n;
    n.dense_bone_threshold_hu = j.at("dense_bone_threshold_hu").get<double>();
    n.noise_hu = j.at("noise_hu").get<double>();
    n.slices_averaged = j.at("slices_averaged").get<int>();
    n.slices_traced_radially = j.at("slices_traced_radially").get<long>();
    n.last_rib_bearing_index = j.at("last_rib_bearing_index").get<int>();
    n.first_rib_index = j.at("first_rib_index").get<int>();
    n.first_rib_in_view = j.at("first_rib_in_view").get<bool>();
    n.rib_pairs_counted = nullOr<int>(j, "rib_pairs_counted");
    n.rib_pairs_counted_from = nullOr<std::string>(j, "rib_pairs_counted_from");
    n.rib_components_left = j.at("rib_components").at("left").get<int>();
    n.rib_components_right = j.at("rib_components").at("right").get<int>();
    n.vertebrae_t1_to_sacrum = nullOr<int>(j, "vertebrae_t1_to_sacrum");
    n.sacrum_index = j.at("sacrum_index").get<int>();
    n.ribs_found = j.at("ribs_found").get<int>();
    n.sacrum_seen = j.at("sacrum_seen").get<bool>();
    n.naming_input = j.at("naming_input");
    n.note = j.value("note", std::string());
    n.rib_count_note = j.value("rib_count_note", std::string());
    a.naming = n;
  }
  a.metal_levels = j.value("metal_levels", std::vector<std::string>{});
  a.level_hint = j.value("level_hint", std::string());
  return a;
}

json LocalizeResult::toJson() const {
  json lv = json::object();
  for (const auto& l : levels) {
    json e = {{"label", l.label}, {"status", l.status}, {"confidence", l.confidence}};
    if (!l.flags.empty()) {
      e["flags"] = l.flags;
      e["note"] = l.note;
    }
    if (l.status != LevelStatus::Missing) {
      e["center_mm"] = l.center_mm;
      e["superior_mm"] = l.superior_mm;
      e["inferior_mm"] = l.inferior_mm;
      e["slice_range"] = l.slice_range;
      e["superior_plane"] = {{"point_mm", l.superior_point}, {"normal", l.superior_normal}};
      e["inferior_plane"] = {{"point_mm", l.inferior_point}, {"normal", l.inferior_normal}};
    }
    lv[l.name] = e;
  }
  json vj = json::array();
  for (const auto& v : vertebrae) vj.push_back(vertebraJson(v));
  json j = {{"method", method},
            {"status", status},
            {"reason", reason},
            {"column", column ? columnJson(*column) : json::object()},
            {"contrast", contrast ? contrast->toJson() : json::object()},
            {"levels", lv},
            {"anchors", anchors.toJson()},
            {"vertebrae", vj},
            {"centerline_mm", centerline},
            {"flags", flags},
            {"warnings", warnings}};
  if (!model.empty()) j["model"] = model;
  return j;
}

LocalizeResult LocalizeResult::fromJson(const json& j, const std::string& file) {
  LocalizeResult r;
  try {
    r.method = j.at("method").get<std::string>();
    r.status = parseSpineStatus(j.value("status", std::string("named")), file);
    r.reason = j.value("reason", std::string());
    if (j.contains("column") && !j["column"].empty()) r.column = columnFromJson(j["column"]);
    if (j.contains("contrast") && !j["contrast"].empty())
      r.contrast = ContrastPhase::fromJson(j["contrast"], file);
    for (int label : kReportedLevels) {
      LevelLocation l;
      l.label = label;
      l.name = levelName(label);
      const json& e = j.at("levels").at(l.name);
      l.status = parseLevelStatus(e.at("status").get<std::string>(), file);
      l.confidence = e.value("confidence", 0.0);
      l.flags = e.value("flags", std::vector<std::string>{});
      l.note = e.value("note", std::string());
      if (l.status != LevelStatus::Missing) {
        l.center_mm = e.at("center_mm").get<std::array<double, 3>>();
        l.superior_mm = e.at("superior_mm").get<double>();
        l.inferior_mm = e.at("inferior_mm").get<double>();
        l.slice_range = e.at("slice_range").get<std::array<int, 2>>();
        l.superior_point = e.at("superior_plane").at("point_mm").get<std::array<double, 3>>();
        l.superior_normal = e.at("superior_plane").at("normal").get<std::array<double, 3>>();
        l.inferior_point = e.at("inferior_plane").at("point_mm").get<std::array<double, 3>>();
        l.inferior_normal = e.at("inferior_plane").at("normal").get<std::array<double, 3>>();
      }
      r.levels.push_back(l);
    }
    r.anchors = Anchors::fromJson(j.value("anchors", json::object()));
    for (const auto& v : j.value("vertebrae", json::array())) r.vertebrae.push_back(vertebraFromJson(v));
    r.centerline = j.value("centerline_mm", std::vector<PointMm>{});
    r.model = j.value("model", json::array());
    r.flags = j.value("flags", std::vector<std::string>{});
    r.warnings = j.value("warnings", std::vector<std::string>{});
  } catch (const json::exception& e) {
    throw InputError("localize JSON " + quotedFile(file) + "is missing fields or has wrong types (" +
                     jsonProblem(e) +
                     "); was it written by ctbmd-localize? Run ctbmd-localize on the scan again");
  }
  return r;
}

const LevelLocation* LocalizeResult::find(int label) const {
  for (const auto& l : levels)
    if (l.label == label) return &l;
  return nullptr;
}

// ---- CT check ----------------------------------------------------------------------------------
void checkLooksLikeCt(const CtImage* img, const std::string& what) {
  const int16_t* p = img->GetBufferPointer();
  size_t n = img->GetLargestPossibleRegion().GetNumberOfPixels();
  size_t step = std::max<size_t>(1, n / 2000000);
  size_t cnt = 0, soft = 0, bone = 0, neg = 0;
  for (size_t i = 0; i < n; i += step) {
    int v = p[i];
    ++cnt;
    if (v < -20) ++neg;
    if (v >= -150 && v <= 100) ++soft;
    if (v >= 250 && v <= 3000) ++bone;
  }
  double f_neg = double(neg) / cnt, f_soft = double(soft) / cnt, f_bone = double(bone) / cnt;
  // A label map (a segmentation given as CT): every value a small non-negative integer, most
  // voxels 0, few distinct values. No CT has that: air alone is < -900 HU.
  {
    std::array<bool, 256> seen{};
    size_t zero = 0, distinct = 0;
    bool labels = true;
    for (size_t i = 0; i < n && labels; i += step) {
      const int v = p[i];
      if (v < 0 || v > 255)
        labels = false;
      else {
        zero += v == 0;
        if (!seen[static_cast<size_t>(v)]) seen[static_cast<size_t>(v)] = true, ++distinct;
      }
    }
    if (labels && distinct >= 2 && distinct <= 200 && zero * 2 > cnt)
      throw InputError("'" + what + "' looks like a label map (" + std::to_string(distinct) +
                       " distinct values, all small non-negative integers, most voxels 0), not a CT "
                       "in HU; pass the CT it belongs to (ctbmd-run skips *_seg*, *_mask*, *_label* "
                       "files by default)");
  }
  if (f_neg < 0.005)
    throw InputError("'" + what +
                     "' does not look like CT: almost no voxels below 0 HU (no air, lung or fat). "
                     "It may be MR, PET or an already-windowed image; ctbmd needs CT in HU.");
  if (f_soft < 0.05 || f_bone < 0.0005)
    throw InputError("'" + what +
                     "' does not look like CT in Hounsfield units: too little soft tissue (-150..100 "
                     "HU) or bone (>250 HU). Check that the values are HU (rescale slope/intercept).");
}

// ---- the classical localizer ---------------------------------------------------------------
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

// Metal (pedicle screws, rods, cages): voxels >= 2500 HU beside a level make its position,
// shape and HU unreliable. Flag it instead of letting it pass silently.
void flagMetalLevels(LocalizeResult& res, const CtImage* can) {
  auto vol = spine::view(can);
  {
    std::vector<std::string> metal_levels;
    for (const auto& l : res.levels) {
      if (l.status == LevelStatus::Missing) continue;
      CtImage::PointType pt;
      for (int a = 0; a < 3; ++a) pt[a] = l.center_mm[a];
      itk::ContinuousIndex<double, 3> ci;
      can->TransformPhysicalPointToContinuousIndex(pt, ci);
      const double r_mm = 45, half_z = 15;
      int k0 = std::max(0, static_cast<int>(std::floor(ci[2] - half_z / vol.sz)));
      int k1 = std::min(vol.nz - 1, static_cast<int>(std::ceil(ci[2] + half_z / vol.sz)));
      int i0 = std::max(0, static_cast<int>(ci[0] - r_mm / vol.sx)),
          i1 = std::min(vol.nx - 1, static_cast<int>(ci[0] + r_mm / vol.sx));
      int j0 = std::max(0, static_cast<int>(ci[1] - r_mm / vol.sy)),
          j1 = std::min(vol.ny - 1, static_cast<int>(ci[1] + r_mm / vol.sy));
      long n = 0;
      for (int k = k0; k <= k1; ++k)
        for (int j = j0; j <= j1; ++j)
          for (int i = i0; i <= i1; ++i) n += vol.at(i, j, k) >= 2500;
      if (n * vol.sx * vol.sy * vol.sz >= 20.0) metal_levels.push_back(l.name);
    }
    if (!metal_levels.empty()) {
      std::string names;
      for (const auto& m : metal_levels) names += (names.empty() ? "" : ", ") + m;
      res.flags.push_back("metal");
      res.anchors.metal_levels = metal_levels;
      res.warnings.push_back(
          "metal (>= 2500 HU) beside " + names +
          ": level positions, bodies and HU there are unreliable; those levels are not used for BMD");
    }
  }
}

std::pair<int, std::optional<double>> parseLevelHint(const std::string& hint) {
  const auto at = hint.find('@');
  const int label = levelLabel(hint.substr(0, at));
  if (label < 8 || label > kL5)
    throw UsageError("--level-hint " + hint + ": name a thoracic or lumbar vertebra (T1-T12, L1-L5)");
  if (at == std::string::npos) return {label, std::nullopt};
  try {
    size_t used = 0;
    double z = std::stod(hint.substr(at + 1), &used);
    if (used == hint.size() - at - 1 && std::isfinite(z)) return {label, z};
  } catch (const std::exception&) {
  }
  throw UsageError("--level-hint " + hint + ": expected NAME or NAME@Z (Z: world z in mm, e.g. L3@-56.5)");
}

namespace {

// Every reported level, missing (no column, or none named).
void reportAllMissing(LocalizeResult& res) {
  for (int label : kReportedLevels) {
    LevelLocation l;
    l.label = label;
    l.name = levelName(label);
    res.levels.push_back(l);
  }
}

// A candidate vertebra: a stretch of the centreline between two discs (or a scan end).
struct Seg {
  int a, b;            // curve indices (a inferior)
  int ea = 0, eb = 0;  // the body's own endplates (inside [a, b])
  bool disc_below, disc_above;
  double length;
  double row_width = 0;
  double ala_reach = 0;  // the shorter side of the widest bone row (mm from the body centre)
  bool ala_cut = false;  // that side cut by the field of view
  bool sacral = false, partial = false;
};

// Whether canonical (x, y) lies in (or within a pixel of) the body mask of `b`.
bool insideMask(const spine::Volume& v, const spine::SliceBody& b, double x, double y) {
  const int i = static_cast<int>(std::lround((x - v.ox) / v.sx)) - b.wx0;
  const int j = static_cast<int>(std::lround((y - v.oy) / v.sy)) - b.wy0;
  for (int dj = -1; dj <= 1; ++dj)
    for (int di = -1; di <= 1; ++di) {
      const int a = i + di, c = j + dj;
      if (a >= 0 && c >= 0 && a < b.wnx && c < b.wny && b.mask[static_cast<size_t>(c) * b.wnx + a])
        return true;
    }
  return false;
}

// The anatomy gate's evidence for each segment and its verdict (internal/column.hpp): per
// slice of the segment the canal behind the body found there (or behind the centreline),
// the best one kept; the midline offset at the segment's middle slice.
ColumnAssessment assessColumn(const spine::Volume& v, const std::vector<spine::CurvePoint>& curve,
                              const std::vector<spine::SliceBody>& sb, const std::vector<Seg>& segs,
                              const spine::SliceParams& sp) {
  const spine::ColumnParams cp;
  std::vector<spine::SegmentEvidence> ev(segs.size());
  parallelFor(static_cast<int>(segs.size()), [&](int t) {
    const Seg& g = segs[t];
    auto& e = ev[t];
    e.sacral = g.sacral;
    int slices = 0, in_marrow = 0, no_arch = 0;
    std::vector<std::array<double, 2>> closed;  // canal centres of the slices where it is closed
    const double z0 = std::min(curve[g.a].z, curve[g.b].z), z1 = std::max(curve[g.a].z, curve[g.b].z);
    for (int k = 0; k < v.nz; ++k) {
      if (v.z(k) < z0 || v.z(k) > z1) continue;
      int near = g.a;
      for (int q = g.a; q <= g.b; ++q)
        if (std::abs(curve[q].z - v.z(k)) < std::abs(curve[near].z - v.z(k))) near = q;
      const bool body = sb[k].valid && std::hypot(sb[k].cx - curve[near].x, sb[k].cy - curve[near].y) < 10;
      const double cx = body ? sb[k].cx : curve[near].x, cy = body ? sb[k].cy : curve[near].y;
      auto pr = spine::probeCanal(v, k, cx, cy, body ? sb[k].r_max : 12.0, cp);
      ++slices;
      // A canal has posterior elements behind it (laminae, spinous process); a hole with
      // muscle behind its wall is another bone's marrow or a joint space.
      if (pr.enclosure >= cp.min_enclosure && pr.posterior_bone_mm < cp.min_posterior_bone_mm) {
        ++no_arch;
        pr.enclosure = 0;
      }
      if (pr.enclosure >= cp.min_enclosure) {
        // The canal lies outside the body's filled outline; a hole inside it is the bone's
        // own marrow (a femur's medullary canal, the ilium's or a condyle's marrow).
        const auto bm = spine::analyseSlice(v, k, cx, cy, sp, true);
        if (!bm.valid || insideMask(v, bm, pr.x, pr.y)) {
          pr.enclosure = 0;
          ++in_marrow;
        } else {
          closed.push_back({pr.x, pr.y});
          e.posterior_bone_mm = std::max(e.posterior_bone_mm, pr.posterior_bone_mm);
        }
      }
      if (pr.enclosure > e.canal_enclosure) {
        e.canal_enclosure = pr.enclosure;
        e.canal_radius_mm = pr.radius_mm;
        e.canal_depth_mm = pr.depth_mm;
        e.canal_x = pr.x;
        e.canal_y = pr.y;
        e.canal_z = v.z(k);
      }
    }
    // Evidence for people: in how many slices the canal is closed at one place (a tube). The
    // verdict needs one such slice: requiring two lost real bodies at 3 mm (example_ct L1).
    int agree = 0;
    for (const auto& a : closed) {
      int n = 0;
      for (const auto& b : closed) n += std::hypot(a[0] - b[0], a[1] - b[1]) <= cp.canal_drift_mm;
      agree = std::max(agree, n);
    }
    e.canal_slices = agree;
    e.canal = !closed.empty();
    e.holes_in_marrow = in_marrow;
    e.holes_without_arch = no_arch;
    const auto& m = curve[(g.a + g.b) / 2];
    const int km = std::clamp(static_cast<int>(std::lround((m.z - v.oz) / v.sz)), 0, v.nz - 1);
    e.midline_offset = spine::midlineOffset(v, km, m.x, m.y, cp);
  });
  ColumnAssessment out;
  out.verdict = spine::judgeColumn(ev, cp);
  for (size_t t = segs.size(); t-- > 0;) {  // top to bottom, as "vertebrae"
    const auto& e = ev[t];
    out.segments.push_back(e);
    spdlog::debug(
        "column segment {}: canal {} ({:.2f} enclosed, radius {:.1f} mm, {:.1f} mm behind), midline {}",
        segs.size() - 1 - t, e.canal, e.canal_enclosure, e.canal_radius_mm, e.canal_depth_mm,
        e.midline_offset ? fmt::format("{:.2f}", *e.midline_offset) : std::string("cut"));
  }
  return out;
}

// Lung (< -500 HU) in the paravertebral gutters beside a segment's middle slice (mm^2):
// 25-100 mm either side of the body's centre, from 20 mm in front of it to 40 mm behind.
double lungBeside(const spine::Volume& vol, const spine::CurvePoint& m) {
  const int k = std::clamp(static_cast<int>(std::lround((m.z - vol.oz) / vol.sz)), 0, vol.nz - 1);
  long cnt = 0;
  for (int j = 0; j < vol.ny; ++j) {
    const double dy = vol.y(j) - m.y;
    if (dy < -20 || dy > 40) continue;
    for (int i = 0; i < vol.nx; ++i) {
      const double dx = std::abs(vol.x(i) - m.x);
      if (dx < 25 || dx > 100) continue;
      if (vol.at(i, j, k) < -500) ++cnt;
    }
  }
  return cnt * vol.sx * vol.sy;
}

// The naming step's input: the segment table (top to bottom) and the rib components.
naming::ColumnInput namingInput(const spine::Volume& vol, const std::vector<spine::CurvePoint>& curve,
                                const std::vector<Seg>& segs, const std::vector<spine::RibComponent>& ribs) {
  naming::ColumnInput in;
  for (const auto& g : segs) {
    const auto &a = curve[g.a], &b = curve[g.b], &m = curve[(g.a + g.b) / 2];
    naming::SegmentFacts f;
    f.z_lo_mm = std::min(a.z, b.z);
    f.z_hi_mm = std::max(a.z, b.z);
    // straight-line: a centreline wandering at the sacrum is longer
    f.chord_mm = std::hypot(b.x - a.x, b.y - a.y, b.z - a.z);
    f.partial = g.partial;
    f.sacral = g.sacral;
    f.room_left_mm = vol.x(vol.nx - 1) - m.x;  // +x: patient left
    f.room_right_mm = m.x - vol.x(0);
    f.lung_area_mm2 = lungBeside(vol, m);
    in.segments.push_back(f);
  }
  for (const auto& r : ribs) in.ribs.push_back({r.side, r.medial_z});
  in.scan_top_z_mm = vol.z(vol.nz - 1);
  return in;
}

// The segment --level-hint points at: with a z, the vertebra spanning it (partial or not);
// without, the complete vertebra nearest the scan's centre. z is physical (the user's).
naming::LevelHint hintedSegment(const spine::Volume& vol, const CtImage* can,
                                const std::vector<spine::CurvePoint>& curve, const std::vector<Seg>& segs,
                                const std::string& hint) {
  const auto [hlabel, hz] = parseLevelHint(hint);
  auto physZ = [&](double z) {
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = (vol.nx - 1) / 2.0;
    ci[1] = (vol.ny - 1) / 2.0;
    ci[2] = (z - vol.oz) / vol.sz;
    CtImage::PointType pt;
    can->TransformContinuousIndexToPhysicalPoint(ci, pt);
    return pt[2];
  };
  const int n = static_cast<int>(segs.size());
  const double target = hz ? *hz : physZ(vol.z((vol.nz - 1) / 2.0));
  int ih = -1;
  if (hz)
    for (int i = 0; i < n && ih < 0; ++i) {
      const double za = physZ(curve[segs[i].a].z), zb = physZ(curve[segs[i].b].z);
      if (target >= std::min(za, zb) && target <= std::max(za, zb)) ih = i;
    }
  double bestd = 1e18;
  for (int pass = hz ? 1 : 0; pass < 2 && ih < 0; ++pass)  // complete vertebrae first
    for (int i = 0; i < n; ++i) {
      if (pass == 0 && (segs[i].partial || segs[i].sacral)) continue;
      const double d = std::abs(physZ(curve[(segs[i].a + segs[i].b) / 2].z) - target);
      if (d < bestd) {
        bestd = d;
        ih = i;
      }
    }
  return {hint, hlabel, ih};
}

// localize.json's "anchors": what the naming rested on, and its input (for replaying it).
Anchors anchorsOf(const naming::NamingResult& r, const naming::ColumnInput& in, const spine::SliceParams& sp,
                  const std::vector<spine::SliceBody>& sb) {
  NamingAnchors n;
  n.dense_bone_threshold_hu = sp.trabecular_hu;
  n.noise_hu = sp.noise_hu;
  n.slices_averaged = 2 * sp.z_half + 1;
  n.slices_traced_radially =
      std::count_if(sb.begin(), sb.end(), [](const spine::SliceBody& b) { return b.valid && b.radial; });
  n.last_rib_bearing_index = r.last_rib_bearing;
  n.first_rib_index = r.first_rib;
  n.first_rib_in_view = r.first_rib_in_view;
  if (r.first_rib_in_view) {
    n.rib_pairs_counted = r.rib_pairs;
    n.rib_pairs_counted_from = r.rib_count_from;
  }
  n.rib_components_left = r.rib_components_left;
  n.rib_components_right = r.rib_components_right;
  if (r.t1_to_sacrum > 0) n.vertebrae_t1_to_sacrum = r.t1_to_sacrum;
  n.sacrum_index = r.sacrum;
  n.ribs_found = static_cast<int>(in.ribs.size());
  n.sacrum_seen = r.sacrum > 0;
  n.naming_input = in.toJson();
  n.note = r.note;
  n.rib_count_note = r.rib_count_note;
  Anchors a;
  a.used = r.used;
  a.naming = n;
  return a;
}

// Phase: the vertebral body in every slice, in two passes (the first seeds the second's
// search windows), stray slices dropped.
std::vector<spine::SliceBody> traceSlices(const spine::Volume& lv,
                                          const std::vector<spine::TrackPoint>& track,
                                          const spine::SliceParams& sp) {
  std::vector<spine::SliceBody> sb(lv.nz);
  // First pass on every ~3 mm only: it just seeds the windows of the full second pass.
  const int stride = std::max(1, static_cast<int>(std::lround(3.0 / lv.sz)));
  parallelFor((lv.nz + stride - 1) / stride, [&](int t) {
    int k = t * stride;
    sb[k] = spine::analyseSlice(lv, k, track[k].x, track[k].y, sp, false);
  });
  // Second pass centred on the smoothed body centres (the track sits behind the body).
  {
    std::vector<double> bx, by;
    std::vector<int> ks;
    for (int k = 0; k < lv.nz; ++k)
      if (sb[k].valid && std::abs(sb[k].cx - track[k].x) <= sp.max_lateral_mm) {
        ks.push_back(k);
        bx.push_back(sb[k].cx);
        by.push_back(sb[k].cy);
      }
    if (!ks.empty()) {
      int half = std::max(2 * stride, static_cast<int>(std::lround(15.0 / lv.sz)));
      parallelFor(lv.nz, [&](int k) {
        std::vector<double> wx, wy;
        for (size_t t = 0; t < ks.size(); ++t)
          if (std::abs(ks[t] - k) <= half) {
            wx.push_back(bx[t]);
            wy.push_back(by[t]);
          }
        if (wx.empty()) return;
        sb[k] = spine::analyseSlice(lv, k, median(wx), median(wy), sp, false);
      });
    }
  }

  if (int n = spine::dropStraySlices(lv, sb)) spdlog::debug("localize: {} stray slices dropped", n);
  if (spdlog::should_log(spdlog::level::trace))
    for (int k = 0; k < lv.nz; ++k)
      spdlog::trace(
          "slice {:4d} z {:7.1f} track ({:6.1f},{:6.1f}) valid {} r {:5.1f} c ({:6.1f},{:6.1f}) hw {:5.1f} "
          "row {:5.1f}",
          k, lv.z(k), track[k].x, track[k].y, sb[k].valid, sb[k].r_max, sb[k].cx, sb[k].cy, sb[k].half_width,
          sb[k].row_width);
  return sb;
}

// The bounds of the column's segments along the curve: its supported ends and the discs
// between them, with the endplate peaks beside each.
struct Bounds {
  std::vector<int> at;                      // curve indices, bottom to top
  std::vector<std::pair<int, int>> flanks;  // endplate peaks beside each bound
};

// Phase: discs to bounds; an end stretch far longer than its neighbour is split.
Bounds discBounds(const std::vector<spine::CurvePoint>& curve, const std::vector<double>& prof,
                  const std::vector<int>& discs, const std::vector<std::pair<int, int>>& flanks) {
  int first = 0, last = static_cast<int>(curve.size()) - 1;
  while (first < last && !curve[first].supported) ++first;
  while (last > first && !curve[last].supported) --last;
  Bounds out;
  auto& bounds = out.at;
  auto& bound_flanks = out.flanks;
  bounds.push_back(first);
  bound_flanks.push_back({first, first});
  for (size_t i = 0; i < discs.size(); ++i)
    if (discs[i] > first && discs[i] < last) {
      bounds.push_back(discs[i]);
      bound_flanks.push_back(flanks[i]);
    }
  bounds.push_back(last);
  bound_flanks.push_back({last, last});
  // An end stretch (the scan's first or last vertebra) far longer than its neighbour hides a
  // disc the profile lost (thin thoracic discs in 5 mm slices): split it about one neighbour's
  // length beyond the last disc, at the endplates. At 5 mm the two endplates of a thin disc blur
  // into one bright band with no trough, so the split goes to the centre of the brightness above
  // the stretch's marrow level in that window (between two peaks where a shallow trough remains,
  // on the peak where they merged); with no such band, to the darkest point.
  for (int end = 0; end < 2 && bounds.size() >= 3; ++end) {
    const size_t nb = bounds.size();
    const bool bottom = end == 0;
    const int outer = bottom ? bounds[0] : bounds[nb - 1], disc = bottom ? bounds[1] : bounds[nb - 2];
    const int next = bottom ? bounds[2] : bounds[nb - 3];
    const int len = std::abs(disc - outer), nlen = std::abs(next - disc);
    if (len < 45 || len < 1.6 * nlen) continue;
    const int dir = bottom ? -1 : 1;  // from the disc outwards
    std::vector<double> stretch;
    for (int q = std::min(disc, outer); q <= std::max(disc, outer); ++q) stretch.push_back(prof[q]);
    const double marrow = median(stretch);
    int best = -1;
    double wsum = 0, wq = 0, peak = 0;
    for (int d = static_cast<int>(0.7 * nlen); d <= static_cast<int>(1.3 * nlen); ++d) {
      const int q = disc + dir * d;
      if (std::abs(q - outer) < 8) break;
      if (best < 0 || prof[q] < prof[best]) best = q;
      const double w = std::max(0.0, prof[q] - marrow);
      wsum += w;
      wq += w * q;
      peak = std::max(peak, w);
    }
    if (best < 0) continue;
    // a band at least a quarter as bright above the marrow as the disc's own endplates
    double disc_peak = 0;
    for (int d = 1; d <= std::min(12, nlen / 2); ++d)
      disc_peak = std::max(disc_peak, prof[disc + dir * d] - marrow);
    if (wsum > 0 && peak >= std::max(10.0, 0.25 * disc_peak)) best = static_cast<int>(std::lround(wq / wsum));
    spdlog::debug("localize: end stretch of {} mm split at curve z {:.1f} (a disc the profile lost)", len,
                  curve[best].z);
    if (bottom) {
      bounds.insert(bounds.begin() + 1, best);
      bound_flanks.insert(bound_flanks.begin() + 1, {best - 4, best + 4});
    } else {
      bounds.insert(bounds.end() - 1, best);
      bound_flanks.insert(bound_flanks.end() - 1, {best - 4, best + 4});
    }
  }
  return out;
}

// Phase: one segment per pair of bounds (bottom to top): the body's endplates, whether it
// is whole, and its bone row (the sacral alae).
std::vector<Seg> describeSegments(const spine::Volume& vol, const std::vector<spine::CurvePoint>& curve,
                                  const std::vector<spine::SliceBody>& sb, const Bounds& b) {
  const double z_scan_lo = vol.z(0), z_scan_hi = vol.z(vol.nz - 1);
  std::vector<Seg> segs;  // bottom to top
  for (size_t i = 1; i < b.at.size(); ++i) {
    Seg g{b.at[i - 1], b.at[i], 0, 0, i > 1, i + 1 < b.at.size(), double(b.at[i] - b.at[i - 1])};
    if (g.length < 5) continue;
    // Endplates: a third of the way from the endplate peak to the disc centre (the peak is
    // the cortical plate blurred over a slice; the body's face lies a little beyond it).
    auto toward = [](int peak, int disc) {
      return peak + static_cast<int>(std::lround((disc - peak) / 3.0));
    };
    g.ea = g.disc_below ? std::clamp(toward(b.flanks[i - 1].second, g.a), g.a, g.b) : g.a;
    g.eb = g.disc_above ? std::clamp(toward(b.flanks[i].first, g.b), g.ea, g.b) : g.b;
    bool cut_lo = !g.disc_below && curve[g.a].z - z_scan_lo < 6;
    bool cut_hi = !g.disc_above && z_scan_hi - curve[g.b].z < 6;
    g.partial = !g.disc_below || !g.disc_above || cut_lo || cut_hi;
    // Sacral alae: the bone row through the body is far wider than any lumbar body.
    // Both alae: the row reaches well beyond a body's half-width on each side, unless the
    // field of view cuts that side.
    std::vector<double> widths, reach;
    int cut = 0, slices = 0;
    double zl = std::min(curve[g.a].z, curve[g.b].z), zh = std::max(curve[g.a].z, curve[g.b].z);
    for (int k = 0; k < vol.nz; ++k)
      if (vol.z(k) >= zl && vol.z(k) <= zh && sb[k].valid) {
        widths.push_back(sb[k].row_width);
        const bool left_short = sb[k].row_left_mm < sb[k].row_right_mm;
        reach.push_back(std::min(sb[k].row_left_mm, sb[k].row_right_mm));
        cut += left_short ? sb[k].row_cut_left : sb[k].row_cut_right;
        ++slices;
      }
    g.row_width = median(widths);
    g.ala_reach = median(reach);
    g.ala_cut = 2 * cut > slices;
    g.sacral = g.row_width > spine::kSacralRowMm && (g.ala_reach >= spine::kAlaReachMm || g.ala_cut);
    if (g.row_width > spine::kSacralRowMm && !g.sacral)
      spdlog::debug(
          "localize: a wide bone row ({:.0f} mm) reaching only {:.0f} mm to one side: one-sided, not "
          "the sacrum's alae",
          g.row_width, g.ala_reach);
    segs.push_back(g);
  }
  return segs;
}

// Phase: the outputs in physical coordinates: the centreline, every segment (vertebrae) and
// the reported levels with their centres, endplate planes and slice ranges.
void writeLocations(LocalizeResult& res, const spine::Volume& vol, const CtImage* can, const AxisMap& am,
                    const std::vector<spine::CurvePoint>& curve, const std::vector<Seg>& segs,
                    const std::vector<spine::SliceBody>& sb, const naming::NamingResult& named) {
  const int n = static_cast<int>(segs.size());
  const auto& label_of = named.labels;
  // Canonical "mm" (index x spacing + origin) becomes
  // physical through the canonical image's direction.
  auto phys = [&](double x, double y, double z) {
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = (x - vol.ox) / vol.sx;
    ci[1] = (y - vol.oy) / vol.sy;
    ci[2] = (z - vol.oz) / vol.sz;
    CtImage::PointType pt;
    can->TransformContinuousIndexToPhysicalPoint(ci, pt);
    return std::array<double, 3>{pt[0], pt[1], pt[2]};
  };
  auto physDir = [&](double x, double y, double z) {
    const auto& D = can->GetDirection();
    return std::array<double, 3>{D[0][0] * x + D[0][1] * y + D[0][2] * z,
                                 D[1][0] * x + D[1][1] * y + D[1][2] * z,
                                 D[2][0] * x + D[2][1] * y + D[2][2] * z};
  };
  auto origK = [&](int k) { return am.flip[2] ? static_cast<int>(am.orig_size[am.perm[2]]) - 1 - k : k; };
  res.centerline.clear();
  for (size_t i = 0; i < curve.size(); i += 2)
    if (curve[i].supported) res.centerline.push_back(phys(curve[i].x, curve[i].y, curve[i].z));
  for (int i = 0; i < n; ++i) {
    const Seg& g = segs[i];
    const auto& m = curve[(g.a + g.b) / 2];
    VertebraFound v;
    v.index = i;
    v.name = label_of[i] ? (label_of[i] == kSacrum ? "S1" : levelName(label_of[i])) : "";
    v.label = label_of[i];
    v.center_mm = phys(m.x, m.y, m.z);
    v.length_mm = g.length;
    v.partial = g.partial;
    v.ribs_left = named.ribs_left[i];
    v.ribs_right = named.ribs_right[i];
    v.row_width_mm = g.row_width;
    v.ala_reach_mm = g.ala_reach;
    v.sacral = g.sacral;
    res.vertebrae.push_back(v);
  }
  for (int label : kReportedLevels) {
    LevelLocation l;
    l.label = label;
    l.name = levelName(label);
    for (int i = 0; i < n; ++i) {
      if (label_of[i] != label) continue;
      const Seg& g = segs[i];
      const auto& lo = curve[g.ea];
      const auto& hi = curve[g.eb];
      const auto& m = curve[(g.a + g.b) / 2];
      l.status = g.partial ? LevelStatus::Partial : LevelStatus::Found;
      for (const auto& f : named.segment_flags[i]) {
        l.flags.push_back(f.flag);
        l.note += (l.note.empty() ? "" : "; ") + f.note;
      }
      l.center_mm = phys(m.x, m.y, m.z);
      // Centre of the body itself: area-weighted mean of the per-slice body centres over the
      // middle 60 % of the level's height (more exact than the smoothed centreline). A slice
      // whose body lies over 6 mm from the centreline there was traced wrong (half a body in a
      // noisy 5 mm slice, where the middle 60 % holds two or three slices): it is left out.
      {
        double za = std::min(lo.z, hi.z), zb = std::max(lo.z, hi.z), dz = zb - za;
        double sw = 0, sx = 0, sy = 0, szz = 0;
        for (int k = 0; k < vol.nz; ++k) {
          double z = vol.z(k);
          if (!sb[k].valid || z < za + 0.2 * dz || z > zb - 0.2 * dz) continue;
          int near = g.a;
          for (int q = g.a; q <= g.b; ++q)
            if (std::abs(curve[q].z - z) < std::abs(curve[near].z - z)) near = q;
          if (std::hypot(sb[k].cx - curve[near].x, sb[k].cy - curve[near].y) > 6.0) continue;
          sw += sb[k].area;
          sx += sb[k].area * sb[k].cx;
          sy += sb[k].area * sb[k].cy;
          szz += sb[k].area * z;
        }
        if (sw > 0) l.center_mm = phys(sx / sw, sy / sw, szz / sw);
      }
      // Both endplates are perpendicular to the body's own axis (the curve's direction over
      // its middle half), not to the curve at the disc, which bends between two bodies.
      const auto& qa = curve[g.a + (g.b - g.a) / 4];
      const auto& qb = curve[g.b - (g.b - g.a) / 4];
      // Sagittal component only: the lumbar column bends in the sagittal plane (lordosis);
      // a left-right tilt here comes from centreline noise at the ends, not anatomy.
      double ax = 0, ay = qb.y - qa.y, az = qb.z - qa.z;
      double an = std::sqrt(ax * ax + ay * ay + az * az);
      if (an < 1e-6) {
        ax = 0;
        ay = m.ty;
        az = m.tz;
        an = 1;
      }
      l.inferior_point = phys(lo.x, lo.y, lo.z);
      l.inferior_normal = physDir(ax / an, ay / an, az / an);
      l.superior_point = phys(hi.x, hi.y, hi.z);
      l.superior_normal = l.inferior_normal;
      // axial extent of a ~25 mm body between tilted planes
      double zlo = lo.z - 25 * std::sqrt(std::max(0.0, 1 - lo.tz * lo.tz));
      double zhi = hi.z + 25 * std::sqrt(std::max(0.0, 1 - hi.tz * hi.tz));
      l.inferior_mm = phys(lo.x, lo.y, zlo)[2];
      l.superior_mm = phys(hi.x, hi.y, zhi)[2];
      int ka = std::clamp(static_cast<int>(std::floor((zlo - vol.oz) / vol.sz)), 0, vol.nz - 1);
      int kb = std::clamp(static_cast<int>(std::ceil((zhi - vol.oz) / vol.sz)), 0, vol.nz - 1);
      int a = origK(ka), b = origK(kb);
      l.slice_range = {std::min(a, b), std::max(a, b)};
      l.confidence = named.confidence * (g.partial ? 0.7 : 1.0);
    }
    res.levels.push_back(l);
  }
}

}  // namespace

LocalizeResult localize(const Scan& scan, const LocalizeParams& p) {
  if (!p.level_hint.empty()) {
    parseLevelHint(p.level_hint);  // refuse a malformed hint before any work
    if (p.method != "classical")
      throw UsageError("--level-hint is for the classical localizer (the learned one names levels itself)");
  }
  const auto method = methods::parseLocalize(p.method);
  if (!method)
    throw UsageError("localize method '" + p.method +
                     "' is unknown (methods: " + methods::listed(methods::names(methods::Localize{})) + ")");
  if (*method == methods::Localize::MipLocalizer) return localizeLearned(scan, p);
  checkLooksLikeCt(scan.image.GetPointer(), scan.info.path.string());
  LocalizeResult res;
  res.method = "classical-v1";
  auto t0 = std::chrono::steady_clock::now();
  auto lap = [&t0](const char* what) {
    auto now = std::chrono::steady_clock::now();
    spdlog::debug("localize: {} {:.3f} s", what, std::chrono::duration<double>(now - t0).count());
    t0 = now;
  };
  const auto& cc = canonicalOf(scan);
  const AxisMap& am = cc.map;
  const auto& can = cc.image;
  auto vol = spine::view(can.GetPointer());
  lap("canonical copy");
  // Finding and counting the bodies needs centres and extents, not sub-millimetre edges:
  // fine pixels (the usual 512x512 grid, 0.6-0.8 mm) are averaged in 2x2 blocks first, which
  // makes the slice-by-slice analysis about seven times cheaper. Ribs (thin) and metal are
  // looked for on the full grid, and segment traces the bodies on it.
  std::vector<int16_t> binned;
  const auto lv = spine::binInPlane(vol, kLocalizePixelMm, binned);
  lap("in-plane binning");
  auto track = spine::trackSpine(lv);
  lap("track");

  const spine::SliceParams sp = spine::sliceParamsFor(lv);
  const auto sb = traceSlices(lv, track, sp);
  lap("slices (two passes)");
  // Discs along the curved centreline: narrow dark gaps between bright endplates, seen in
  // planes perpendicular to the spine (so tilted lumbosacral discs stay sharp).
  auto curve = spine::centreline(lv, sb);
  if (curve.size() < 20) {
    res.status = SpineStatus::NoSpine;
    res.reason = "no chain of vertebral bodies was found: the scan may not include the spine";
    res.warnings.push_back(res.reason);
    reportAllMissing(res);
    res.anchors.used = "none";
    return res;
  }
  auto prof = spine::coreProfile(lv, curve);
  std::vector<double> trough_width;
  std::vector<std::pair<int, int>> flanks;
  auto discs = spine::findDiscs(prof, curve, &trough_width, &flanks);
  const auto column_bounds = discBounds(curve, prof, discs, flanks);
  if (spdlog::should_log(spdlog::level::trace))
    for (size_t i = 0; i < curve.size(); ++i)
      spdlog::trace("curve s {:5.0f} z {:7.1f} ({:6.1f},{:6.1f}) sup {} core {:6.1f} trough {:5.1f}{}",
                    curve[i].s, curve[i].z, curve[i].x, curve[i].y, curve[i].supported, prof[i],
                    trough_width[i],
                    std::find(discs.begin(), discs.end(), static_cast<int>(i)) != discs.end() ? " DISC" : "");
  auto segs = describeSegments(vol, curve, sb, column_bounds);
  lap("curve, discs, segments");
  // The anatomy gate: a chain of bodies each in front of a spinal canal, on the midline.
  {
    res.column = assessColumn(lv, curve, sb, segs, sp);
    const auto& verdict = res.column->verdict;
    if (!verdict.seen) {
      res.status = SpineStatus::NoSpine;
      res.reason = verdict.reason;
      res.warnings.push_back("no vertebral column in view: " + verdict.reason + "; no level is named");
      reportAllMissing(res);
      res.anchors.used = "none";
      return res;
    }
  }
  lap("anatomy gate");
  // Ribs: bone components leaving the column sideways, found on the full grid (thin).
  auto ribs = spine::findRibs(vol, curve);
  lap("ribs");
  for (const auto& r : ribs)
    spdlog::debug("rib {} medial z {:6.1f} at {:4.1f} mm, reach {:5.1f} mm, z extent {:5.1f} mm, {:5.1f} cm3",
                  r.side > 0 ? "L" : "R", r.medial_z, r.medial_dist, r.lateral_reach, r.z_extent,
                  r.volume_cm3);
  std::reverse(segs.begin(), segs.end());  // top to bottom from here on
  // Naming: a pure function of the segment table (internal/naming.hpp).
  auto input = namingInput(vol, curve, segs, ribs);
  if (!p.level_hint.empty() && !segs.empty())
    input.hint = hintedSegment(vol, can.GetPointer(), curve, segs, p.level_hint);
  const auto named = naming::nameColumn(input);
  res.status = named.status;
  res.reason = named.reason;
  res.flags.insert(res.flags.end(), named.flags.begin(), named.flags.end());
  res.warnings.insert(res.warnings.end(), named.warnings.begin(), named.warnings.end());
  res.anchors = anchorsOf(named, input, sp, sb);
  res.anchors.level_hint = p.level_hint;

  writeLocations(res, vol, can.GetPointer(), am, curve, segs, sb, named);
  lap("naming, locations");
  flagMetalLevels(res, can.GetPointer());
  for (const auto& l : res.levels)
    spdlog::debug("localize {}: {} conf {:.2f} at ({:.1f}, {:.1f}, {:.1f})", l.name, toString(l.status),
                  l.confidence, l.center_mm[0], l.center_mm[1], l.center_mm[2]);
  return res;
}

}  // namespace ctbmd
