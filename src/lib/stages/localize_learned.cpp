// localize --method mip-localizer: the two-stage regressor on maximum-intensity projections
// (frontal + sagittal MIP channels). Stage 1 regresses the height of L1's top endplate from
// MIPs of the whole scan; stage 2 regresses the centres of L1-L4 (height, left-right and
// anterior-posterior position) from MIPs of a window that starts just above it. The model
// folder holds stage1/ and stage2/, each a model card (task localize).
#include "localize_learned.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "internal/model_cache.hpp"
#include "internal/net_inputs.hpp"
#include "internal/spine.hpp"

namespace ctbmd {

namespace {
struct MipGeom {
  int stage = 0, rows = 0, cols = 0;
  double row_mm = 0, window_above_mm = 0;
};
MipGeom mipOf(const LoadedModel& m, int want_stage) {
  const auto& in = m.card.raw.value("input", nlohmann::json::object());
  if (!in.contains("mip"))
    throw InputError("model " + m.card.name + " is not a MIP localizer stage (its card has no input.mip)");
  const auto& j = in["mip"];
  MipGeom g{j.at("stage").get<int>(), j.at("rows").get<int>(), j.at("cols").get<int>(),
            j.at("row_mm").get<double>(), j.value("window_above_mm", 20.0)};
  if (g.stage != want_stage)
    throw InputError("model " + m.card.name + " is MIP localizer stage " + std::to_string(g.stage) +
                     ", expected stage " + std::to_string(want_stage));
  if (g.rows <= 0 || g.cols <= 0 || !(g.row_mm > 0))
    throw InputError("model " + m.card.name + ": bad input.mip");
  return g;
}
}  // namespace

LocalizeResult localizeLearned(const Scan& scan, const LocalizeParams& p) {
  checkLooksLikeCt(scan.image.GetPointer(), scan.info.path.string());
  namespace fs = std::filesystem;
  if (p.model.empty())
    throw UsageError("--method mip-localizer needs --model FOLDER (with stage1/ and stage2/)");
  if (!fs::is_directory(fs::path(p.model) / "stage1") || !fs::is_directory(fs::path(p.model) / "stage2"))
    throw InputError("model folder '" + p.model +
                     "' must hold stage1/ and stage2/ (the two MIP localizer stages)");
  auto m1 = loadModelCached((fs::path(p.model) / "stage1").string(), "localize", p.device, "--model");
  auto m2 = loadModelCached((fs::path(p.model) / "stage2").string(), "localize", p.device, "--model");
  const MipGeom g1 = mipOf(*m1, 1), g2 = mipOf(*m2, 2);
  const auto& cc = canonicalOf(scan);
  const auto& can = cc.image;
  const AxisMap& am = cc.map;
  auto v = spine::view(can.GetPointer());
  const netin::PatchSpec s1 = netin::windowOf(m1->card), s2 = netin::windowOf(m2->card);
  const double z_top = v.z(v.nz - 1) + v.sz / 2, z_bottom = v.oz - v.sz / 2;
  const double x_edge = v.ox - v.sx / 2, y_edge = v.oy - v.sy / 2;
  // Stage 1.
  learned::Tensor t1;
  t1.shape = {1, 2, g1.rows, g1.cols};
  t1.data.resize(t1.numel());
  netin::mipPair(v, z_top, g1.row_mm, g1.rows, g1.cols, s1, t1.data.data());
  auto y1 = forwardChunked(*m1, t1, 1);
  if (y1.data.size() != 1) throw ProcessingError("model " + m1->card.name + " must give one output");
  const double z_l1_top = z_top - y1.data[0];
  // Stage 2.
  const double zw = z_l1_top + g2.window_above_mm;
  learned::Tensor t2;
  t2.shape = {1, 2, g2.rows, g2.cols};
  t2.data.resize(t2.numel());
  netin::mipPair(v, zw, g2.row_mm, g2.rows, g2.cols, s2, t2.data.data());
  auto y2 = forwardChunked(*m2, t2, 1);
  if (y2.data.size() != 12)
    throw ProcessingError("model " + m2->card.name + " must give 12 outputs (L1-L4 z, x, y)");
  std::array<std::array<double, 3>, 4> c{};  // canonical frame
  for (int i = 0; i < 4; ++i)
    c[static_cast<size_t>(i)] = {x_edge + y2.data[static_cast<size_t>(4 + i)] / 100.0 * v.nx * v.sx,
                                 y_edge + y2.data[static_cast<size_t>(8 + i)] / 100.0 * v.ny * v.sy,
                                 zw - y2.data[static_cast<size_t>(i)]};
  auto phys = [&](double x, double y, double z) {
    itk::ContinuousIndex<double, 3> ci;
    ci[0] = (x - v.ox) / v.sx;
    ci[1] = (y - v.oy) / v.sy;
    ci[2] = (z - v.oz) / v.sz;
    CtImage::PointType pt;
    can->TransformContinuousIndexToPhysicalPoint(ci, pt);
    return std::array<double, 3>{pt[0], pt[1], pt[2]};
  };
  const auto& D = can->GetDirection();
  const std::array<double, 3> up = {D[0][2], D[1][2], D[2][2]};
  auto origK = [&](int k) { return am.flip[2] ? static_cast<int>(am.orig_size[am.perm[2]]) - 1 - k : k; };
  LocalizeResult res;
  res.method = "mip-localizer";
  res.model = {m1->card.provenance(), m2->card.provenance()};
  res.model[0]["device"] = m1->net->device();
  res.model[1]["device"] = m2->net->device();
  res.anchors.method = "learned regression (two-stage MIP localizer); no anatomical anchor check";
  res.anchors.l1_top_mm = phys(c[0][0], c[0][1], z_l1_top)[2];
  res.warnings.push_back(
      "mip-localizer locates L1-L4 only (the published two-stage method): T12 and L5 are reported missing");
  // Disc planes: L1's top from stage 1, midpoints between centres, and L4's bottom half a
  // spacing below its centre.
  std::array<double, 5> zp{};
  zp[0] = z_l1_top;
  for (int i = 1; i < 4; ++i)
    zp[static_cast<size_t>(i)] = (c[static_cast<size_t>(i - 1)][2] + c[static_cast<size_t>(i)][2]) / 2;
  zp[4] = c[3][2] - (c[2][2] - c[3][2]) / 2;
  for (int label : kReportedLevels) {
    LevelLocation l;
    l.label = label;
    l.name = levelName(label);
    int i = label - kL1;
    if (i >= 0 && i < 4) {
      const auto& cc3 = c[static_cast<size_t>(i)];
      double zs = zp[static_cast<size_t>(i)], zi = zp[static_cast<size_t>(i + 1)];
      bool ordered = zs > cc3[2] && cc3[2] > zi;
      if (cc3[2] < z_bottom || cc3[2] > z_top || !ordered) {
        l.status = LevelStatus::Missing;
      } else {
        l.status = (zs > z_top || zi < z_bottom) ? LevelStatus::Partial : LevelStatus::Found;
        l.center_mm = phys(cc3[0], cc3[1], cc3[2]);
        l.superior_point = phys(cc3[0], cc3[1], zs);
        l.inferior_point = phys(cc3[0], cc3[1], zi);
        l.superior_normal = up;
        l.inferior_normal = up;
        l.superior_mm = l.superior_point[2];
        l.inferior_mm = l.inferior_point[2];
        int ka = std::clamp(static_cast<int>(std::floor((zi - v.oz) / v.sz)), 0, v.nz - 1);
        int kb = std::clamp(static_cast<int>(std::ceil((zs - v.oz) / v.sz)), 0, v.nz - 1);
        int a = origK(ka), b = origK(kb);
        l.slice_range = {std::min(a, b), std::max(a, b)};
        // Confidence: the share of a 5 mm disk at the centre that reads as bone marrow or
        // bone (50-1500 HU) — low when the regressor put the centre off the body.
        int in = 0, tot = 0;
        int k = std::clamp(static_cast<int>(std::lround((cc3[2] - v.oz) / v.sz)), 0, v.nz - 1);
        for (double dy = -5; dy <= 5; dy += 1)
          for (double dx = -5; dx <= 5; dx += 1) {
            if (dx * dx + dy * dy > 25) continue;
            int ii = static_cast<int>(std::lround((cc3[0] + dx - v.ox) / v.sx)),
                jj = static_cast<int>(std::lround((cc3[1] + dy - v.oy) / v.sy));
            ++tot;
            if (ii >= 0 && jj >= 0 && ii < v.nx && jj < v.ny) {
              int h = v.at(ii, jj, k);
              in += h >= 50 && h <= 1500;
            }
          }
        l.confidence =
            (tot ? static_cast<double>(in) / tot : 0.0) * (l.status == LevelStatus::Partial ? 0.7 : 1.0);
      }
    }
    res.levels.push_back(l);
  }
  // Centreline: the polyline through the centres, every 2 mm.
  std::vector<PointMm> cl;
  for (int i = 0; i < 3; ++i) {
    const auto &a = c[static_cast<size_t>(i)], &b = c[static_cast<size_t>(i + 1)];
    double len = std::hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
    int n = std::max(1, static_cast<int>(len / 2));
    for (int t = 0; t < n; ++t) {
      double f = static_cast<double>(t) / n;
      cl.push_back(phys(a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])));
    }
  }
  cl.push_back(phys(c[3][0], c[3][1], c[3][2]));
  res.centerline = cl;
  flagMetalLevels(res, can.GetPointer());
  for (const auto& l : res.levels)
    spdlog::debug("mip-localizer {}: {} at ({:.1f}, {:.1f}, {:.1f})", l.name, toString(l.status),
                  l.center_mm[0], l.center_mm[1], l.center_mm[2]);
  return res;
}

}  // namespace ctbmd
