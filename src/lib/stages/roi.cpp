// roi-extract: trabecular regions by named, versioned protocols.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"
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

RoiResult extractRoi(const Scan& scan, const SegmentResult& seg, const RoiParams& p) {
  auto protos = roiProtocols();
  if (!protos.contains(p.protocol))
    throw UsageError("unknown ROI protocol '" + p.protocol +
                     "' (protocols: ellipse-s1, erode-4mm, mosaic-392)");
  if (!sameGrid(scan.image.GetPointer(), seg.labels.GetPointer(), 1e-3))
    throw InputError("the segmentation is not on the CT's grid; was it made from another scan?");
  RoiResult res;
  res.protocol = p.protocol;
  res.protocol_info = protos[p.protocol];
  const CtImage* ct = scan.image.GetPointer();
  auto roi = LabelImage::New();
  roi->CopyInformation(seg.labels);
  roi->SetRegions(seg.labels->GetLargestPossibleRegion());
  roi->Allocate();
  roi->FillBuffer(0);
  const auto sp = ct->GetSpacing();
  const double voxel_mm3 = sp[0] * sp[1] * sp[2];

  if (p.protocol == "erode-4mm") {
    std::array<int, 3> n;
    for (int a = 0; a < 3; ++a) n[a] = std::max(2, static_cast<int>(std::lround(4.0 / sp[a])));
    auto sz = seg.labels->GetLargestPossibleRegion().GetSize();
    const int N[3] = {static_cast<int>(sz[0]), static_cast<int>(sz[1]), static_cast<int>(sz[2])};
    auto boxes = labelBoxes(seg.labels->GetBufferPointer(), N);
    for (int label : kReportedLevels)
      if (boxes.count(label)) erodeBox(seg.labels.GetPointer(), label, boxes[label], n, roi.GetPointer());
  } else {
    // Axial work in canonical order.
    AxisMap am = canonicalAxisMap(ct);
    auto cseg = toCanonicalView<uint8_t>(seg.labels.GetPointer(), am);
    auto cct = p.protocol == "mosaic-392" ? canonicalOf(scan).image : CtImage::Pointer();
    auto croi = LabelImage::New();
    croi->CopyInformation(cseg);
    croi->SetRegions(cseg->GetLargestPossibleRegion());
    croi->Allocate();
    croi->FillBuffer(0);
    auto sz = cseg->GetLargestPossibleRegion().GetSize();
    const int nx = static_cast<int>(sz[0]), ny = static_cast<int>(sz[1]), nz = static_cast<int>(sz[2]);
    const double sx = cseg->GetSpacing()[0], sy = cseg->GetSpacing()[1], szz = cseg->GetSpacing()[2];
    const uint8_t* s = cseg->GetBufferPointer();
    uint8_t* o = croi->GetBufferPointer();
    const int NN[3] = {nx, ny, nz};
    auto boxes = labelBoxes(s, NN);
    for (int label : kReportedLevels) {
      if (!boxes.count(label)) continue;
      const Box& bb = boxes[label];
      // the body's centre slice
      double kc = 0;
      long cnt = 0;
      for (int k = bb.lo[2]; k <= bb.hi[2]; ++k)
        for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
          for (int i = bb.lo[0]; i <= bb.hi[0]; ++i)
            if (s[(static_cast<size_t>(k) * ny + j) * nx + i] == label) {
              ++cnt;
              kc += k;
            }
      if (cnt == 0) continue;
      kc /= cnt;
      auto slice = [&](int k, double& mx, double& my, int& width) {
        mx = my = 0;
        long n = 0;
        width = 0;
        if (k < bb.lo[2] || k > bb.hi[2]) return n;
        for (int j = bb.lo[1]; j <= bb.hi[1]; ++j) {
          int rowmin = nx, rowmax = -1;
          for (int i = bb.lo[0]; i <= bb.hi[0]; ++i)
            if (s[(static_cast<size_t>(k) * ny + j) * nx + i] == label) {
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
      };
      if (p.protocol == "ellipse-s1") {
        for (int k = bb.lo[2]; k <= bb.hi[2]; ++k) {
          if (std::abs(k - kc) * szz > 4.5 + 1e-6) continue;
          double mx, my;
          int w;
          long n = slice(k, mx, my, w);
          if (n == 0) continue;
          double area = n * sx * sy;
          double b = 0.2 * w * sx;             // short semi-axis (AP), mm
          double a = 0.3 * area / (M_PI * b);  // long semi-axis (LR), mm
          for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
            for (int i = bb.lo[0]; i <= bb.hi[0]; ++i) {
              size_t q = (static_cast<size_t>(k) * ny + j) * nx + i;
              if (s[q] != label) continue;
              double dx = (i - mx) * sx / a, dy = (j - my) * sy / b;
              if (dx * dx + dy * dy <= 1.0) o[q] = static_cast<uint8_t>(label);
            }
        }
      } else {  // mosaic-392
        int k0 = static_cast<int>(std::lround(kc));
        // canonical k grows superior: "above" = k0 + 1
        int ks[4] = {k0, k0 + 1, k0 - 1, k0 - 2};
        auto mosaic = Slice2D::New();
        Slice2D::SizeType msz;
        msz[0] = 392;
        msz[1] = 392;
        mosaic->SetRegions(Slice2D::RegionType(msz));
        Slice2D::SpacingType msp;
        msp[0] = sx;
        msp[1] = sy;
        mosaic->SetSpacing(msp);
        mosaic->Allocate();
        mosaic->FillBuffer(-1024.f);
        // tiles counter-clockwise from top-left: TL, BL, BR, TR
        const int tx[4] = {0, 0, 196, 196}, ty[4] = {0, 196, 196, 0};
        for (int t = 0; t < 4; ++t) {
          int k = ks[t];
          if (k < 0 || k >= nz) continue;
          double mx, my;
          int w;
          if (slice(k, mx, my, w) == 0) {
            double mx0, my0;
            slice(k0, mx0, my0, w);
            mx = mx0;
            my = my0;
          }
          int ci = static_cast<int>(std::lround(mx)) - 98, cj = static_cast<int>(std::lround(my)) - 98;
          for (int j = 0; j < 196; ++j)
            for (int i = 0; i < 196; ++i) {
              int ii = ci + i, jj = cj + j;
              float v = -1024.f;
              if (ii >= 0 && jj >= 0 && ii < nx && jj < ny)
                v = cct->GetBufferPointer()[(static_cast<size_t>(k) * ny + jj) * nx + ii];
              Slice2D::IndexType idx;
              idx[0] = tx[t] + i;
              idx[1] = ty[t] + j;
              mosaic->SetPixel(idx, v);
            }
          // ROI: body eroded by 2 mm in this slice
          r2::Grid2 g{nx, ny, sx, sy};
          (void)g;
          int er_i = std::max(1, static_cast<int>(std::lround(2.0 / sx))),
              er_j = std::max(1, static_cast<int>(std::lround(2.0 / sy)));
          for (int j = bb.lo[1]; j <= bb.hi[1]; ++j)
            for (int i = bb.lo[0]; i <= bb.hi[0]; ++i) {
              if (s[(static_cast<size_t>(k) * ny + j) * nx + i] != label) continue;
              bool in = true;
              for (int dj = -er_j; dj <= er_j && in; ++dj)
                for (int di = -er_i; di <= er_i && in; ++di) {
                  if ((di * sx) * (di * sx) + (dj * sy) * (dj * sy) > 4.0 + 1e-9) continue;
                  int ii = i + di, jj = j + dj;
                  if (ii < 0 || jj < 0 || ii >= nx || jj >= ny ||
                      s[(static_cast<size_t>(k) * ny + jj) * nx + ii] != label)
                    in = false;
                }
              if (in) o[(static_cast<size_t>(k) * ny + j) * nx + i] = static_cast<uint8_t>(label);
            }
        }
        res.mosaics.emplace_back(levelName(label), mosaic);
      }
    }
    roi = fromCanonicalView<uint8_t>(croi.GetPointer(), am);
  }

  // Statistics per level on the input grid.
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
    if (l.status != LevelStatus::Missing && l.stats.voxels < p.min_voxels) l.flags.push_back("too_small");
    if (l.status == LevelStatus::Missing) l.flags.push_back("missing");
    l.usable = l.status == LevelStatus::Found && l.flags.empty();
    res.levels.push_back(l);
  }
  res.roi = roi;
  if (p.crop3d) cropBodies(scan, seg, p, res);
  return res;
}

}  // namespace ctbmd
