// localize, weight-free default ("classical"): track the spinal column, find vertebral
// bodies slice by slice (cortical ring filled, posterior elements opened away), split the
// column at the intervertebral discs, and name the bodies from anatomical anchors: the last
// rib-bearing vertebra is T12, the vertebra resting on the sacrum is L5.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"
#include "internal/spine.hpp"

namespace ctbmd {

using nlohmann::json;

// ---- JSON -----------------------------------------------------------------------------------
json LocalizeResult::toJson() const {
  json lv = json::object();
  for (const auto& l : levels) {
    json e = {{"label", l.label}, {"status", l.status}, {"confidence", l.confidence}};
    if (l.status != "missing") {
      e["center_mm"] = l.center_mm;
      e["superior_mm"] = l.superior_mm;
      e["inferior_mm"] = l.inferior_mm;
      e["slice_range"] = l.slice_range;
    }
    lv[l.name] = e;
  }
  return {{"method", method}, {"levels", lv},       {"anchors", anchors},
          {"vertebrae", vertebrae}, {"flags", flags}, {"warnings", warnings}};
}

LocalizeResult LocalizeResult::fromJson(const json& j) {
  LocalizeResult r;
  try {
    r.method = j.at("method").get<std::string>();
    for (int label : kReportedLevels) {
      LevelLocation l;
      l.label = label;
      l.name = levelName(label);
      const json& e = j.at("levels").at(l.name);
      l.status = e.at("status").get<std::string>();
      l.confidence = e.value("confidence", 0.0);
      if (l.status != "missing") {
        l.center_mm = e.at("center_mm").get<std::array<double, 3>>();
        l.superior_mm = e.at("superior_mm").get<double>();
        l.inferior_mm = e.at("inferior_mm").get<double>();
        l.slice_range = e.at("slice_range").get<std::array<int, 2>>();
      }
      r.levels.push_back(l);
    }
    r.anchors = j.value("anchors", json::object());
    r.vertebrae = j.value("vertebrae", json::array());
    r.flags = j.value("flags", std::vector<std::string>{});
    r.warnings = j.value("warnings", std::vector<std::string>{});
  } catch (const json::exception& e) {
    throw InputError(std::string("localize JSON is missing fields (") + e.what() +
                     "); was it written by ctbmd-localize?");
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
  size_t cnt = 0, below_fat = 0, soft = 0, bone = 0, neg = 0;
  for (size_t i = 0; i < n; i += step) {
    int v = p[i];
    ++cnt;
    if (v < -200) ++below_fat;
    if (v < -20) ++neg;
    if (v >= -150 && v <= 100) ++soft;
    if (v >= 250 && v <= 3000) ++bone;
  }
  double f_neg = double(neg) / cnt, f_soft = double(soft) / cnt, f_bone = double(bone) / cnt;
  if (f_neg < 0.005)
    throw InputError("'" + what +
                     "' does not look like CT: almost no voxels below 0 HU (no air, lung or fat). "
                     "It may be MR, PET or an already-windowed image; ctbmd needs CT in HU.");
  if (f_soft < 0.05 || f_bone < 0.0005)
    throw InputError("'" + what +
                     "' does not look like CT in Hounsfield units: too little soft tissue (-150..100 "
                     "HU) or bone (>250 HU). Check that the values are HU (rescale slope/intercept).");
  (void)below_fat;
}

// ---- the classical localizer ---------------------------------------------------------------
namespace {

struct Run {
  int k0 = 0, k1 = 0;  // inclusive canonical slice range
  double cx = 0, cy = 0, half_width = 0;
  double lateral = 0, rib_frac = 0, rmed = 0;
  bool sacral = false, ribs = false, edge_lo = false, edge_hi = false;
  std::string name;
  int label = 0;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

LocalizeResult localize(const Scan& scan, const LocalizeParams& p) {
  if (p.method != "classical")
    throw UsageError("localize method '" + p.method +
                     "' is not available in this build (methods: classical)");
  checkLooksLikeCt(scan.image.GetPointer(), scan.info.path.string());
  LocalizeResult res;
  res.method = "classical-v1";
  AxisMap am = canonicalAxisMap(scan.image.GetPointer());
  auto can = toCanonical<int16_t>(scan.image.GetPointer(), am);
  auto vol = spine::view(can.GetPointer());
  auto track = spine::trackSpine(vol);

  spine::SliceParams sp;
  std::vector<spine::SliceBody> sb(vol.nz);
  for (int k = 0; k < vol.nz; ++k) sb[k] = spine::analyseSlice(vol, k, track[k].x, track[k].y, sp, false);
  // Second pass centred on the smoothed body centres (the track sits behind the body).
  {
    std::vector<double> bx, by;
    std::vector<int> ks;
    for (int k = 0; k < vol.nz; ++k)
      if (sb[k].valid) {
        ks.push_back(k);
        bx.push_back(sb[k].cx);
        by.push_back(sb[k].cy);
      }
    if (!ks.empty()) {
      int half = std::max(2, static_cast<int>(std::lround(15.0 / vol.sz)));
      for (int k = 0; k < vol.nz; ++k) {
        std::vector<double> wx, wy;
        for (size_t t = 0; t < ks.size(); ++t)
          if (std::abs(ks[t] - k) <= half) {
            wx.push_back(bx[t]);
            wy.push_back(by[t]);
          }
        if (wx.empty()) continue;
        sb[k] = spine::analyseSlice(vol, k, median(wx), median(wy), sp, false);
      }
    }
  }

  if (spdlog::should_log(spdlog::level::trace))
    for (int k = 0; k < vol.nz; ++k)
      spdlog::trace("slice {:4d} z {:7.1f} track ({:6.1f},{:6.1f}) valid {} r {:5.1f} c ({:6.1f},{:6.1f}) hw {:5.1f} "
                    "lat {:6.0f} ribs {:4.0f}/{:4.0f}",
                    k, vol.z(k), track[k].x, track[k].y, sb[k].valid, sb[k].r_max, sb[k].cx, sb[k].cy,
                    sb[k].half_width, sb[k].lateral_area, sb[k].rib_left, sb[k].rib_right);
  // Runs of body slices, split at the discs.
  std::vector<double> radii;
  for (const auto& s : sb)
    if (s.valid) radii.push_back(s.r_max);
  if (radii.size() < 3) {
    res.warnings.push_back("no vertebral bodies found: the scan may not include the spine");
    for (int label : kReportedLevels) res.levels.push_back({label, levelName(label)});
    res.anchors = {{"used", "none"}};
    return res;
  }
  double r_thr = 0.55 * median(radii);
  std::vector<uint8_t> on(vol.nz);
  for (int k = 0; k < vol.nz; ++k) on[k] = sb[k].valid && sb[k].r_max >= r_thr;
  std::vector<Run> runs;
  for (int k = 0; k < vol.nz;) {
    if (!on[k]) {
      ++k;
      continue;
    }
    int k1 = k;
    while (k1 + 1 < vol.nz && on[k1 + 1]) ++k1;
    Run run;
    run.k0 = k;
    run.k1 = k1;
    runs.push_back(run);
    k = k1 + 1;
  }
  // Bridge dropouts shorter than 2.5 mm; drop slivers (< 6 mm) away from the scan's edges.
  std::vector<Run> merged;
  for (const auto& r : runs) {
    if (!merged.empty() && (r.k0 - merged.back().k1 - 1) * vol.sz < 2.5) merged.back().k1 = r.k1;
    else merged.push_back(r);
  }
  runs.clear();
  for (auto& r : merged) {
    r.edge_lo = r.k0 == 0;
    r.edge_hi = r.k1 == vol.nz - 1;
    double h = (r.k1 - r.k0 + 1) * vol.sz;
    if (h < 6 && !r.edge_lo && !r.edge_hi) continue;
    runs.push_back(r);
  }
  // Split runs much longer than a vertebra at their deepest radius dip (disc missed by
  // partial volume at thick slices). The lowest runs may be the sacrum: leave those whole.
  {
    std::vector<double> hs;
    for (const auto& r : runs)
      if (!r.edge_lo && !r.edge_hi) hs.push_back((r.k1 - r.k0 + 1) * vol.sz);
    double typical = hs.empty() ? 26.0 : std::clamp(median(hs), 18.0, 34.0);
    std::vector<Run> split;
    for (const auto& r : runs) {
      double h = (r.k1 - r.k0 + 1) * vol.sz;
      if (h > 1.7 * typical && h < 3.2 * typical) {
        int best = -1;
        double bestv = 1e9;
        for (int k = r.k0 + static_cast<int>(0.6 * typical / vol.sz);
             k <= r.k1 - static_cast<int>(0.6 * typical / vol.sz); ++k)
          if (sb[k].r_max < bestv) {
            bestv = sb[k].r_max;
            best = k;
          }
        if (best > r.k0 && best < r.k1) {
          Run a = r, b = r;
          a.k1 = best - 1;
          b.k0 = best + 1;
          a.edge_hi = false;
          b.edge_lo = false;
          split.push_back(a);
          split.push_back(b);
          continue;
        }
      }
      split.push_back(r);
    }
    runs = split;
  }
  // Canonical k grows superior; order runs top to bottom.
  std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.k0 > b.k0; });
  for (auto& r : runs) {
    std::vector<double> xs, ys, hw, lat;
    int rib_slices = 0, n = 0;
    for (int k = r.k0; k <= r.k1; ++k) {
      if (!sb[k].valid) continue;
      xs.push_back(sb[k].cx);
      ys.push_back(sb[k].cy);
      hw.push_back(sb[k].half_width);
      lat.push_back(sb[k].lateral_area);
      ++n;
    }
    r.cx = median(xs);
    r.cy = median(ys);
    r.half_width = median(hw);
    r.lateral = median(lat);
    // Ribs: look through the body's height and half a body above it (rib heads sit high).
    int up = static_cast<int>(0.4 * (r.k1 - r.k0 + 1));
    int tot = 0;
    for (int k = r.k0; k <= std::min(vol.nz - 1, r.k1 + up); ++k) {
      auto s = spine::analyseSlice(vol, k, r.cx, r.cy, sp, false);
      ++tot;
      auto ok = [](double a) { return a >= 8 && a <= 300; };
      if (ok(s.rib_left) && ok(s.rib_right)) ++rib_slices;
    }
    r.rib_frac = tot ? double(rib_slices) / tot : 0;
    r.ribs = r.rib_frac >= 0.2;
    double h = (r.k1 - r.k0 + 1) * vol.sz;
    // Sacrum: the body merges with the alae, so the bone is much wider than any lumbar body.
    r.sacral = r.lateral > 450 || r.half_width > 38 || (h > 45 && !r.edge_lo && r.lateral > 150);
    (void)n;
  }
  // Anchors.
  int n = static_cast<int>(runs.size());
  int sac = -1;  // index of the first sacral run (top to bottom), must be below a vertebra
  for (int i = 1; i < n; ++i)
    if (runs[i].sacral) {
      bool rest = true;
      for (int j = i; j < n; ++j) rest = rest && (runs[j].sacral || j > i);
      if (rest) {
        sac = i;
        break;
      }
    }
  int t12 = -1;
  if (n > 0 && runs[0].ribs) {
    int t = 0;
    while (t + 1 < n && runs[t + 1].ribs && (sac < 0 || t + 1 < sac)) ++t;
    bool below_exists = t + 1 < n && (sac < 0 || t + 1 < sac);
    if (below_exists) t12 = t;
  }
  std::vector<int> label_of(n, 0);
  std::string used;
  double conf = 0.9;
  if (sac > 0) {
    for (int i = sac - 1, lbl = kL5; i >= 0; --i, --lbl) label_of[i] = lbl;
    for (int i = sac; i < n; ++i) label_of[i] = kSacrum;
    used = "sacrum";
    if (t12 >= 0) {
      int lumbar = sac - 1 - t12;
      if (lumbar == 5) used = "sacrum+ribs";
      else {
        res.flags.push_back("anchors_disagree");
        std::string m = "the last rib-bearing vertebra and the vertebra on the sacrum are " +
                        std::to_string(lumbar) +
                        " levels apart, not 6: a transitional vertebra or an unusual rib count "
                        "(e.g. 13 rib pairs, six lumbar vertebrae). Labels count up from the "
                        "sacrum; check them.";
        res.warnings.push_back(m);
        conf = 0.5;
      }
    } else {
      conf = 0.75;
    }
  } else if (t12 >= 0) {
    for (int i = t12, lbl = kT12; i < n; ++i, ++lbl) label_of[i] = lbl <= kL6 ? lbl : 0;
    for (int i = t12 - 1, lbl = kT12 - 1; i >= 0; --i, --lbl) label_of[i] = lbl >= 8 ? lbl : 0;
    used = "ribs";
    conf = 0.75;
  } else {
    used = "none";
    res.warnings.push_back(
        "neither anchor is visible (no last rib-bearing vertebra with a vertebra below it, no "
        "sacrum): vertebrae were found but cannot be named, so all levels are reported missing");
  }
  if (sac > 0)
    for (int i = sac - 1, lbl = kL5; i >= 0; --i, --lbl) label_of[i] = lbl >= 8 ? lbl : 0;
  res.anchors = {{"used", used},
                 {"last_rib_bearing_index", t12},
                 {"sacrum_index", sac},
                 {"ribs_seen", std::any_of(runs.begin(), runs.end(), [](const Run& r) { return r.ribs; })},
                 {"sacrum_seen", sac > 0}};
  if (used == "sacrum") res.anchors["note"] = "labels rest on the sacrum (no rib anchor visible)";
  if (used == "ribs") res.anchors["note"] = "labels rest on the last rib pair (sacrum not visible)";

  // Per-level output in physical coordinates.
  auto phys = [&](double cx, double cy, double k) {
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = (cx - vol.ox) / vol.sx;
    ci[1] = (cy - vol.oy) / vol.sy;
    ci[2] = k;
    CtImage::PointType pt;
    can->TransformContinuousIndexToPhysicalPoint(ci, pt);
    return std::array<double, 3>{pt[0], pt[1], pt[2]};
  };
  auto origK = [&](int k) { return am.flip[2] ? static_cast<int>(am.orig_size[am.perm[2]]) - 1 - k : k; };
  for (int i = 0; i < n; ++i) {
    const Run& r = runs[i];
    auto c = phys(r.cx, r.cy, 0.5 * (r.k0 + r.k1));
    json v = {{"index", i},
              {"name", label_of[i] ? (label_of[i] == kSacrum ? "S1" : levelName(label_of[i])) : ""},
              {"label", label_of[i]},
              {"center_mm", c},
              {"height_mm", (r.k1 - r.k0 + 1) * vol.sz},
              {"ribs", r.ribs},
              {"rib_fraction", r.rib_frac},
              {"sacral", r.sacral},
              {"lateral_bone_mm2", r.lateral},
              {"touches_scan_edge", r.edge_lo || r.edge_hi}};
    res.vertebrae.push_back(v);
  }
  for (int label : kReportedLevels) {
    LevelLocation l;
    l.label = label;
    l.name = levelName(label);
    for (int i = 0; i < n; ++i) {
      if (label_of[i] != label) continue;
      const Run& r = runs[i];
      l.status = (r.edge_lo || r.edge_hi) ? "partial" : "found";
      l.center_mm = phys(r.cx, r.cy, 0.5 * (r.k0 + r.k1));
      l.superior_mm = phys(r.cx, r.cy, r.k1 + 0.5)[2];
      l.inferior_mm = phys(r.cx, r.cy, r.k0 - 0.5)[2];
      int a = origK(r.k0), b = origK(r.k1);
      l.slice_range = {std::min(a, b), std::max(a, b)};
      l.confidence = conf * (l.status == "partial" ? 0.7 : 1.0);
    }
    res.levels.push_back(l);
  }
  for (const auto& l : res.levels)
    spdlog::debug("localize {}: {} conf {:.2f} at ({:.1f}, {:.1f}, {:.1f})", l.name, l.status, l.confidence,
                  l.center_mm[0], l.center_mm[1], l.center_mm[2]);
  return res;
}

}  // namespace ctbmd
