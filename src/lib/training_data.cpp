// Training samples for the learned stages (see ctbmd/training_data.hpp).
#include "ctbmd/training_data.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/random.hpp"
#include "internal/net_inputs.hpp"
#include "internal/spine.hpp"

namespace ctbmd::training {

namespace {

struct Canon {
  CtImage::Pointer ct;
  LabelImage::Pointer lab;
  spine::Volume v;
  std::map<int, std::array<double, 3>> ctd;  // canonical frame
};

Canon canon(const VerseCase& c) {
  Canon k;
  auto m = canonicalAxisMap(c.scan.image.GetPointer());
  k.ct = toCanonical<int16_t>(c.scan.image.GetPointer(), m);
  k.lab = toCanonical<uint8_t>(c.bodies.GetPointer(), m);
  k.v = spine::view(k.ct.GetPointer());
  for (const auto& [label, p] : c.centroids) {
    CtImage::PointType pt;
    for (int a = 0; a < 3; ++a) pt[a] = p[a];
    itk::ContinuousIndex<double, 3> ci;
    k.ct->TransformPhysicalPointToContinuousIndex(pt, ci);
    k.ctd[label] = {k.v.x(ci[0]), k.v.y(ci[1]), k.v.z(ci[2])};
  }
  return k;
}

// Body extent (canonical z, mm) of the labels in [lo, hi].
bool zExtent(const Canon& k, int label, double& zmin, double& zmax) {
  const uint8_t* l = k.lab->GetBufferPointer();
  const size_t plane = static_cast<size_t>(k.v.nx) * k.v.ny;
  int kmin = -1, kmax = -1;
  for (int z = 0; z < k.v.nz; ++z) {
    const uint8_t* p = l + static_cast<size_t>(z) * plane;
    if (std::find(p, p + plane, static_cast<uint8_t>(label)) != p + plane) {
      if (kmin < 0) kmin = z;
      kmax = z;
    }
  }
  if (kmin < 0) return false;
  zmin = k.v.z(kmin) - k.v.sz / 2;
  zmax = k.v.z(kmax) + k.v.sz / 2;
  return true;
}

// Spine centre (x, y) at height z, linear between the body centroids sorted by z.
std::array<double, 2> centreAt(const std::vector<std::array<double, 3>>& pts, double z) {
  if (pts.front()[2] >= z) return {pts.front()[0], pts.front()[1]};
  if (pts.back()[2] <= z) return {pts.back()[0], pts.back()[1]};
  for (size_t i = 1; i < pts.size(); ++i)
    if (pts[i][2] >= z) {
      double t = (z - pts[i - 1][2]) / (pts[i][2] - pts[i - 1][2]);
      return {pts[i - 1][0] + t * (pts[i][0] - pts[i - 1][0]),
              pts[i - 1][1] + t * (pts[i][1] - pts[i - 1][1])};
    }
  return {pts.back()[0], pts.back()[1]};
}

}  // namespace

void addSegmentSamples(const VerseCase& c, const SegmentSampling& s, Samples& out) {
  Canon k = canon(c);
  std::vector<std::array<double, 3>> pts;
  for (const auto& [label, p] : k.ctd)
    if ((label >= 1 && label <= 25) || label == kT13) pts.push_back(p);
  if (pts.size() < 2) return;
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a[2] < b[2]; });
  double ztop = -1e9, zbot = 1e9, a, b;
  for (int l : {kT12, kT13, kL1, kL2, kL3, kL4, kL5, kL6})
    if (zExtent(k, l, a, b)) {
      zbot = std::min(zbot, a);
      ztop = std::max(ztop, b);
    }
  if (ztop < zbot) return;
  ztop += 10;
  zbot -= 10;
  PortableRandom rng(s.seed ^ hashString(c.subject.key));
  auto U = [&](PortableRandom& r) { return r.uniform(-s.jitter_mm, s.jitter_mm); };
  netin::PatchSpec ps;
  ps.spacing_mm = s.spacing_mm;
  ps.size = s.patch;
  ps.level = s.level;
  ps.width = s.width;
  const auto cls = netin::bodyClassMap();
  const uint8_t* lab = k.lab->GetBufferPointer();
  auto push = [&](learned::Tensor&& img, learned::Tensor&& tgt) {
    out.images.push_back(std::move(img));
    out.targets.push_back(std::move(tgt));
    out.cases.push_back(c.subject.key);
  };
  if (s.arch == "unet2d") {
    if (s.patch.size() != 2) throw UsageError("unet2d needs a 2-D --patch (HxW)");
    const int step = std::max(1, static_cast<int>(std::lround(s.slice_step_mm / k.v.sz)));
    for (int z = 0; z < k.v.nz; z += step) {
      double zz = k.v.z(z);
      if (zz < zbot || zz > ztop) continue;
      auto cxy = centreAt(pts, zz);
      double cx = cxy[0] + U(rng), cy = cxy[1] + U(rng);
      learned::Tensor img, tgt;
      img.shape = std::vector<int64_t>{1, s.patch[0], s.patch[1]};
      tgt.shape = std::vector<int64_t>{s.patch[0], s.patch[1]};
      img.data.resize(img.numel());
      tgt.data.resize(tgt.numel());
      netin::axialPatch(k.v, z, cx, cy, ps, img.data.data());
      netin::axialLabels(lab, k.v, z, cx, cy, ps, cls, tgt.data.data());
      push(std::move(img), std::move(tgt));
    }
  } else if (s.arch == "dense-unet3d") {
    if (s.patch.size() != 3) throw UsageError("dense-unet3d needs a 3-D --patch (DxHxW)");
    std::vector<std::array<double, 3>> centres;
    for (size_t i = 0; i < pts.size(); ++i) {
      if (pts[i][2] < zbot || pts[i][2] > ztop) continue;
      centres.push_back(pts[i]);
      if (i + 1 < pts.size() && pts[i + 1][2] <= ztop)
        centres.push_back({(pts[i][0] + pts[i + 1][0]) / 2, (pts[i][1] + pts[i + 1][1]) / 2,
                           (pts[i][2] + pts[i + 1][2]) / 2});
    }
    for (const auto& ctr : centres)
      for (int r = 0; r < s.per_body; ++r) {
        double cx = ctr[0] + U(rng), cy = ctr[1] + U(rng), cz = ctr[2] + U(rng);
        learned::Tensor img, tgt;
        img.shape = std::vector<int64_t>{1, s.patch[0], s.patch[1], s.patch[2]};
        tgt.shape = std::vector<int64_t>{s.patch[0], s.patch[1], s.patch[2]};
        img.data.resize(img.numel());
        tgt.data.resize(tgt.numel());
        netin::volumePatch(k.v, cx, cy, cz, ps, img.data.data());
        netin::volumeLabels(lab, k.v, cx, cy, cz, ps, cls, tgt.data.data());
        push(std::move(img), std::move(tgt));
      }
  } else {
    throw UsageError("segmentation training supports --arch unet2d or dense-unet3d (got '" + s.arch + "')");
  }
}

