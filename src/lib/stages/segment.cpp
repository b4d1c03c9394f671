// segment, weight-free default ("classical"): for every level localize found, the body
// is traced slice by slice with the same finder localize uses (filled cortical ring,
// posterior elements opened away and cut at the spinal canal), inside that level's
// vertebral slab only.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/methods.hpp"
#include "ctbmd/stages.hpp"
#include "ctbmd/stats.hpp"
#include "internal/label_map.hpp"
#include "internal/parallel.hpp"
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
    if (l.suspected_merge) {
      e["suspected_merge"] = true;
      e["merge_reason"] = l.merge_reason;
    }
    if (l.repaired_slices) e["repaired_slices"] = l.repaired_slices;
    if (l.metal) e["metal"] = true;
    if (!l.naming_flags.empty()) e["naming_flags"] = l.naming_flags;
    lv[l.name] = e;
  }
  json j = {{"method", method},
            {"levels", lv},
            {"warnings", warnings},
            {"label_convention", "VerSe: T12=19, L1=20, L2=21, L3=22, L4=23, L5=24; bodies only"}};
  if (!model.empty()) j["model"] = model;
  return j;
}

SegmentResult SegmentResult::fromJson(const json& j, LabelImage::Pointer labels, const std::string& file) {
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
      l.status = parseLevelStatus(e.at("status").get<std::string>(), file);
      l.voxels = e.at("voxels").get<long>();
      l.volume_mm3 = e.at("volume_mm3").get<double>();
      l.height_anterior_mm = e.value("height_anterior_mm", 0.0);
      l.height_middle_mm = e.value("height_middle_mm", 0.0);
      l.height_posterior_mm = e.value("height_posterior_mm", 0.0);
      l.suspected_fracture = e.value("suspected_fracture", false);
      l.fracture_reason = e.value("fracture_reason", "");
      l.suspected_merge = e.value("suspected_merge", false);
      l.merge_reason = e.value("merge_reason", "");
      l.repaired_slices = e.value("repaired_slices", 0);
      l.metal = e.value("metal", false);
      l.naming_flags = e.value("naming_flags", std::vector<std::string>{});
      r.levels.push_back(l);
    }
    r.warnings = j.value("warnings", std::vector<std::string>{});
  } catch (const json::exception& e) {
    throw InputError("segmentation JSON " + quotedFile(file) + "is missing fields or has wrong types (" +
                     jsonProblem(e) + "); was it written by ctbmd-segment? Run ctbmd-segment again");
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
  auto can = toCanonicalView<uint8_t>(labels, am);
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
  // Far taller than the column's other bodies (T12-L5 heights differ by ~20 %): a body that
  // took in part of its neighbour where a disc was missed (beside metal, say). Its HU are not
  // its own.
  constexpr double kTallerThan = 1.35;
  for (size_t i = 0; i < levels.size(); ++i) {
    auto& l = levels[i];
    if (l.status != LevelStatus::Found || l.voxels == 0) continue;
    std::vector<double> others;
    for (size_t j = 0; j < levels.size(); ++j)
      if (j != i && levels[j].status == LevelStatus::Found && levels[j].voxels > 0)
        others.push_back(meanH(levels[j]));
    if (others.size() < 3) continue;
    std::nth_element(others.begin(), others.begin() + others.size() / 2, others.end());
    const double ref = others[others.size() / 2];
    if (meanH(l) > kTallerThan * ref) {
      l.suspected_merge = true;
      char buf[160];
      std::snprintf(buf, sizeof buf, "body height %.0f mm is over %.0f%% of the column's median (%.0f mm)",
                    meanH(l), kTallerThan * 100, ref);
      l.merge_reason = buf;
    }
  }
  for (size_t i = 0; i < levels.size(); ++i) {
    auto& l = levels[i];
    if (l.status != LevelStatus::Found || l.voxels == 0) continue;
    double post = l.height_posterior_mm;
    double ant = l.height_anterior_mm, mid = l.height_middle_mm;
    std::vector<double> nb;
    for (size_t j : {i - 1, i + 1})
      if (j < levels.size() && levels[j].status == LevelStatus::Found && levels[j].voxels > 0)
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
          if (!m && gx >= 0 && gy >= 0 && gx < g.wnx && gy < g.wny &&
              g.mask[static_cast<size_t>(gy) * g.wnx + gx])
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

// A smoothed mask is kept where it exceeds this: a little above one half, which leaves the
// outer pixel whose centre lies on the cortex's outer edge out (at 3 mm voxels that pixel is
// mostly soft tissue; TotalSegmentator's masks leave it out too).
constexpr float kKeep = 0.55f;
// The body's face along a column through an endplate: where the profile has climbed this far
// from the disc's trough to the endplate's peak. The peak is the cortical plate blurred over
// a slice or two; the face lies close to it, not half-way down into the disc.
constexpr double kAlpha = 0.8;

// Width of the regularising Gaussian, in voxels per axis (at least `floor_mm`).
constexpr double kSigmaVoxels = 1.2;

// 3-D regularisation of the bodies traced slice by slice: each level's mask is smoothed with
// a Gaussian of about one voxel (kSigmaVoxels, at least `floor_mm`) per axis and cut at kKeep, and where
// two levels' smoothed masks overlap the stronger one wins. A body's surface is smooth on the
// scale of a voxel; what a slice-wise trace gets wrong is not: a one-pixel notch or stub, a hole
// of dark fatty marrow that opens through a broken cortex, one slice a pixel wider than its
// neighbours. At 3 mm voxels this is what decides Dice (one pixel ring is a quarter of a body's
// section) and the erode-4mm median (the ring carries cortex into the eroded core).
struct SmoothedLevel {
  int label = 0;
  int b0[3] = {0, 0, 0}, n[3] = {0, 0, 0};  // crop origin and size (canonical index)
  std::vector<float> p;
  float at(int i, int j, int k) const {
    i -= b0[0];
    j -= b0[1];
    k -= b0[2];
    if (i < 0 || j < 0 || k < 0 || i >= n[0] || j >= n[1] || k >= n[2]) return 0.f;
    return p[(static_cast<size_t>(k) * n[1] + j) * n[0] + i];
  }
};

void gaussianAlong(std::vector<float>& v, const int n[3], int axis, double sigma_vox) {
  const int r = std::max(1, static_cast<int>(std::ceil(3.0 * sigma_vox)));
  std::vector<float> w(2 * r + 1);
  float sum = 0;
  for (int t = -r; t <= r; ++t)
    sum += w[t + r] = static_cast<float>(std::exp(-0.5 * t * t / (sigma_vox * sigma_vox)));
  for (auto& x : w) x /= sum;
  const size_t stride = axis == 0   ? 1
                        : axis == 1 ? static_cast<size_t>(n[0])
                                    : static_cast<size_t>(n[0]) * n[1];
  const int len = n[axis];
  const int o1 = axis == 0 ? 1 : 0, o2 = axis == 2 ? 1 : 2;  // the other two axes
  std::vector<float> line(len), res(len);
  for (int b = 0; b < n[o2]; ++b)
    for (int a = 0; a < n[o1]; ++a) {
      size_t base = (o1 == 0 ? a : static_cast<size_t>(a) * n[0]) +
                    (o2 == 1 ? static_cast<size_t>(b) * n[0] : static_cast<size_t>(b) * n[0] * n[1]);
      bool any = false;
      for (int t = 0; t < len; ++t) any |= (line[t] = v[base + t * stride]) != 0.f;
      if (!any) continue;
      for (int t = 0; t < len; ++t) {
        float acc = 0;
        for (int d = std::max(-r, -t); d <= std::min(r, len - 1 - t); ++d) acc += w[d + r] * line[t + d];
        res[t] = acc;
      }
      for (int t = 0; t < len; ++t) v[base + t * stride] = res[t];
    }
}

// Zeroes every part of {p > keep} but the largest 6-connected one (a piece of an arch or the
// canal a slice trace picked up is not part of the body).
void keepLargestPart(std::vector<float>& p, const int n[3], float keep) {
  const size_t total = p.size();
  std::vector<int> comp(total, 0);
  std::vector<size_t> stack;
  int ncomp = 0, best = 0;
  size_t best_size = 0;
  const long step[3] = {1, n[0], static_cast<long>(n[0]) * n[1]};
  for (size_t q0 = 0; q0 < total; ++q0) {
    if (p[q0] <= keep || comp[q0]) continue;
    ++ncomp;
    size_t size = 0;
    stack.assign(1, q0);
    comp[q0] = ncomp;
    while (!stack.empty()) {
      size_t q = stack.back();
      stack.pop_back();
      ++size;
      const int c[3] = {static_cast<int>(q % n[0]), static_cast<int>((q / n[0]) % n[1]),
                        static_cast<int>(q / (static_cast<size_t>(n[0]) * n[1]))};
      for (int a = 0; a < 3; ++a)
        for (int d : {-1, 1}) {
          if (c[a] + d < 0 || c[a] + d >= n[a]) continue;
          size_t r = static_cast<size_t>(static_cast<long>(q) + d * step[a]);
          if (p[r] > keep && !comp[r]) {
            comp[r] = ncomp;
            stack.push_back(r);
          }
        }
    }
    if (size > best_size) {
      best_size = size;
      best = ncomp;
    }
  }
  for (size_t q = 0; q < total; ++q)
    if (comp[q] != best) p[q] = std::min(p[q], keep);
}

void smoothLabels(uint8_t* lab, const spine::Volume& vol, const std::vector<int>& labels, double floor_mm) {
  const double sp[3] = {vol.sx, vol.sy, vol.sz};
  double sig[3];
  int pad[3];
  for (int a = 0; a < 3; ++a) {
    sig[a] = std::max(kSigmaVoxels * sp[a], floor_mm) / sp[a];
    pad[a] = static_cast<int>(std::ceil(3.0 * sig[a])) + 1;
  }
  const int dims[3] = {vol.nx, vol.ny, vol.nz};
  std::vector<SmoothedLevel> sm(labels.size());
  for (size_t li = 0; li < labels.size(); ++li) sm[li].label = labels[li];
  // bounding boxes
  std::array<int, 256> slot;
  slot.fill(-1);
  for (size_t li = 0; li < labels.size(); ++li)
    slot[static_cast<size_t>(labels[li] & 0xff)] = static_cast<int>(li);
  std::vector<std::array<int, 6>> bb(labels.size(), {1 << 30, 1 << 30, 1 << 30, -1, -1, -1});
  for (int k = 0; k < vol.nz; ++k)
    for (int j = 0; j < vol.ny; ++j) {
      const uint8_t* row = lab + (static_cast<size_t>(k) * vol.ny + j) * vol.nx;
      for (int i = 0; i < vol.nx; ++i) {
        if (!row[i]) continue;
        if (const int li = slot[row[i]]; li >= 0) {
          auto& b = bb[static_cast<size_t>(li)];
          b[0] = std::min(b[0], i), b[1] = std::min(b[1], j), b[2] = std::min(b[2], k);
          b[3] = std::max(b[3], i), b[4] = std::max(b[4], j), b[5] = std::max(b[5], k);
        }
      }
    }
  parallelFor(static_cast<int>(labels.size()), [&](int li) {
    auto& s = sm[static_cast<size_t>(li)];
    const auto& b = bb[static_cast<size_t>(li)];
    if (b[3] < 0) return;
    for (int a = 0; a < 3; ++a) {
      s.b0[a] = std::max(0, b[a] - pad[a]);
      s.n[a] = std::min(dims[a] - 1, b[a + 3] + pad[a]) - s.b0[a] + 1;
    }
    s.p.assign(static_cast<size_t>(s.n[0]) * s.n[1] * s.n[2], 0.f);
    for (int k = 0; k < s.n[2]; ++k)
      for (int j = 0; j < s.n[1]; ++j)
        for (int i = 0; i < s.n[0]; ++i)
          if (lab[(static_cast<size_t>(k + s.b0[2]) * vol.ny + (j + s.b0[1])) * vol.nx + (i + s.b0[0])] ==
              s.label)
            s.p[(static_cast<size_t>(k) * s.n[1] + j) * s.n[0] + i] = 1.f;
    for (int a = 0; a < 3; ++a) gaussianAlong(s.p, s.n, a, sig[a]);
    keepLargestPart(s.p, s.n, kKeep);
  });
  // the traced voxels go (they lie inside their level's box); the smoothed ones replace them
  for (const auto& s : sm) {
    if (s.p.empty()) continue;
    for (int k = s.b0[2]; k < s.b0[2] + s.n[2]; ++k)
      for (int j = s.b0[1]; j < s.b0[1] + s.n[1]; ++j) {
        uint8_t* row = lab + (static_cast<size_t>(k) * vol.ny + j) * vol.nx;
        for (int i = s.b0[0]; i < s.b0[0] + s.n[0]; ++i)
          if (row[i] == s.label) row[i] = 0;
      }
  }
  for (const auto& s : sm) {
    if (s.p.empty()) continue;
    for (int k = 0; k < s.n[2]; ++k)
      for (int j = 0; j < s.n[1]; ++j)
        for (int i = 0; i < s.n[0]; ++i) {
          float pv = s.p[(static_cast<size_t>(k) * s.n[1] + j) * s.n[0] + i];
          if (pv <= kKeep) continue;
          const int gi = i + s.b0[0], gj = j + s.b0[1], gk = k + s.b0[2];
          uint8_t& o = lab[(static_cast<size_t>(gk) * vol.ny + gj) * vol.nx + gi];
          if (o) {
            const SmoothedLevel* other = nullptr;
            for (const auto& t : sm)
              if (t.label == o) other = &t;
            if (other && other->at(gi, gj, gk) >= pv) continue;
          }
          o = static_cast<uint8_t>(s.label);
        }
  }
}
}  // namespace

LevelSegmentation levelEntry(const LevelLocation& l, const LocalizeResult& loc) {
  LevelSegmentation ls;
  ls.label = l.label;
  ls.name = l.name;
  ls.status = l.status;
  for (const auto& m : loc.anchors.metal_levels)
    if (m == l.name) ls.metal = true;
  for (const auto& f : l.flags) {
    if (f == "suspected_merge") {
      ls.suspected_merge = true;
      ls.merge_reason = l.note;
    } else {
      ls.naming_flags.push_back(f);
    }
  }
  return ls;
}

std::array<double, 3> toCanonicalFrame(const CtImage* can, const spine::Volume& v,
                                       const std::array<double, 3>& w) {
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

namespace {
struct ColumnBounds {
  std::vector<float> lo, hi;  // per column (nx*ny): first and last slice of the body
};

struct CanPlane {
  std::array<double, 3> p{}, n{0, 0, 1};  // canonical frame mm
  // slice index (fractional) where the plane crosses column (i, j)
  double k(const spine::Volume& v, int i, int j) const {
    double nz = std::abs(n[2]) < 0.3 ? (n[2] < 0 ? -0.3 : 0.3) : n[2];
    double z = p[2] - (n[0] * (v.x(i) - p[0]) + n[1] * (v.y(j) - p[1])) / nz;
    return (z - v.oz) / v.sz;
  }
};

CanPlane canPlane(const CtImage* can, const spine::Volume& v, const std::array<double, 3>& pt,
                  const std::array<double, 3>& nrm) {
  CanPlane c;
  c.p = toCanonicalFrame(can, v, pt);
  std::array<double, 3> tip;
  for (int a = 0; a < 3; ++a) tip[a] = pt[a] + nrm[a];
  auto q = toCanonicalFrame(can, v, tip);
  double len = 0;
  for (int a = 0; a < 3; ++a) {
    c.n[a] = q[a] - c.p[a];
    len += c.n[a] * c.n[a];
  }
  len = std::sqrt(len);
  for (auto& x : c.n) x /= len > 0 ? len : 1;
  if (c.n[2] < 0)
    for (auto& x : c.n) x = -x;
  return c;
}
}  // namespace

std::map<int, ColumnBounds> endplateBounds(const spine::Volume& vol, const CtImage* can,
                                           const LocalizeResult& loc,
                                           const std::map<int, const std::vector<uint8_t>*>& footprints) {
  const size_t ncol = static_cast<size_t>(vol.nx) * vol.ny;
  std::map<int, ColumnBounds> out;
  std::map<int, CanPlane> sup, inf;
  std::map<int, const LevelLocation*> byLabel;
  for (const auto& l : loc.levels) {
    if (!footprints.count(l.label)) continue;
    byLabel[l.label] = &l;
    sup[l.label] = canPlane(can, vol, l.superior_point, l.superior_normal);
    inf[l.label] = canPlane(can, vol, l.inferior_point, l.inferior_normal);
    auto& b = out[l.label];
    b.lo.assign(ncol, 1e9f);
    b.hi.assign(ncol, -1e9f);
    const auto& fp = *footprints.at(l.label);
    for (int j = 0; j < vol.ny; ++j)
      for (int i = 0; i < vol.nx; ++i) {
        const size_t c = static_cast<size_t>(j) * vol.nx + i;
        if (!fp[c]) continue;
        // the planes' test of a voxel centre: k >= lower plane, k <= upper plane
        b.lo[c] = static_cast<float>(std::ceil(inf[l.label].k(vol, i, j) - 1e-6));
        b.hi[c] = static_cast<float>(std::floor(sup[l.label].k(vol, i, j) + 1e-6));
      }
  }
  // Each disc between two traced bodies (lower A, upper B; VerSe labels count downwards).
  auto dot = [](const std::array<double, 3>& a, const std::array<double, 3>& b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  };
  const int rbx = std::max(1, static_cast<int>(std::lround(1.5 / vol.sx)));
  const int rby = std::max(1, static_cast<int>(std::lround(1.5 / vol.sy)));
  const double peak_mm = 10.0, min_contrast = 50.0, max_shift_mm = 6.0;
  // The discs: between each two traced neighbours, and beyond a level whose end is not the
  // scan's edge (L5 on the sacrum, say), with a gap as wide as the column's other discs.
  struct Disc {
    int lower = 0, upper = 0;  // labels; 0: an untraced neighbour (sacrum, T11)
    CanPlane pa, pb;           // the lower body's superior plane, the upper body's inferior one
  };
  std::vector<Disc> discs;
  std::vector<double> gaps;
  // Neighbours in the column: consecutive in localize's list of vertebrae (a T13 lies between
  // T12 and L1), else consecutive labels.
  auto position = [&](int label) {
    for (size_t i = 0; i < loc.vertebrae.size(); ++i)
      if (loc.vertebrae[i].label == label) return static_cast<int>(i);
    return -1;
  };
  auto adjacent = [&](int lower, int upper) {
    const int pl = position(lower), pu = position(upper);
    return pl >= 0 && pu >= 0 ? pl == pu + 1 : lower - 1 == upper;
  };
  for (const auto& [labA, la] : byLabel) {
    if (!byLabel.count(labA - 1) || !adjacent(labA, labA - 1)) continue;
    Disc d{labA, labA - 1, sup[labA], inf[labA - 1]};
    std::array<double, 3> dv{d.pb.p[0] - d.pa.p[0], d.pb.p[1] - d.pa.p[1], d.pb.p[2] - d.pa.p[2]};
    gaps.push_back(dot(dv, d.pa.n));
    discs.push_back(d);
  }
  double typical_gap = 8.0;
  if (!gaps.empty()) {
    std::nth_element(gaps.begin(), gaps.begin() + static_cast<long>(gaps.size() / 2), gaps.end());
    typical_gap = std::clamp(gaps[gaps.size() / 2], 4.0, 14.0);
  }
  if (!byLabel.empty()) {
    auto shifted = [](CanPlane q, double by) {
      for (int a = 0; a < 3; ++a) q.p[a] += by * q.n[a];
      return q;
    };
    // a level without a traced neighbour below (L5, or T12 above a T13) or above (T12, L1 below a T13)
    for (const auto& [lab, l] : byLabel) {
      if (l->status != LevelStatus::Found) continue;
      if (!byLabel.count(lab + 1) || !adjacent(lab + 1, lab))
        discs.push_back({0, lab, shifted(inf[lab], -typical_gap), inf[lab]});
      if (!byLabel.count(lab - 1) || !adjacent(lab, lab - 1))
        discs.push_back({lab, 0, sup[lab], shifted(sup[lab], typical_gap)});
    }
  }
  const std::vector<uint8_t> none(ncol, 0);
  std::vector<float> unused(ncol, 0.f);
  for (const auto& disc : discs) {
    const int labA = disc.lower, labB = disc.upper;
    const CanPlane& pa = disc.pa;
    const CanPlane& pb = disc.pb;
    CanPlane mid;
    double nn = 0;
    for (int a = 0; a < 3; ++a) {
      mid.p[a] = 0.5 * (pa.p[a] + pb.p[a]);
      mid.n[a] = pa.n[a] + pb.n[a];
      nn += mid.n[a] * mid.n[a];
    }
    for (auto& x : mid.n) x /= std::sqrt(nn);
    std::array<double, 3> d{pb.p[0] - pa.p[0], pb.p[1] - pa.p[1], pb.p[2] - pa.p[2]};
    const double gap = std::max(2.0, dot(d, mid.n));
    const int hz = std::max(1, static_cast<int>(std::ceil((0.5 * gap + 4.0) / vol.sz)));
    const int pr = std::max(2, static_cast<int>(std::ceil(peak_mm / vol.sz)));
    const int shift = std::max(1, static_cast<int>(std::lround(max_shift_mm / vol.sz)));
    const auto& fa = labA ? *footprints.at(labA) : none;
    const auto& fb = labB ? *footprints.at(labB) : none;
    ColumnBounds dummy;
    auto& ba = labA ? out[labA] : dummy;
    auto& bb = labB ? out[labB] : dummy;
    if (!labA) dummy.hi = unused;
    if (!labB) dummy.lo = unused;
    std::vector<float> ra = ba.hi, rb = bb.lo;  // refined, before smoothing
    parallelFor(vol.ny, [&](int j) {
      std::vector<double> prof;
      for (int i = 0; i < vol.nx; ++i) {
        const size_t c = static_cast<size_t>(j) * vol.nx + i;
        if (!fa[c] && !fb[c]) continue;
        const int km = static_cast<int>(std::lround(mid.k(vol, i, j)));
        const int t0 = std::max(0, km - hz), t1 = std::min(vol.nz - 1, km + hz);
        const int p0 = std::max(0, t0 - pr), p1 = std::min(vol.nz - 1, t1 + pr);
        if (t1 <= t0) continue;
        prof.assign(static_cast<size_t>(p1 - p0 + 1), 0.0);
        for (int k = p0; k <= p1; ++k) {
          double sum = 0;
          int cnt = 0;
          for (int y = std::max(0, j - rby); y <= std::min(vol.ny - 1, j + rby); ++y)
            for (int x = std::max(0, i - rbx); x <= std::min(vol.nx - 1, i + rbx); ++x) {
              sum += vol.at(x, y, k);
              ++cnt;
            }
          prof[static_cast<size_t>(k - p0)] = sum / cnt;
        }
        auto v = [&](int k) { return prof[static_cast<size_t>(k - p0)]; };
        // The disc lies between the two endplates, the brightest rows on either side of the
        // mid-disc plane; its trough is the darkest row between them. (Searched beyond the
        // plates, the darkest row can be osteoporotic marrow, darker than the disc.)
        int kl = -1, ku = -1, kt = -1;
        for (int k = std::max(p0, km - pr); k < std::min(p1, km); ++k)
          if (kl < 0 || v(k) > v(kl)) kl = k;
        for (int k = std::max(p0, km + 1); k <= std::min(p1, km + pr); ++k)
          if (ku < 0 || v(k) > v(ku)) ku = k;
        if (kl >= 0 && ku > kl + 1)
          for (int k = kl + 1; k < ku; ++k)
            if (kt < 0 || v(k) < v(kt)) kt = k;
        if (kt < 0) {
          kt = t0;
          for (int k = t0; k <= t1; ++k)
            if (v(k) < v(kt)) kt = k;
          ku = kl = -1;
          for (int k = kt + 1; k <= std::min(p1, kt + pr); ++k)
            if (ku < 0 || v(k) > v(ku)) ku = k;
          for (int k = kt - 1; k >= std::max(p0, kt - pr); --k)
            if (kl < 0 || v(k) > v(kl)) kl = k;
        }
        if (fb[c] && ku >= 0 && v(ku) - v(kt) >= min_contrast) {
          const double half = v(kt) + kAlpha * (v(ku) - v(kt));
          int k = kt + 1;
          while (k < ku && v(k) < half) ++k;
          rb[c] = static_cast<float>(
              std::clamp(k, static_cast<int>(bb.lo[c]) - shift, static_cast<int>(bb.lo[c]) + shift));
        }
        if (fa[c] && kl >= 0 && v(kl) - v(kt) >= min_contrast) {
          const double half = v(kt) + kAlpha * (v(kl) - v(kt));
          int k = kt - 1;
          while (k > kl && v(k) < half) --k;
          ra[c] = static_cast<float>(
              std::clamp(k, static_cast<int>(ba.hi[c]) - shift, static_cast<int>(ba.hi[c]) + shift));
        }
      }
    });
    // Median over a ~3 mm neighbourhood of columns: one noisy column does not move an endplate.
    const int mx = std::max(1, static_cast<int>(std::lround(3.0 / vol.sx)));
    const int my = std::max(1, static_cast<int>(std::lround(3.0 / vol.sy)));
    auto smoothInto = [&](const std::vector<float>& r, const std::vector<uint8_t>& fp,
                          std::vector<float>& dst) {
      std::vector<float> res = dst;
      std::vector<float> win;
      for (int j = 0; j < vol.ny; ++j)
        for (int i = 0; i < vol.nx; ++i) {
          const size_t c = static_cast<size_t>(j) * vol.nx + i;
          if (!fp[c]) continue;
          win.clear();
          for (int y = std::max(0, j - my); y <= std::min(vol.ny - 1, j + my); ++y)
            for (int x = std::max(0, i - mx); x <= std::min(vol.nx - 1, i + mx); ++x) {
              const size_t q = static_cast<size_t>(y) * vol.nx + x;
              if (fp[q]) win.push_back(r[q]);
            }
          std::nth_element(win.begin(), win.begin() + static_cast<long>(win.size() / 2), win.end());
          res[c] = win[win.size() / 2];
        }
      dst = std::move(res);
    };
    if (labA) smoothInto(ra, fa, ba.hi);
    if (labB) smoothInto(rb, fb, bb.lo);
  }
  return out;
}

void finishSegmentation(SegmentResult& res, const LabelImage* canonical_labels, const AxisMap& am,
                        double fracture_ratio) {
  res.labels = fromCanonicalView<uint8_t>(canonical_labels, am);
  measureBodies(res.labels.GetPointer(), res.levels);
  flagFractures(res.levels, fracture_ratio);
  for (const auto& l : res.levels)
    if (l.suspected_fracture) res.warnings.push_back(l.name + ": possible fracture, " + l.fracture_reason);
  for (const auto& l : res.levels)
    if (l.suspected_merge)
      res.warnings.push_back(l.name + ": may include part of a neighbour (a disc not found), " +
                             l.merge_reason + "; not used for BMD");
}

// Every level localize placed must lie in the scan: a localize.json made from another scan
// (or edited) can put planes hundreds of mm away, and segmenting "there" would report levels
// found with nothing in them. Allowed: 15 mm beyond the image's edge (a level cut by the field
// of view has its centre inside, its far endplate just outside).
void checkLocalizeFitsScan(const Scan& scan, const LocalizeResult& loc, const std::string& file) {
  constexpr double kMarginMm = 15.0;
  const CtImage* img = scan.image.GetPointer();
  const auto size = img->GetLargestPossibleRegion().GetSize();
  const auto sp = img->GetSpacing();
  for (const auto& l : loc.levels) {
    if (l.status != LevelStatus::Found && l.status != LevelStatus::Partial) continue;
    for (const auto* pt : {&l.center_mm, &l.inferior_point, &l.superior_point}) {
      CtImage::PointType q;
      for (int d = 0; d < 3; ++d) q[d] = (*pt)[d];
      itk::ContinuousIndex<double, 3> ci;
      img->TransformPhysicalPointToContinuousIndex(q, ci);
      double out_mm = 0;
      for (int d = 0; d < 3; ++d) {
        const double lo = -0.5, hi = static_cast<double>(size[d]) - 0.5;
        const double beyond = ci[d] < lo ? lo - ci[d] : (ci[d] > hi ? ci[d] - hi : 0.0);
        out_mm = std::max(out_mm, beyond * sp[d]);
      }
      if (!std::isfinite(out_mm) || out_mm > kMarginMm) {
        char where[160];
        std::snprintf(where, sizeof where, "(%.1f, %.1f, %.1f) mm, %.0f mm outside the scan's field of view",
                      (*pt)[0], (*pt)[1], (*pt)[2], out_mm);
        throw InputError("the localize result " + quotedFile(file) + "places " + l.name + " at " + where +
                         " of '" + scan.info.path.string() +
                         "': it was made from another scan, or edited; run ctbmd-localize on this scan");
      }
    }
  }
}

namespace {

// The slices beyond a level's slab planes traced with it: discs are 5-15 mm thick.
constexpr double kDiscReachMm = 12.0;
// A slice's trace window is centred on the centreline point nearest in z when that point is
// within this distance (mm); farther, the level's own centre is used.
constexpr double kOnCentrelineMm = 6.0;
// The middle of a slab (from 30 % to 70 % between the planes: a plane may lie 5 mm off, in
// the disc) where every slice cuts the body whole.
constexpr double kMiddleFrom = 0.3, kMiddleTo = 0.7;
// A middle slice whose body is smaller than this fraction of the level's median inscribed
// radius, or whose centre lies farther than kPieceOffMm from the level's centre, holds only a
// piece of the body.
constexpr double kPieceRadiusFraction = 0.75, kPieceOffMm = 8.0;
// The radial trace's second seed, this far posterior of the first (mm): the canal side.
constexpr double kRadialSecondSeedMm = 25.0;
// A slice without a trace borrows the nearest trace towards the body's middle within this
// distance (mm), unless the body's column ends enclose at least kFlatDiscShare of it.
constexpr double kLendReachMm = 6.0, kFlatDiscShare = 0.9;

// One level's traces, slice by slice over its slab and the discs beside it.
struct Traced {
  const LevelLocation* loc = nullptr;
  int k0 = 0;
  std::vector<spine::SliceBody> sb;
  std::vector<uint8_t> footprint;  // columns (nx*ny) the body covers in any slice of its slab
};

// The canonical index-space centreline (mm) and, per slice, the window centre: the centreline
// point nearest in z, the same for every level, so neighbouring levels (whose ranges overlap
// by the disc and the reach) share one trace per slice.
struct CentreLine {
  std::vector<std::array<double, 3>> pts;
  std::array<double, 2> at(const spine::Volume& vol, int k, bool& on_line) const {
    double z = vol.z(k), best = 1e9;
    std::array<double, 2> xy{0, 0};
    for (const auto& q : pts)
      if (std::abs(q[2] - z) < best) {
        best = std::abs(q[2] - z);
        xy = {q[0], q[1]};
      }
    on_line = best <= kOnCentrelineMm;
    return xy;
  }
};

// Each non-missing level's slice range (its slab plus `extra` slices each side), in
// loc.levels order, and which slices are on the centreline (traced once, shared).
void levelRanges(const spine::Volume& vol, const LocalizeResult& loc, const CentreLine& cl, int extra,
                 const std::function<std::array<double, 3>(const std::array<double, 3>&)>& toCan,
                 std::vector<std::pair<int, int>>& ranges, std::vector<uint8_t>& wanted) {
  wanted.assign(static_cast<size_t>(vol.nz), 0);
  for (const auto& l : loc.levels) {
    if (l.status == LevelStatus::Missing) continue;
    auto top = toCan({l.center_mm[0], l.center_mm[1], l.superior_mm});
    auto bot = toCan({l.center_mm[0], l.center_mm[1], l.inferior_mm});
    int k0 = std::max(0, static_cast<int>(std::floor((std::min(top[2], bot[2]) - vol.oz) / vol.sz)) - extra);
    int k1 = std::min(vol.nz - 1,
                      static_cast<int>(std::ceil((std::max(top[2], bot[2]) - vol.oz) / vol.sz)) + extra);
    ranges.push_back({k0, k1});
    for (int k = k0; k <= k1; ++k) {
      bool on_line = false;
      cl.at(vol, k, on_line);
      if (on_line) wanted[static_cast<size_t>(k)] = 1;
    }
  }
}

// The shared traces of the slices on the centreline (others stay empty).
std::vector<spine::SliceBody> traceSharedSlices(const spine::Volume& vol, const CentreLine& cl,
                                                const std::vector<uint8_t>& wanted,
                                                const spine::SliceParams& sp) {
  std::vector<int> shared_ks;
  for (int k = 0; k < vol.nz; ++k)
    if (wanted[static_cast<size_t>(k)]) shared_ks.push_back(k);
  std::vector<spine::SliceBody> shared(static_cast<size_t>(vol.nz));
  parallelFor(static_cast<int>(shared_ks.size()), [&](int t) {
    const int k = shared_ks[static_cast<size_t>(t)];
    bool on_line = false;
    auto xy = cl.at(vol, k, on_line);
    shared[static_cast<size_t>(k)] = spine::analyseSlice(vol, k, xy[0], xy[1], sp, true);
  });
  return shared;
}

// Middle slices where the ring finder found no body, or only a piece, traced radially from the
// level's centre as well; the radial body is kept when it is larger, centred within
// kPieceOffMm and not merged with the canal (inscribed disk <= kMergedAboveMm). Marrow right
// at the dense-bone threshold breaks into holes too small to fill (in 5 mm slices two or three
// such slices in a row are half a body), and streaks from metal break the ring. Done only where
// a third of the middle slices or more are such: isolated misses are better lent a
// neighbour's shape (consistentSlices), and near a tilted L5's lower plane the radial trace
// outlines body and disc together. Returns the slices replaced.
int repairMiddleSlices(const spine::Volume& vol, const spine::SliceParams& sp, const LevelLocation& l,
                       const std::array<double, 3>& c, int extra, Traced& t) {
  const int n = static_cast<int>(t.sb.size());
  const int inner = n - 2 * extra;
  std::vector<double> radii, xs, ys;
  for (int kk = extra; kk < n - extra; ++kk)
    if (const auto& b = t.sb[static_cast<size_t>(kk)]; b.valid) radii.push_back(b.r_max);
  const double r_median = radii.empty() ? 0.0 : stats::median(radii);
  for (int kk = extra; kk < n - extra; ++kk)
    if (const auto& b = t.sb[static_cast<size_t>(kk)];
        b.valid && b.r_max >= kPieceRadiusFraction * r_median) {
      xs.push_back(b.cx);
      ys.push_back(b.cy);
    }
  // the level's own centre (the centreline wanders at L5/S1)
  const std::array<double, 2> ref = xs.empty() ? std::array<double, 2>{c[0], c[1]}
                                               : std::array<double, 2>{stats::median(xs), stats::median(ys)};
  auto off = [&](const spine::SliceBody& b) { return std::hypot(b.cx - ref[0], b.cy - ref[1]); };
  const int m0 = extra + static_cast<int>(std::floor(kMiddleFrom * inner)),
            m1 = extra + static_cast<int>(std::ceil(kMiddleTo * inner));
  std::vector<int> retrace;
  for (int kk = m0; kk < m1; ++kk)
    if (const auto& b = t.sb[static_cast<size_t>(kk)];
        !b.valid || b.r_max < kPieceRadiusFraction * r_median || off(b) > kPieceOffMm)
      retrace.push_back(kk);
  // A few such slices are isolated misses that consistentSlices lends a neighbour's shape;
  // a third of the middle or more is a body the ring finder does not see.
  if (3 * static_cast<int>(retrace.size()) < m1 - m0) retrace.clear();
  std::vector<uint8_t> took(retrace.size(), 0);
  const int k0 = t.k0;
  parallelFor(static_cast<int>(retrace.size()), [&](int t_) {
    const int kk = retrace[static_cast<size_t>(t_)];
    auto& b = t.sb[static_cast<size_t>(kk)];
    auto r = spine::radialSlice(vol, k0 + kk, {{ref[0], ref[1]}, {ref[0], ref[1] - kRadialSecondSeedMm}}, sp,
                                true);
    spdlog::trace(
        "segment {} slice {}: ring valid {} r {:.1f} at ({:.1f},{:.1f}); radial valid {} r {:.1f} at "
        "({:.1f},{:.1f}); level centre ({:.1f},{:.1f})",
        l.name, k0 + kk, b.valid, b.r_max, b.cx, b.cy, r.valid, r.r_max, r.cx, r.cy, ref[0], ref[1]);
    if (r.valid && r.r_max <= spine::kMergedAboveMm && off(r) <= kPieceOffMm &&
        (!b.valid || r.r_max > b.r_max)) {
      b = std::move(r);
      took[static_cast<size_t>(t_)] = 1;
    }
  });
  const int n_took = static_cast<int>(std::count(took.begin(), took.end(), 1));
  if (n_took)
    spdlog::debug("segment {}: {} slices traced radially (no body from the ring finder)", l.name, n_took);
  return n_took;
}

// The body's columns: from the slices inside its slab (the disc slices beside it may hold
// anything).
void levelFootprint(const spine::Volume& vol, int extra, Traced& t) {
  const int n = static_cast<int>(t.sb.size());
  t.footprint.assign(static_cast<size_t>(vol.nx) * vol.ny, 0);
  for (int kk = extra; kk < n - extra; ++kk)
    if (const auto& b = t.sb[static_cast<size_t>(kk)]; b.valid)
      for (int j = 0; j < b.wny; ++j)
        for (int i = 0; i < b.wnx; ++i)
          if (b.mask[static_cast<size_t>(j) * b.wnx + i])
            t.footprint[static_cast<size_t>(b.wy0 + j) * vol.nx + (b.wx0 + i)] = 1;
}

// Pass 1 for one level: its slices traced (shared ones reused), the middle repaired, the
// slices made consistent, its footprint.
Traced traceLevel(const spine::Volume& vol, const spine::SliceParams& sp, const LevelLocation& l,
                  const std::array<double, 3>& c, std::pair<int, int> range, int extra,
                  const std::vector<uint8_t>& wanted, const std::vector<spine::SliceBody>& shared,
                  LevelSegmentation& entry) {
  const auto [k0, k1] = range;
  const int n = k1 - k0 + 1;
  Traced t;
  t.loc = &l;
  t.k0 = k0;
  t.sb.resize(static_cast<size_t>(std::max(0, n)));
  parallelFor(n, [&, k0 = k0](int kk) {
    const int k = k0 + kk;
    if (wanted[static_cast<size_t>(k)]) {
      t.sb[static_cast<size_t>(kk)] = shared[static_cast<size_t>(k)];
      return;
    }
    t.sb[static_cast<size_t>(kk)] = spine::analyseSlice(vol, k, c[0], c[1], sp, true);
  });
  entry.repaired_slices += repairMiddleSlices(vol, sp, l, c, extra, t);
  consistentSlices(t.sb, vol.sx, vol.sy, vol.sz, entry.repaired_slices);
  levelFootprint(vol, extra, t);
  return t;
}

// Pass 2's fill: each level's traced voxels between its column ends. A slice through a tilted
// endplate cuts the body only in part (a crescent beside the disc), which the slice finder
// rejects as too thin. Where a slice has no trace and the body's column ends enclose part (not
// all) of the nearest trace towards the body's middle (within kLendReachMm), that trace lends
// its shape, cut to those columns.
void fillBetweenEnds(const spine::Volume& vol, const std::map<int, Traced>& traced,
                     const std::map<int, ColumnBounds>& bounds, uint8_t* out) {
  const int lend_reach = std::max(1, static_cast<int>(std::lround(kLendReachMm / vol.sz)));
  for (const auto& entry : traced) {
    const int label = entry.first;
    const auto& t = entry.second;  // a plain reference: lambdas cannot capture structured bindings (C++17)
    const auto& bd = bounds.at(label);
    const int n = static_cast<int>(t.sb.size());
    parallelFor(n, [&](int kk) {
      const int k = t.k0 + kk;
      const spine::SliceBody* s = &t.sb[static_cast<size_t>(kk)];
      if (!s->valid) {
        const int inward = kk < n / 2 ? 1 : -1;
        s = nullptr;
        for (int d = 1; d <= lend_reach && !s; ++d) {
          const int k2 = kk + inward * d;
          if (k2 < 0 || k2 >= n) break;
          if (t.sb[static_cast<size_t>(k2)].valid) s = &t.sb[static_cast<size_t>(k2)];
        }
        if (!s) return;
        long all = 0, in = 0;
        for (int j = 0; j < s->wny; ++j)
          for (int i = 0; i < s->wnx; ++i) {
            if (!s->mask[static_cast<size_t>(j) * s->wnx + i]) continue;
            const size_t col = static_cast<size_t>(s->wy0 + j) * vol.nx + (s->wx0 + i);
            ++all;
            in += k >= bd.lo[col] && k <= bd.hi[col];
          }
        if (in >= kFlatDiscShare * all) return;  // ends enclosing all of it: a flat disc slice, not a body
      }
      for (int j = 0; j < s->wny; ++j)
        for (int i = 0; i < s->wnx; ++i) {
          if (!s->mask[static_cast<size_t>(j) * s->wnx + i]) continue;
          const size_t col = static_cast<size_t>(s->wy0 + j) * vol.nx + (s->wx0 + i);
          if (k < bd.lo[col] || k > bd.hi[col]) continue;
          size_t q = static_cast<size_t>(k) * vol.nx * vol.ny + col;
          if (!out[q]) out[q] = static_cast<uint8_t>(label);  // one slice per task: no race
        }
    });
  }
}

}  // namespace

SegmentResult segment(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p) {
  checkLocalizeFitsScan(scan, loc);
  const auto method = methods::parseSegment(p.method);
  if (!method)
    throw UsageError("segment method '" + p.method +
                     "' is unknown (methods: " + methods::listed(methods::names(methods::Segment{})) + ")");
  if (*method != methods::Segment::Classical) return segmentLearned(scan, loc, p);
  SegmentResult res;
  res.method = "classical-v1";
  const auto& cc = canonicalOf(scan);
  const AxisMap& am = cc.map;
  const auto& can = cc.image;
  auto vol = spine::view(can.GetPointer());
  auto lab = emptyLabelsLike(can);
  uint8_t* out = lab->GetBufferPointer();
  const spine::SliceParams sp = spine::sliceParamsFor(vol);
  // Centreline (physical) -> canonical index-space mm, for the window centre per slice.
  auto toCan = [&](const std::array<double, 3>& w) { return toCanonicalFrame(can.GetPointer(), vol, w); };
  CentreLine cl;
  for (const auto& q : loc.centerline) cl.pts.push_back(toCan(q));
  const int extra = static_cast<int>(std::ceil(kDiscReachMm / vol.sz));
  // Pass 1: each level's body traced slice by slice, over its slab plus the discs beside it.
  std::vector<std::pair<int, int>> ranges;  // per non-missing level, in loc.levels order
  std::vector<uint8_t> wanted;
  levelRanges(vol, loc, cl, extra, toCan, ranges, wanted);
  const auto shared = traceSharedSlices(vol, cl, wanted, sp);
  std::map<int, Traced> traced;
  std::vector<LevelSegmentation> entries;
  size_t ri = 0;
  for (const auto& l : loc.levels) {
    entries.push_back(levelEntry(l, loc));
    if (l.status == LevelStatus::Missing) continue;
    traced[l.label] =
        traceLevel(vol, sp, l, toCan(l.center_mm), ranges[ri++], extra, wanted, shared, entries.back());
  }
  // Pass 2: where each body ends, column by column (endplates are concave, tilted and not
  // parallel in a wedge-shaped L5), then the voxels between those ends.
  std::map<int, const std::vector<uint8_t>*> footprints;
  for (const auto& [label, t] : traced) footprints[label] = &t.footprint;
  fillBetweenEnds(vol, traced, endplateBounds(vol, can.GetPointer(), loc, footprints), out);
  res.levels = entries;
  std::vector<int> found;
  for (const auto& l : res.levels)
    if (l.status != LevelStatus::Missing) found.push_back(l.label);
  smoothLabels(out, vol, found, 1.0);
  finishSegmentation(res, lab.GetPointer(), am, p.fracture_ratio);
  return res;
}

}  // namespace ctbmd
