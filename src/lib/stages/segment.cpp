// segment, weight-free default ("classical"): for every level localize found, the body
// is traced slice by slice with the same finder localize uses (filled cortical ring,
// posterior elements opened away and cut at the spinal canal), inside that level's
// vertebral slab only.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"
#include "internal/raster2d.hpp"
#include "internal/spine.hpp"
#include "segment_learned.hpp"

namespace ctbmd {

using nlohmann::json;

json SegmentResult::toJson() const {
  json lv = json::object();
  for (const auto& l : levels) {
    json e = {{"label", l.label}, {"status", l.status}, {"voxels", l.voxels}, {"volume_mm3", l.volume_mm3}};
    if (l.voxels > 0) {
      e["height_anterior_mm"] = l.height_anterior_mm;
      e["height_middle_mm"] = l.height_middle_mm;
      e["height_posterior_mm"] = l.height_posterior_mm;
    }
    e["suspected_fracture"] = l.suspected_fracture;
    if (l.suspected_fracture) e["fracture_reason"] = l.fracture_reason;
    if (l.repaired_slices) e["repaired_slices"] = l.repaired_slices;
    if (l.metal) e["metal"] = true;
    lv[l.name] = e;
  }
  json j = {{"method", method},
          {"levels", lv},
          {"warnings", warnings},
          {"label_convention", "VerSe: T12=19, L1=20, L2=21, L3=22, L4=23, L5=24; bodies only"}};
  if (!model.empty()) j["model"] = model;
  return j;
}

SegmentResult SegmentResult::fromJson(const json& j, LabelImage::Pointer labels) {
  SegmentResult r;
  r.labels = labels;
  try {
    r.method = j.at("method").get<std::string>();
    if (j.contains("model")) r.model = j["model"];
    for (int label : kReportedLevels) {
      LevelSegmentation l;
      l.label = label;
      l.name = levelName(label);
      const json& e = j.at("levels").at(l.name);
      l.status = e.at("status").get<std::string>();
      l.voxels = e.at("voxels").get<long>();
      l.volume_mm3 = e.at("volume_mm3").get<double>();
      l.height_anterior_mm = e.value("height_anterior_mm", 0.0);
      l.height_middle_mm = e.value("height_middle_mm", 0.0);
      l.height_posterior_mm = e.value("height_posterior_mm", 0.0);
      l.suspected_fracture = e.value("suspected_fracture", false);
      l.fracture_reason = e.value("fracture_reason", "");
      l.repaired_slices = e.value("repaired_slices", 0);
      l.metal = e.value("metal", false);
      r.levels.push_back(l);
    }
    r.warnings = j.value("warnings", std::vector<std::string>{});
  } catch (const json::exception& e) {
    throw InputError(std::string("segmentation JSON is missing fields (") + e.what() +
                     "); was it written by ctbmd-segment?");
  }
  return r;
}

const LevelSegmentation* SegmentResult::find(int label) const {
  for (const auto& l : levels)
    if (l.label == label) return &l;
  return nullptr;
}

void measureBodies(const LabelImage* labels, std::vector<LevelSegmentation>& levels) {
  AxisMap am = canonicalAxisMap(labels);
  auto can = toCanonical<uint8_t>(labels, am);
  auto sz = can->GetLargestPossibleRegion().GetSize();
  const int nx = static_cast<int>(sz[0]), ny = static_cast<int>(sz[1]), nz = static_cast<int>(sz[2]);
  const double sx = can->GetSpacing()[0], sy = can->GetSpacing()[1], szz = can->GetSpacing()[2];
  const uint8_t* p = can->GetBufferPointer();
  // One pass for counts, centres and extents of every label; heights on the columns.
  struct Acc {
    long n = 0;
    double mx = 0;
    int ymin = 1 << 30, ymax = -1;
  };
  std::array<Acc, 256> acc{};
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j) {
      const uint8_t* row = p + (static_cast<size_t>(k) * ny + j) * nx;
      for (int i = 0; i < nx; ++i) {
        if (!row[i]) continue;
        Acc& a = acc[row[i]];
        ++a.n;
        a.mx += i;
        a.ymin = std::min(a.ymin, j);
        a.ymax = std::max(a.ymax, j);
      }
    }
  for (auto& l : levels) {
    const Acc& a = acc[l.label & 0xff];
    long n = a.n;
    int ymin = a.ymin, ymax = a.ymax;
    l.voxels = n;
    l.volume_mm3 = n * sx * sy * szz;
    l.height_anterior_mm = l.height_middle_mm = l.height_posterior_mm = 0;
    if (n == 0) continue;
    int ic = static_cast<int>(std::lround(a.mx / n));
    int half = std::max(1, static_cast<int>(std::lround(2.0 / sx)));
    auto heightAt = [&](double frac) {
      int j = ymin + static_cast<int>(std::lround(frac * (ymax - ymin)));
      int best = 0;
      for (int i = std::max(0, ic - half); i <= std::min(nx - 1, ic + half); ++i) {
        int cnt = 0;
        for (int k = 0; k < nz; ++k)
          if (p[(static_cast<size_t>(k) * ny + j) * nx + i] == l.label) ++cnt;
        best = std::max(best, cnt);
      }
      return best * szz;
    };
    l.height_anterior_mm = heightAt(0.15);
    l.height_middle_mm = heightAt(0.5);
    l.height_posterior_mm = heightAt(0.85);
  }
}