bool addMipSamples(const VerseCase& c, const MipSampling& s, Samples& out) {
  Canon k = canon(c);
  double l1lo, l1hi;
  if (!zExtent(k, kL1, l1lo, l1hi)) return false;
  for (int l : {kL1, kL2, kL3, kL4})
    if (!k.ctd.count(l)) return false;
  netin::PatchSpec ps;
  ps.level = s.level;
  ps.width = s.width;
  const double z_top_edge = k.v.z(k.v.nz - 1) + k.v.sz / 2;
  const double x_edge = k.v.ox - k.v.sx / 2, y_edge = k.v.oy - k.v.sy / 2;
  PortableRandom rng(s.seed ^ hashString(c.subject.key));
  auto U = [&](PortableRandom& r) { return r.uniform(-s.jitter_mm, s.jitter_mm); };
  const int n = s.per_case;
  auto crop = [&](PortableRandom& r) { return r.uniform(0.0, s.crop_mm); };
  for (int r = 0; r < n; ++r) {
    learned::Tensor img, tgt;
    img.shape = std::vector<int64_t>{2, s.rows, s.cols};
    img.data.resize(img.numel());
    if (s.stage == 1) {
      // Other coverages of the same case: the scan's top cut lower (L1's top stays inside).
      double top = z_top_edge - (r == 0 ? 0.0 : crop(rng));
      if (top - l1hi < 5) top = z_top_edge;
      netin::mipPair(k.v, top, s.row_mm, s.rows, s.cols, ps, img.data.data());
      tgt.shape = std::vector<int64_t>{1};
      tgt.data = {static_cast<float>(top - l1hi)};
    } else {
      double zw = l1hi + s.window_above_mm + (r == 0 ? 0.0 : U(rng));
      netin::mipPair(k.v, zw, s.row_mm, s.rows, s.cols, ps, img.data.data());
      tgt.shape = std::vector<int64_t>{12};
      tgt.data.resize(12);
      int i = 0;
      for (int l : {kL1, kL2, kL3, kL4}) {
        const auto& p = k.ctd.at(l);
        tgt.data[static_cast<size_t>(i)] = static_cast<float>(zw - p[2]);
        tgt.data[static_cast<size_t>(4 + i)] = static_cast<float>(100 * (p[0] - x_edge) / (k.v.nx * k.v.sx));
        tgt.data[static_cast<size_t>(8 + i)] = static_cast<float>(100 * (p[1] - y_edge) / (k.v.ny * k.v.sy));
        ++i;
      }
    }
    out.images.push_back(std::move(img));
    out.targets.push_back(std::move(tgt));
    out.cases.push_back(c.subject.key);
  }
  return true;
}

}  // namespace ctbmd::training
