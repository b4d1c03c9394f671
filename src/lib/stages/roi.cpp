// roi-extract: trabecular regions by named, versioned protocols.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/methods.hpp"
#include "ctbmd/stages.hpp"
#include "internal/label_map.hpp"
#include "internal/net_inputs.hpp"
#include "internal/raster2d.hpp"
#include "internal/spine.hpp"

namespace ctbmd {

using nlohmann::json;

json roiProtocols() {
  return {{"ellipse-s1",
           {{"version", 1},
            {"definition",
             "On each axial slice within +-4.5 mm of the body's centre (the central 9 mm), an ellipse "
             "centred on the body's centroid in that slice, short (antero-posterior) semi-axis 20 % of "
             "the body's widest left-right row, area 30 % of the body's area in that slice, clipped to "
             "the body."},
            {"source",
             "low-dose CT trabecular ROI protocol of the opportunistic-BMD literature (elliptical "
             "ROI, 30 % of body area, central 9 mm)"}}},
          {"erode-4mm",
           {{"version", 1},
            {"definition",
             "The whole body mask eroded with a box structuring element of max(2, round(4 mm / spacing)) "
             "voxels per axis, anchored as scipy.ndimage anchors even sizes (offsets -n/2 .. n/2-1), in "
             "the image's storage order. At 3 mm voxels this is one erosion by a 2x2x2 block."},
            {"source", "TotalSegmentator spine report convention (vertebral body HU after 4 mm erosion)"}}},
          {"mosaic-392",
           {{"version", 1},
            {"definition",
             "The level's centre slice, one slice above and two below; a 196x196-pixel crop of each, "
             "centred on the body's centre of mass in that slice, tiled counter-clockwise from the top "
             "left (centre, above, below-1, below-2) into one 392x392 image. Statistics are over the "
             "body mask eroded by 2 mm on those four slices."},
            {"source", "input of the published mosaic CNN BMD regressor"}}}};
}

RoiStats computeStats(const std::vector<float>& values, double voxel_volume_mm3) {
  RoiStats s;
  s.voxels = static_cast<long>(values.size());
  s.volume_mm3 = values.size() * voxel_volume_mm3;
  if (values.empty()) return s;
  std::vector<float> v = values;
  std::sort(v.begin(), v.end());
  double sum = 0, sq = 0;
  for (float x : v) sum += x;
  s.mean_hu = sum / v.size();
  for (float x : v) sq += (x - s.mean_hu) * (x - s.mean_hu);
  s.sd_hu = v.size() > 1 ? std::sqrt(sq / (v.size() - 1)) : 0.0;
  auto pct = [&](double q) {  // linear interpolation (numpy's default)
    double pos = q * (v.size() - 1);
    size_t lo = static_cast<size_t>(std::floor(pos));
    size_t hi = std::min(v.size() - 1, lo + 1);
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
  };
  s.median_hu = pct(0.5);
  s.p05 = pct(0.05);
  s.p25 = pct(0.25);
  s.p75 = pct(0.75);
  s.p95 = pct(0.95);
  s.min_hu = v.front();
  s.max_hu = v.back();
  return s;
}

namespace {

json statsJson(const RoiStats& s) {
  return {{"mean_hu", s.mean_hu},
          {"median_hu", s.median_hu},
          {"sd_hu", s.sd_hu},
          {"percentiles_hu", {{"p05", s.p05}, {"p25", s.p25}, {"p75", s.p75}, {"p95", s.p95}}},
          {"min_hu", s.min_hu},
          {"max_hu", s.max_hu},
          {"voxels", s.voxels},
          {"volume_mm3", s.volume_mm3}};
}

RoiStats statsFromJson(const json& e) {
  RoiStats s;
  s.mean_hu = e.at("mean_hu").get<double>();
  s.median_hu = e.at("median_hu").get<double>();
  s.sd_hu = e.at("sd_hu").get<double>();
  const json& p = e.at("percentiles_hu");
  s.p05 = p.at("p05").get<double>();
  s.p25 = p.at("p25").get<double>();
  s.p75 = p.at("p75").get<double>();
  s.p95 = p.at("p95").get<double>();
  s.min_hu = e.at("min_hu").get<double>();
  s.max_hu = e.at("max_hu").get<double>();
  s.voxels = e.at("voxels").get<long>();
  s.volume_mm3 = e.at("volume_mm3").get<double>();
  return s;
}

struct Box {
  int lo[3] = {1 << 30, 1 << 30, 1 << 30}, hi[3] = {-1, -1, -1};
};

// Bounding box of every label, in one pass.
std::map<int, Box> labelBoxes(const uint8_t* s, const int N[3]) {
  std::map<int, Box> out;
  std::array<Box*, 256> fast{};
  for (int k = 0; k < N[2]; ++k)
    for (int j = 0; j < N[1]; ++j) {
      const uint8_t* row = s + (static_cast<size_t>(k) * N[1] + j) * N[0];
      for (int i = 0; i < N[0]; ++i) {
        int l = row[i];
        if (!l) continue;
        Box*& b = fast[l];
        if (!b) b = &out[l];
        b->lo[0] = std::min(b->lo[0], i);
        b->hi[0] = std::max(b->hi[0], i);
        b->lo[1] = std::min(b->lo[1], j);
        b->hi[1] = std::max(b->hi[1], j);
        b->lo[2] = std::min(b->lo[2], k);
        b->hi[2] = std::max(b->hi[2], k);
      }
    }
  return out;
}

// Box erosion of (labels == label) in storage index space, restricted to its bounding box.
void erodeBox(const LabelImage* seg, int label, const Box& box, const std::array<int, 3>& n,
              LabelImage* out) {
  auto sz = seg->GetLargestPossibleRegion().GetSize();
  const int N[3] = {static_cast<int>(sz[0]), static_cast<int>(sz[1]), static_cast<int>(sz[2])};
  const uint8_t* s = seg->GetBufferPointer();
  const int* lo = box.lo;
  const int* hi = box.hi;
  if (hi[0] < 0) return;
  int b[3], e[3], d[3];
  for (int a = 0; a < 3; ++a) {
    b[a] = lo[a];
    e[a] = hi[a];
    d[a] = e[a] - b[a] + 1;
  }
  std::vector<uint8_t> m(static_cast<size_t>(d[0]) * d[1] * d[2]);
  auto at = [&](int i, int j, int k) -> uint8_t& {
    return m[(static_cast<size_t>(k) * d[1] + j) * d[0] + i];
  };
  for (int k = 0; k < d[2]; ++k)
    for (int j = 0; j < d[1]; ++j)
      for (int i = 0; i < d[0]; ++i)
        at(i, j, k) = s[(static_cast<size_t>(k + b[2]) * N[1] + (j + b[1])) * N[0] + (i + b[0])] == label;
  // separable min filter per axis; outside the image counts as background
  for (int a = 0; a < 3; ++a) {
    int off_lo = -(n[a] / 2), off_hi = n[a] - 1 - n[a] / 2;
    std::vector<uint8_t> t = m;
    for (int k = 0; k < d[2]; ++k)
      for (int j = 0; j < d[1]; ++j)
        for (int i = 0; i < d[0]; ++i) {
          int idx[3] = {i, j, k};
          uint8_t v = 1;
          for (int o = off_lo; o <= off_hi && v; ++o) {
            int q[3] = {i, j, k};
            q[a] = idx[a] + o;
            if (q[a] < 0 || q[a] >= d[a])
              v = 0;
            else
              v = m[(static_cast<size_t>(q[2]) * d[1] + q[1]) * d[0] + q[0]];
          }
          t[(static_cast<size_t>(k) * d[1] + j) * d[0] + i] = v;
        }
    m.swap(t);
  }
  uint8_t* o = out->GetBufferPointer();
  for (int k = 0; k < d[2]; ++k)
    for (int j = 0; j < d[1]; ++j)
      for (int i = 0; i < d[0]; ++i)
        if (at(i, j, k))
          o[(static_cast<size_t>(k + b[2]) * N[1] + (j + b[1])) * N[0] + (i + b[0])] =
              static_cast<uint8_t>(label);
}

}  // namespace

json RoiResult::toJson() const {
  json lv = json::object();
  for (const auto& l : levels) {
    json e = {{"label", l.label}, {"status", l.status}, {"usable", l.usable}, {"flags", l.flags}};
    json s = statsJson(l.stats);
    e.update(s);
    lv[l.name] = e;
  }
  json mos = json::array();
  for (const auto& m : mosaics) mos.push_back(m.first);
  json j = {{"protocol", protocol}, {"protocol_info", protocol_info}, {"levels", lv}, {"mosaics", mos}};
  if (!crops3d.empty()) {
    json cr = json::array();
    for (const auto& c : crops3d) cr.push_back(c.first);
    j["crops3d"] = cr;
  }
  return j;
}

RoiResult RoiResult::fromJson(const json& j, const std::string& file) {
  RoiResult r;
  try {
    r.protocol = j.at("protocol").get<std::string>();
    r.protocol_info = j.value("protocol_info", json::object());
    for (int label : kReportedLevels) {
      LevelRoi l;
      l.label = label;
      l.name = levelName(label);
      const json& e = j.at("levels").at(l.name);
      l.status = parseLevelStatus(e.at("status").get<std::string>(), file);
      l.usable = e.at("usable").get<bool>();
      l.flags = e.value("flags", std::vector<std::string>{});
      l.stats = statsFromJson(e);
      r.levels.push_back(l);
    }
  } catch (const json::exception& e) {
    throw InputError("roi JSON " + quotedFile(file) + "is missing fields or has wrong types (" +
                     jsonProblem(e) + "); was it written by ctbmd-roi-extract? Run ctbmd-roi-extract again");
  }
  // Value sanity: what ctbmd-roi-extract cannot have written.
  for (const auto& l : r.levels) {
    const auto& st = l.stats;
    std::string bad;
    if (st.voxels < 0)
      bad = "a negative voxel count";
    else if (l.usable && st.voxels == 0)
      bad = "usable with 0 voxels";
    else if (!std::isfinite(st.mean_hu) || !std::isfinite(st.median_hu) || !std::isfinite(st.sd_hu))
      bad = "non-finite HU";
    else if (st.sd_hu < 0)
      bad = "a negative SD";
    if (!bad.empty())
      throw InputError((file.empty() ? std::string("roi JSON") : "roi JSON '" + file + "'") + ": level " +
                       l.name + " has " + bad +
                       ": the file was edited or damaged; run ctbmd-roi-extract again");
  }
  return r;
}

const LevelRoi* RoiResult::find(int label) const {
  for (const auto& l : levels)
    if (l.label == label) return &l;
  return nullptr;
}

namespace {
// 3-D HU crops centred on each level's body centroid (canonical frame, trilinear).
void cropBodies(const Scan& scan, const SegmentResult& seg, const RoiParams& p, RoiResult& res) {
  const auto& cc = canonicalOf(scan);
  auto cseg = toCanonicalView<uint8_t>(seg.labels.GetPointer(), cc.map);
  auto v = spine::view(cc.image.GetPointer());
  const uint8_t* s = cseg->GetBufferPointer();
  std::map<int, std::array<double, 4>> acc;
  size_t q = 0;
  for (int k = 0; k < v.nz; ++k)
    for (int j = 0; j < v.ny; ++j)
      for (int i = 0; i < v.nx; ++i, ++q)
        if (s[q]) {
          auto& a = acc[s[q]];
          a[0] += v.x(i), a[1] += v.y(j), a[2] += v.z(k), a[3] += 1;
        }
  netin::PatchSpec ps;
  ps.spacing_mm = p.crop3d_spacing_mm;
  ps.size = {p.crop3d_size[0], p.crop3d_size[1], p.crop3d_size[2]};
  ps.normalisation = "none";
  for (int label : kReportedLevels) {
    auto it = acc.find(label);
    if (it == acc.end()) continue;
    const auto& a = it->second;
    double c[3] = {a[0] / a[3], a[1] / a[3], a[2] / a[3]};
    auto img = FloatImage::New();
    FloatImage::SizeType sz;
    sz[0] = static_cast<size_t>(ps.size[2]);
    sz[1] = static_cast<size_t>(ps.size[1]);
    sz[2] = static_cast<size_t>(ps.size[0]);
    img->SetRegions(FloatImage::RegionType(sz));
    FloatImage::SpacingType sp;
    sp.Fill(ps.spacing_mm);
    img->SetSpacing(sp);
    img->SetDirection(cc.image->GetDirection());
    // origin: physical position of the crop's first voxel
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = (c[0] - (ps.size[2] / 2.0 - 0.5) * ps.spacing_mm - v.ox) / v.sx;
    ci[1] = (c[1] - (ps.size[1] / 2.0 - 0.5) * ps.spacing_mm - v.oy) / v.sy;
    ci[2] = (c[2] - (ps.size[0] / 2.0 - 0.5) * ps.spacing_mm - v.oz) / v.sz;
    FloatImage::PointType origin;
    cc.image->TransformContinuousIndexToPhysicalPoint(ci, origin);
    img->SetOrigin(origin);
    img->Allocate();
    netin::volumePatch(v, c[0], c[1], c[2], ps, img->GetBufferPointer());
    res.crops3d.emplace_back(levelName(label), img);
  }
}
}  // namespace

namespace {

// ellipse-s1: the slices within this distance of the body's centre slice (mm): the central 9 mm.
constexpr double kEllipseHalfSlabMm = 4.5;
// ellipse-s1: short (antero-posterior) semi-axis as a fraction of the widest left-right row;
// ellipse area as a fraction of the body's area in the slice.
constexpr double kEllipseShortAxisOfWidth = 0.2, kEllipseAreaFraction = 0.3;
// erode-4mm: the erosion's extent per axis (mm), at least kErodeMinVoxels voxels.
constexpr double kErodeMm = 4.0;
constexpr int kErodeMinVoxels = 2;
// mosaic-392: the tile size (px) and the image (2 x 2 tiles); the ROI erosion radius (mm).
constexpr int kMosaicTile = 196, kMosaicSize = 2 * kMosaicTile;
constexpr double kMosaicErodeMm = 2.0;
// A pixel outside the scan in a mosaic tile: air.
constexpr float kAirHu = -1024.f;

using Protocol = methods::Roi;
Protocol parseProtocol(const std::string& name) {
  if (const auto p = methods::parseRoi(name)) return *p;
  throw UsageError("unknown ROI protocol '" + name +
                   "' (protocols: " + methods::listed(methods::names(Protocol{})) + ")");
}

// erode-4mm, in the image's storage order (as TotalSegmentator's report erodes).
void erodeRoi(const SegmentResult& seg, const CtImage::SpacingType& sp, LabelImage* roi) {
  std::array<int, 3> n;
  for (int a = 0; a < 3; ++a)
    n[a] = std::max(kErodeMinVoxels, static_cast<int>(std::lround(kErodeMm / sp[a])));
  auto sz = seg.labels->GetLargestPossibleRegion().GetSize();
  const int N[3] = {static_cast<int>(sz[0]), static_cast<int>(sz[1]), static_cast<int>(sz[2])};
  auto boxes = labelBoxes(seg.labels->GetBufferPointer(), N);
  for (int label : kReportedLevels)
    if (boxes.count(label)) erodeBox(seg.labels.GetPointer(), label, boxes[label], n, roi);
}

// One labelled body on the canonical grid (k superior): its bounding box and its axial slices.
struct AxialBody {
  const uint8_t* s;
  int nx, ny, nz;
  double sx, sy, sz;
  int label;
  Box bb;
  size_t at(int i, int j, int k) const { return (static_cast<size_t>(k) * ny + j) * nx + i; }
  // The body's centre slice (mean k of its voxels); false when it has none.
  bool centreSlice(double& kc) const {
    kc = 0;
    long cnt = 0;
    for (int k = bb.lo[2]; k <= bb.hi[2]; ++k)
      for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
        for (int i = bb.lo[0]; i <= bb.hi[0]; ++i)
          if (s[at(i, j, k)] == label) {
            ++cnt;
            kc += k;
          }
    if (cnt == 0) return false;
    kc /= cnt;
    return true;
  }
  // Slice k: voxel count, centroid (mx, my; index units) and the widest left-right row (voxels).
  long slice(int k, double& mx, double& my, int& width) const {
    mx = my = 0;
    long n = 0;
    width = 0;
    if (k < bb.lo[2] || k > bb.hi[2]) return n;
    for (int j = bb.lo[1]; j <= bb.hi[1]; ++j) {
      int rowmin = nx, rowmax = -1;
      for (int i = bb.lo[0]; i <= bb.hi[0]; ++i)
        if (s[at(i, j, k)] == label) {
          mx += i;
          my += j;
          ++n;
          rowmin = std::min(rowmin, i);
          rowmax = std::max(rowmax, i);
        }
      if (rowmax >= 0) width = std::max(width, rowmax - rowmin + 1);
    }
    if (n) {
      mx /= n;
      my /= n;
    }
    return n;
  }
};

// ellipse-s1 (roiProtocols()): an ellipse per slice of the central 9 mm, clipped to the body.
void ellipseS1(const AxialBody& body, double kc, uint8_t* o) {
  const auto& bb = body.bb;
  for (int k = bb.lo[2]; k <= bb.hi[2]; ++k) {
    if (std::abs(k - kc) * body.sz > kEllipseHalfSlabMm + 1e-6) continue;
    double mx, my;
    int w;
    long n = body.slice(k, mx, my, w);
    if (n == 0) continue;
    double area = n * body.sx * body.sy;
    double b = kEllipseShortAxisOfWidth * w * body.sx;    // short semi-axis (AP), mm
    double a = kEllipseAreaFraction * area / (M_PI * b);  // long semi-axis (LR), mm
    for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
      for (int i = bb.lo[0]; i <= bb.hi[0]; ++i) {
        size_t q = body.at(i, j, k);
        if (body.s[q] != body.label) continue;
        double dx = (i - mx) * body.sx / a, dy = (j - my) * body.sy / b;
        if (dx * dx + dy * dy <= 1.0) o[q] = static_cast<uint8_t>(body.label);
      }
  }
}

// The body in slice k eroded by kMosaicErodeMm (a disk), into o.
void erodedSlice(const AxialBody& body, int k, uint8_t* o) {
  const auto& bb = body.bb;
  const double sx = body.sx, sy = body.sy;
  int er_i = std::max(1, static_cast<int>(std::lround(kMosaicErodeMm / sx))),
      er_j = std::max(1, static_cast<int>(std::lround(kMosaicErodeMm / sy)));
  const double r2 = kMosaicErodeMm * kMosaicErodeMm + 1e-9;
  for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
    for (int i = bb.lo[0]; i <= bb.hi[0]; ++i) {
      if (body.s[body.at(i, j, k)] != body.label) continue;
      bool in = true;
      for (int dj = -er_j; dj <= er_j && in; ++dj)
        for (int di = -er_i; di <= er_i && in; ++di) {
          if ((di * sx) * (di * sx) + (dj * sy) * (dj * sy) > r2) continue;
          int ii = i + di, jj = j + dj;
          if (ii < 0 || jj < 0 || ii >= body.nx || jj >= body.ny || body.s[body.at(ii, jj, k)] != body.label)
            in = false;
        }
      if (in) o[body.at(i, j, k)] = static_cast<uint8_t>(body.label);
    }
}

// mosaic-392 (roiProtocols()): four tiles of the centre slice and its neighbours, and the
// eroded body on those slices as the ROI.
Slice2D::Pointer mosaic392(const AxialBody& body, double kc, const CtImage* cct, uint8_t* o) {
  const int k0 = static_cast<int>(std::lround(kc));
  // canonical k grows superior: "above" = k0 + 1
  const int ks[4] = {k0, k0 + 1, k0 - 1, k0 - 2};
  auto mosaic = Slice2D::New();
  Slice2D::SizeType msz;
  msz[0] = kMosaicSize;
  msz[1] = kMosaicSize;
  mosaic->SetRegions(Slice2D::RegionType(msz));
  Slice2D::SpacingType msp;
  msp[0] = body.sx;
  msp[1] = body.sy;
  mosaic->SetSpacing(msp);
  mosaic->Allocate();
  mosaic->FillBuffer(kAirHu);
  // tiles counter-clockwise from top-left: TL, BL, BR, TR
  const int tx[4] = {0, 0, kMosaicTile, kMosaicTile}, ty[4] = {0, kMosaicTile, kMosaicTile, 0};
  for (int t = 0; t < 4; ++t) {
    const int k = ks[t];
    if (k < 0 || k >= body.nz) continue;
    double mx, my;
    int w;
    if (body.slice(k, mx, my, w) == 0) {  // no body in that slice: the centre slice's centroid
      double mx0, my0;
      body.slice(k0, mx0, my0, w);
      mx = mx0;
      my = my0;
    }
    const int half = kMosaicTile / 2;
    const int ci = static_cast<int>(std::lround(mx)) - half, cj = static_cast<int>(std::lround(my)) - half;
    for (int j = 0; j < kMosaicTile; ++j)
      for (int i = 0; i < kMosaicTile; ++i) {
        const int ii = ci + i, jj = cj + j;
        float v = kAirHu;
        if (ii >= 0 && jj >= 0 && ii < body.nx && jj < body.ny)
          v = cct->GetBufferPointer()[body.at(ii, jj, k)];
        Slice2D::IndexType idx;
        idx[0] = tx[t] + i;
        idx[1] = ty[t] + j;
        mosaic->SetPixel(idx, v);
      }
    erodedSlice(body, k, o);
  }
  return mosaic;
}

// ellipse-s1 and mosaic-392: axial work on the canonical grid, the ROI mapped back to the
// input grid.
LabelImage::Pointer axialRoi(const Scan& scan, const SegmentResult& seg, Protocol proto, RoiResult& res) {
  const CtImage* ct = scan.image.GetPointer();
  AxisMap am = canonicalAxisMap(ct);
  auto cseg = toCanonicalView<uint8_t>(seg.labels.GetPointer(), am);
  auto cct = proto == Protocol::Mosaic392 ? canonicalOf(scan).image : CtImage::Pointer();
  auto croi = emptyLabelsLike(cseg);
  auto sz = cseg->GetLargestPossibleRegion().GetSize();
  AxialBody body{cseg->GetBufferPointer(),
                 static_cast<int>(sz[0]),
                 static_cast<int>(sz[1]),
                 static_cast<int>(sz[2]),
                 cseg->GetSpacing()[0],
                 cseg->GetSpacing()[1],
                 cseg->GetSpacing()[2],
                 0,
                 {}};
  uint8_t* o = croi->GetBufferPointer();
  const int NN[3] = {body.nx, body.ny, body.nz};
  auto boxes = labelBoxes(body.s, NN);
  for (int label : kReportedLevels) {
    if (!boxes.count(label)) continue;
    body.label = label;
    body.bb = boxes[label];
    double kc = 0;
    if (!body.centreSlice(kc)) continue;
    if (proto == Protocol::EllipseS1)
      ellipseS1(body, kc, o);
    else
      res.mosaics.emplace_back(levelName(label), mosaic392(body, kc, cct.GetPointer(), o));
  }
  return fromCanonicalView<uint8_t>(croi.GetPointer(), am);
}

// Per level: the ROI's statistics on the input grid and its validity (flags from the
// segmentation and localize; usable = found with no flag).
void levelRois(const CtImage* ct, const LabelImage* roi, const SegmentResult& seg, long min_voxels,
               RoiResult& res) {
  const auto sp = ct->GetSpacing();
  const double voxel_mm3 = sp[0] * sp[1] * sp[2];
  std::map<int, std::vector<float>> values;
  const uint8_t* r = roi->GetBufferPointer();
  const int16_t* h = ct->GetBufferPointer();
  size_t nvox = roi->GetLargestPossibleRegion().GetNumberOfPixels();
  for (size_t q = 0; q < nvox; ++q)
    if (r[q]) values[r[q]].push_back(h[q]);
  for (int label : kReportedLevels) {
    LevelRoi l;
    l.label = label;
    l.name = levelName(label);
    const LevelSegmentation* ls = seg.find(label);
    l.status = ls ? ls->status : LevelStatus::Missing;
    l.stats = computeStats(values[label], voxel_mm3);
    if (l.status == LevelStatus::Partial) l.flags.push_back("partial");
    if (ls && ls->suspected_fracture) l.flags.push_back("suspected_fracture");
    if (ls && ls->suspected_merge) l.flags.push_back("suspected_merge");
    if (ls && ls->metal) l.flags.push_back("metal");
    if (ls)
      for (const auto& f : ls->naming_flags) l.flags.push_back(f);
    if (l.status != LevelStatus::Missing && l.stats.voxels < min_voxels) l.flags.push_back("too_small");
    if (l.status == LevelStatus::Missing) l.flags.push_back("missing");
    l.usable = l.status == LevelStatus::Found && l.flags.empty();
    res.levels.push_back(l);
  }
}

}  // namespace

RoiResult extractRoi(const Scan& scan, const SegmentResult& seg, const RoiParams& p) {
  const Protocol proto = parseProtocol(p.protocol);
  if (!sameGrid(scan.image.GetPointer(), seg.labels.GetPointer(), 1e-3))
    throw InputError("the segmentation is not on the CT's grid; was it made from another scan?");
  RoiResult res;
  res.protocol = p.protocol;
  res.protocol_info = roiProtocols()[p.protocol];
  const CtImage* ct = scan.image.GetPointer();
  LabelImage::Pointer roi;
  if (proto == Protocol::Erode4mm) {
    roi = emptyLabelsLike(seg.labels);
    erodeRoi(seg, ct->GetSpacing(), roi.GetPointer());
  } else {
    roi = axialRoi(scan, seg, proto, res);
  }
  levelRois(ct, roi.GetPointer(), seg, p.min_voxels, res);
  res.roi = roi;
  if (p.crop3d) cropBodies(scan, seg, p, res);
  return res;
}

}  // namespace ctbmd