void flagFractures(std::vector<LevelSegmentation>& levels, double ratio) {
  auto meanH = [](const LevelSegmentation& l) {
    return (l.height_anterior_mm + l.height_middle_mm + l.height_posterior_mm) / 3.0;
  };
  for (size_t i = 0; i < levels.size(); ++i) {
    auto& l = levels[i];
    if (l.status != "found" || l.voxels == 0) continue;
    double post = l.height_posterior_mm;
    double ant = l.height_anterior_mm, mid = l.height_middle_mm;
    std::vector<double> nb;
    for (size_t j : {i - 1, i + 1})
      if (j < levels.size() && levels[j].status == "found" && levels[j].voxels > 0)
        nb.push_back(meanH(levels[j]));
    if (post > 0 && std::min(ant, mid) < ratio * post) {
      l.suspected_fracture = true;
      l.fracture_reason = "anterior or middle height is below " + std::to_string(int(ratio * 100)) +
                          "% of the posterior height (wedge or biconcave deformity)";
    } else if (!nb.empty()) {
      double ref = 0;
      for (double h : nb) ref += h;
      ref /= nb.size();
      if (meanH(l) < ratio * ref) {
        l.suspected_fracture = true;
        l.fracture_reason = "body height is below " + std::to_string(int(ratio * 100)) +
                            "% of its neighbours' (crush deformity)";
      }
    }
  }
}

namespace {
// 3-D consistency of one level's slice masks: a body's cross-section changes slowly, so a
// slice whose area jumps above 1.4x the level's median (the canal or an arch swallowed through
// a broken thin cortex) is cut back to its nearest normal neighbour grown by 2 mm (1.5 pixels
// at least), a slice below 0.6x the median between two normal ones (a fragment of the body)
// gains that neighbour's section, and a slice
// with no body at all takes its nearest normal neighbour's mask (within 6 mm).
void consistentSlices(std::vector<spine::SliceBody>& sb, double sx, double sy, double sz, int& repaired) {
  std::vector<double> areas;
  for (const auto& s : sb)
    if (s.valid) areas.push_back(s.area);
  if (areas.size() < 3) return;
  std::nth_element(areas.begin(), areas.begin() + static_cast<long>(areas.size() / 2), areas.end());
  const double med = areas[areas.size() / 2];
  const int n = static_cast<int>(sb.size());
  auto normal = [&](int i) {
    const auto& b = sb[static_cast<size_t>(i)];
    return b.valid && b.area <= 1.4 * med && b.area >= 0.6 * med;
  };
  const int reach = std::max(1, static_cast<int>(std::lround(6.0 / sz)));
  std::vector<spine::SliceBody> fixed = sb;
  for (int i = 0; i < n; ++i) {
    if (normal(i)) continue;
    int j = -1, above = -1, below = -1;
    for (int d = 1; d <= reach; ++d) {
      if (below < 0 && i - d >= 0 && normal(i - d)) below = i - d;
      if (above < 0 && i + d < n && normal(i + d)) above = i + d;
    }
    j = below >= 0 && (above < 0 || i - below <= above - i) ? below : above;
    if (j < 0) continue;
    // A slice without a body is only filled in between two normal ones (a gap), never at the
    // ends of the level, where the body really ends at the endplates.
    const bool small = sb[static_cast<size_t>(i)].valid && sb[static_cast<size_t>(i)].area < 0.6 * med;
    if ((!sb[static_cast<size_t>(i)].valid || small) && (above < 0 || below < 0)) continue;
    const auto& g = sb[static_cast<size_t>(j)];
    auto& f = fixed[static_cast<size_t>(i)];
    if (!f.valid) {
      f = g;  // borrow the neighbour's mask
    } else if (small) {
      // A fragment of the body (a broken thin ring at coarse slices, marrow near the
      // threshold): add the nearest normal neighbour's section, which a body changes little
      // over one slice.
      double area = 0;
      for (int y = 0; y < f.wny; ++y)
        for (int x = 0; x < f.wnx; ++x) {
          uint8_t& m = f.mask[static_cast<size_t>(y) * f.wnx + x];
          int gx = f.wx0 + x - g.wx0, gy = f.wy0 + y - g.wy0;
          if (!m && gx >= 0 && gy >= 0 && gx < g.wnx && gy < g.wny && g.mask[static_cast<size_t>(gy) * g.wnx + gx])
            m = 1;
          area += m * sx * sy;
        }
      f.area = area;
    } else {
      r2::Grid2 gg{g.wnx, g.wny, sx, sy};
      auto grown = r2::dilate(gg, g.mask, std::max(2.0, 1.5 * std::max(sx, sy)));
      double area = 0;
      for (int y = 0; y < f.wny; ++y)
        for (int x = 0; x < f.wnx; ++x) {
          uint8_t& m = f.mask[static_cast<size_t>(y) * f.wnx + x];
          if (!m) continue;
          int gx = f.wx0 + x - g.wx0, gy = f.wy0 + y - g.wy0;
          bool in =
              gx >= 0 && gy >= 0 && gx < g.wnx && gy < g.wny && grown[static_cast<size_t>(gy) * g.wnx + gx];
          m = in;
          area += in * sx * sy;
        }
      f.area = area;
    }
    ++repaired;
  }
  sb = std::move(fixed);
}
}  // namespace

LevelSegmentation levelEntry(const LevelLocation& l, const LocalizeResult& loc) {
  LevelSegmentation ls;
  ls.label = l.label;
  ls.name = l.name;
  ls.status = l.status;
  if (loc.anchors.contains("metal_levels"))
    for (const auto& m : loc.anchors["metal_levels"])
      if (m.get<std::string>() == l.name) ls.metal = true;
  return ls;
}

std::array<double, 3> toCanonicalFrame(const CtImage* can, const spine::Volume& v, const std::array<double, 3>& w) {
  CtImage::PointType pt;
  for (int a = 0; a < 3; ++a) pt[a] = w[a];
  itk::ContinuousIndex<double, 3> ci;
  can->TransformPhysicalPointToContinuousIndex(pt, ci);
  return {v.x(ci[0]), v.y(ci[1]), v.z(ci[2])};
}

std::array<double, 3> voxelPoint(const CtImage* can, const spine::Volume& v, int i, int j, int k) {
  const auto& D = can->GetDirection();
  const auto O = can->GetOrigin();
  double idx[3] = {i * v.sx, j * v.sy, k * v.sz};
  std::array<double, 3> p;
  for (int a = 0; a < 3; ++a) p[a] = O[a] + D[a][0] * idx[0] + D[a][1] * idx[1] + D[a][2] * idx[2];
  return p;
}

bool inLevelSlab(const LevelLocation& l, const std::array<double, 3>& p) {
  double below_sup = 0, above_inf = 0;
  for (int a = 0; a < 3; ++a) {
    below_sup += (p[a] - l.superior_point[a]) * l.superior_normal[a];
    above_inf += (p[a] - l.inferior_point[a]) * l.inferior_normal[a];
  }
  return below_sup <= 0 && above_inf >= 0;
}

void finishSegmentation(SegmentResult& res, const LabelImage* canonical_labels, const AxisMap& am,
                        double fracture_ratio) {
  res.labels = fromCanonical<uint8_t>(canonical_labels, am);
  measureBodies(res.labels.GetPointer(), res.levels);
  flagFractures(res.levels, fracture_ratio);
  for (const auto& l : res.levels)
    if (l.suspected_fracture) res.warnings.push_back(l.name + ": possible fracture, " + l.fracture_reason);
}

SegmentResult segment(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p) {
  if (p.method == "unet2d" || p.method == "dense-unet3d") return segmentLearned(scan, loc, p);
  if (p.method != "classical")
    throw UsageError("segment method '" + p.method + "' is unknown (methods: classical, unet2d, dense-unet3d)");
  SegmentResult res;
  res.method = "classical-v1";
  const auto& cc = canonicalOf(scan);
  const AxisMap& am = cc.map;
  const auto& can = cc.image;
  auto vol = spine::view(can.GetPointer());
  auto lab = LabelImage::New();
  lab->CopyInformation(can);
  lab->SetRegions(can->GetLargestPossibleRegion());
  lab->Allocate();
  lab->FillBuffer(0);
  uint8_t* out = lab->GetBufferPointer();
  spine::SliceParams sp;
  sp.trabecular_hu = spine::trabecularThreshold(vol);
  // Centreline (physical) -> canonical index-space mm, for the window centre per slice.
  std::vector<std::array<double, 3>> cl;
  auto toCan = [&](const std::array<double, 3>& w) { return toCanonicalFrame(can.GetPointer(), vol, w); };
  for (const auto& q : loc.centerline) cl.push_back(toCan(q.get<std::array<double, 3>>()));
  for (const auto& l : loc.levels) {
    LevelSegmentation ls = levelEntry(l, loc);
    if (l.status != "missing") {
      auto c = toCan(l.center_mm);
      auto top = toCan({l.center_mm[0], l.center_mm[1], l.superior_mm});
      auto bot = toCan({l.center_mm[0], l.center_mm[1], l.inferior_mm});
      int k0 = std::max(0, static_cast<int>(std::floor((std::min(top[2], bot[2]) - vol.oz) / vol.sz)));
      int k1 =
          std::min(vol.nz - 1, static_cast<int>(std::ceil((std::max(top[2], bot[2]) - vol.oz) / vol.sz)));
      const int n = k1 - k0 + 1;
      std::vector<spine::SliceBody> sb(static_cast<size_t>(std::max(0, n)));
      spine::parallelFor(n, [&, k0](int kk) {
        const int k = k0 + kk;
        double z = vol.z(k), cx = c[0], cy = c[1];
        // nearest centreline point in z
        double best = 1e9;
        for (const auto& q : cl)
          if (std::abs(q[2] - z) < best) {
            best = std::abs(q[2] - z);
            cx = q[0];
            cy = q[1];
          }
        if (best > 6) {
          cx = c[0];
          cy = c[1];
        }
        sb[static_cast<size_t>(kk)] = spine::analyseSlice(vol, k, cx, cy, sp, true);
      });
      consistentSlices(sb, vol.sx, vol.sy, vol.sz, ls.repaired_slices);
      spine::parallelFor(n, [&, k0](int kk) {
        const int k = k0 + kk;
        const auto& s = sb[static_cast<size_t>(kk)];
        if (!s.valid) return;
        for (int j = 0; j < s.wny; ++j)
          for (int i = 0; i < s.wnx; ++i) {
            if (!s.mask[static_cast<size_t>(j) * s.wnx + i]) continue;
            // physical position of this voxel, then the side of each disc plane
            if (!inLevelSlab(l, voxelPoint(can.GetPointer(), vol, s.wx0 + i, s.wy0 + j, k))) continue;
            size_t q = (static_cast<size_t>(k) * vol.ny + (s.wy0 + j)) * vol.nx + (s.wx0 + i);
            if (!out[q]) out[q] = static_cast<uint8_t>(l.label);  // one slice per task: no race
          }
      });
    }
    res.levels.push_back(ls);
  }
  finishSegmentation(res, lab.GetPointer(), am, p.fracture_ratio);
  return res;
}

}  // namespace ctbmd
