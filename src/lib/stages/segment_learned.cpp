// segment --method unet2d | dense-unet3d: a network marks vertebral-body voxels near the
// spine (axial 2-D patches along the centreline, or 3-D patches by sliding window with
// overlap blending); each marked voxel takes the level whose disc planes (from localize)
// enclose it, and each level keeps its largest 3-D connected part.
#include "segment_learned.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <queue>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/stages.hpp"
#include "internal/label_map.hpp"
#include "internal/model_cache.hpp"
#include "internal/net_inputs.hpp"
#include "internal/spine.hpp"

namespace ctbmd {

namespace {

// Probability of class >= 1 from logits [N, C, ...] (softmax), in place into `prob`.
void foreground(const learned::Tensor& logits, std::vector<float>& prob) {
  const int64_t n = logits.shape[0], c = logits.shape[1];
  size_t per = logits.numel() / static_cast<size_t>(n * c);
  prob.assign(static_cast<size_t>(n) * per, 0.f);
  for (int64_t b = 0; b < n; ++b)
    for (size_t i = 0; i < per; ++i) {
      const float* base = logits.data.data() + static_cast<size_t>(b * c) * per + i;
      float mx = base[0];
      for (int64_t k = 1; k < c; ++k) mx = std::max(mx, base[static_cast<size_t>(k) * per]);
      double den = 0, fg = 0;
      for (int64_t k = 0; k < c; ++k) {
        double e = std::exp(base[static_cast<size_t>(k) * per] - mx);
        den += e;
        if (k > 0) fg += e;
      }
      prob[static_cast<size_t>(b) * per + i] = static_cast<float>(fg / den);
    }
}

// Keeps the largest 6-connected component of `label` in the canonical map.
void keepLargest(uint8_t* lab, int nx, int ny, int nz, uint8_t label) {
  const size_t n = static_cast<size_t>(nx) * ny * nz;
  std::vector<int> comp(n, 0);
  int next = 0, best = 0;
  size_t best_size = 0;
  std::vector<size_t> stack;
  for (size_t s = 0; s < n; ++s) {
    if (lab[s] != label || comp[s]) continue;
    ++next;
    size_t size = 0;
    stack.push_back(s);
    comp[s] = next;
    while (!stack.empty()) {
      size_t q = stack.back();
      stack.pop_back();
      ++size;
      int i = static_cast<int>(q % nx), j = static_cast<int>((q / nx) % ny),
          k = static_cast<int>(q / (static_cast<size_t>(nx) * ny));
      const int di[6] = {1, -1, 0, 0, 0, 0}, dj[6] = {0, 0, 1, -1, 0, 0}, dk[6] = {0, 0, 0, 0, 1, -1};
      for (int d = 0; d < 6; ++d) {
        int a = i + di[d], b = j + dj[d], c = k + dk[d];
        if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
        size_t r = (static_cast<size_t>(c) * ny + b) * nx + a;
        if (lab[r] == label && !comp[r]) {
          comp[r] = next;
          stack.push_back(r);
        }
      }
    }
    if (size > best_size) best_size = size, best = next;
  }
  for (size_t s = 0; s < n; ++s)
    if (lab[s] == label && comp[s] != best) lab[s] = 0;
}

}  // namespace

SegmentResult segmentLearned(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p) {
  const bool vol3d = p.method == "dense-unet3d";
  auto m = loadModelCached(p.model, "segment", p.device, "--model");
  if ((vol3d && m->card.architecture == "unet2d") || (!vol3d && m->card.architecture == "dense-unet3d"))
    throw UsageError("--method " + p.method + " needs a " + (vol3d ? "3-D" : "2-D") + " segmenter; model " +
                     m->card.name + " is " + m->card.architecture);
  const auto spec = netin::specOf(m->card, vol3d ? 3 : 2);
  SegmentResult res;
  res.method = p.method;
  res.model = m->card.provenance();
  res.model["device"] = m->net->device();
  const auto& cc = canonicalOf(scan);
  const auto& can = cc.image;
  auto v = spine::view(can.GetPointer());
  auto toCan = [&](const std::array<double, 3>& w) { return toCanonicalFrame(can.GetPointer(), v, w); };
  // Spine centre per canonical z: the centreline (or the level centres) interpolated.
  std::vector<std::array<double, 3>> cl;
  for (const auto& q : loc.centerline) cl.push_back(toCan(q));
  for (const auto& l : loc.levels)
    if (l.status != LevelStatus::Missing && cl.empty()) cl.push_back(toCan(l.center_mm));
  if (cl.empty()) {
    for (const auto& l : loc.levels) res.levels.push_back(levelEntry(l, loc));
    res.labels = emptyLabelsLike(scan.image);
    res.warnings.push_back("localize found no level: nothing to segment");
    return res;
  }
  std::sort(cl.begin(), cl.end(), [](const auto& a, const auto& b) { return a[2] < b[2]; });
  auto centreAt = [&](double z) -> std::array<double, 2> {
    if (z <= cl.front()[2]) return {cl.front()[0], cl.front()[1]};
    if (z >= cl.back()[2]) return {cl.back()[0], cl.back()[1]};
    auto it = std::lower_bound(cl.begin(), cl.end(), z, [](const auto& a, double zz) { return a[2] < zz; });
    const auto& b = *it;
    const auto& a = *(it - 1);
    double t = (z - a[2]) / std::max(1e-9, b[2] - a[2]);
    return {a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])};
  };
  // Slab of canonical slices to process: all levels found, with their planes' extent.
  double zlo = 1e18, zhi = -1e18;
  for (const auto& l : loc.levels) {
    if (l.status == LevelStatus::Missing) continue;
    auto c = toCan(l.center_mm);
    auto top = toCan({l.center_mm[0], l.center_mm[1], l.superior_mm});
    auto bot = toCan({l.center_mm[0], l.center_mm[1], l.inferior_mm});
    zlo = std::min({zlo, top[2], bot[2], c[2]});
    zhi = std::max({zhi, top[2], bot[2], c[2]});
  }
  const size_t nvox = static_cast<size_t>(v.nx) * v.ny * v.nz;
  std::vector<float> acc(nvox, 0.f), wsum(nvox, 0.f);
  const int k0 = std::max(0, static_cast<int>(std::floor((zlo - 3 - v.oz) / v.sz)));
  const int k1 = std::min(v.nz - 1, static_cast<int>(std::ceil((zhi + 3 - v.oz) / v.sz)));
  const double s = spec.spacing_mm;
  if (!vol3d) {
    const int H = spec.size[0], W = spec.size[1];
    const int n = std::max(0, k1 - k0 + 1);
    learned::Tensor batch;
    batch.shape = {n, 1, H, W};
    batch.data.resize(batch.numel());
    std::vector<std::array<double, 2>> centres(static_cast<size_t>(n));
    for (int kk = 0; kk < n; ++kk) {
      centres[static_cast<size_t>(kk)] = centreAt(v.z(k0 + kk));
      netin::axialPatch(v, k0 + kk, centres[static_cast<size_t>(kk)][0], centres[static_cast<size_t>(kk)][1],
                        spec, batch.data.data() + static_cast<size_t>(kk) * H * W);
    }
    std::vector<float> prob;
    foreground(forwardChunked(*m, batch, 32), prob);
    for (int kk = 0; kk < n; ++kk) {
      const float* pm = prob.data() + static_cast<size_t>(kk) * H * W;
      const auto& c = centres[static_cast<size_t>(kk)];
      const int k = k0 + kk;
      int i0 = std::max(0, static_cast<int>(std::floor((c[0] - W / 2.0 * s - v.ox) / v.sx)));
      int i1 = std::min(v.nx - 1, static_cast<int>(std::ceil((c[0] + W / 2.0 * s - v.ox) / v.sx)));
      int j0 = std::max(0, static_cast<int>(std::floor((c[1] - H / 2.0 * s - v.oy) / v.sy)));
      int j1 = std::min(v.ny - 1, static_cast<int>(std::ceil((c[1] + H / 2.0 * s - v.oy) / v.sy)));
      for (int j = j0; j <= j1; ++j) {
        double fr = (v.y(j) - c[1]) / s + H / 2.0 - 0.5;
        for (int i = i0; i <= i1; ++i) {
          double fc = (v.x(i) - c[0]) / s + W / 2.0 - 0.5;
          if (fr < 0 || fc < 0 || fr > H - 1 || fc > W - 1) continue;
          int r0 = static_cast<int>(fr), c0 = static_cast<int>(fc);
          int r1 = std::min(r0 + 1, H - 1), c1 = std::min(c0 + 1, W - 1);
          double ar = fr - r0, ac = fc - c0;
          double pv = (1 - ar) * ((1 - ac) * pm[r0 * W + c0] + ac * pm[r0 * W + c1]) +
                      ar * ((1 - ac) * pm[r1 * W + c0] + ac * pm[r1 * W + c1]);
          size_t q = (static_cast<size_t>(k) * v.ny + j) * v.nx + i;
          acc[q] = static_cast<float>(pv);
          wsum[q] = 1.f;
        }
      }
    }
  } else {
    // Sliding window along the spine: patch centres every half patch height, blended with
    // tent weights (highest in the patch centre).
    const int Dp = spec.size[0], Hp = spec.size[1], Wp = spec.size[2];
    const double half_z = Dp * s / 2, stride = std::max(s, half_z);
    std::vector<std::array<double, 3>> centres;
    for (double z = zlo - 3 + half_z * 0.5;; z += stride) {
      double zc = std::min(z, zhi + 3 - half_z * 0.5);
      auto c = centreAt(zc);
      centres.push_back({c[0], c[1], zc});
      if (zc >= zhi + 3 - half_z * 0.5 - 1e-6) break;
    }
    const size_t per = static_cast<size_t>(Dp) * Hp * Wp;
    learned::Tensor batch;
    batch.shape = {static_cast<int64_t>(centres.size()), 1, Dp, Hp, Wp};
    batch.data.resize(batch.numel());
    for (size_t b = 0; b < centres.size(); ++b)
      netin::volumePatch(v, centres[b][0], centres[b][1], centres[b][2], spec, batch.data.data() + b * per);
    std::vector<float> prob;
    foreground(forwardChunked(*m, batch, 4), prob);
    for (size_t b = 0; b < centres.size(); ++b) {
      const float* pm = prob.data() + b * per;
      const auto& c = centres[b];
      auto range = [&](double cc, double o, double sp, int half_n, int nmax, int& a0, int& a1) {
        a0 = std::max(0, static_cast<int>(std::floor((cc - half_n * s - o) / sp)));
        a1 = std::min(nmax - 1, static_cast<int>(std::ceil((cc + half_n * s - o) / sp)));
      };
      int i0, i1, j0, j1, q0, q1;
      range(c[0], v.ox, v.sx, Wp / 2, v.nx, i0, i1);
      range(c[1], v.oy, v.sy, Hp / 2, v.ny, j0, j1);
      range(c[2], v.oz, v.sz, Dp / 2, v.nz, q0, q1);
      for (int k = q0; k <= q1; ++k) {
        double fd = (v.z(k) - c[2]) / s + Dp / 2.0 - 0.5;
        if (fd < 0 || fd > Dp - 1) continue;
        int d0 = static_cast<int>(fd), d1 = std::min(d0 + 1, Dp - 1);
        double ad = fd - d0;
        for (int j = j0; j <= j1; ++j) {
          double fr = (v.y(j) - c[1]) / s + Hp / 2.0 - 0.5;
          if (fr < 0 || fr > Hp - 1) continue;
          int r0 = static_cast<int>(fr), r1 = std::min(r0 + 1, Hp - 1);
          double ar = fr - r0;
          for (int i = i0; i <= i1; ++i) {
            double fc = (v.x(i) - c[0]) / s + Wp / 2.0 - 0.5;
            if (fc < 0 || fc > Wp - 1) continue;
            int c0 = static_cast<int>(fc), c1 = std::min(c0 + 1, Wp - 1);
            double ac = fc - c0;
            auto P = [&](int d, int r, int cc2) { return pm[(static_cast<size_t>(d) * Hp + r) * Wp + cc2]; };
            double pv = (1 - ad) * ((1 - ar) * ((1 - ac) * P(d0, r0, c0) + ac * P(d0, r0, c1)) +
                                    ar * ((1 - ac) * P(d0, r1, c0) + ac * P(d0, r1, c1))) +
                        ad * ((1 - ar) * ((1 - ac) * P(d1, r0, c0) + ac * P(d1, r0, c1)) +
                              ar * ((1 - ac) * P(d1, r1, c0) + ac * P(d1, r1, c1)));
            // tent weight: 1 in the centre, small at the faces
            double w = (1.0 - std::abs(2 * fd / (Dp - 1) - 1)) * (1.0 - std::abs(2 * fr / (Hp - 1) - 1)) *
                           (1.0 - std::abs(2 * fc / (Wp - 1) - 1)) +
                       1e-3;
            size_t q = (static_cast<size_t>(k) * v.ny + j) * v.nx + i;
            acc[q] += static_cast<float>(w * pv);
            wsum[q] += static_cast<float>(w);
          }
        }
      }
    }
  }
  // Threshold and assign levels by their disc planes.
  auto lab = emptyLabelsLike(can);
  uint8_t* out = lab->GetBufferPointer();
  for (int k = k0; k <= k1; ++k)
    for (int j = 0; j < v.ny; ++j)
      for (int i = 0; i < v.nx; ++i) {
        size_t q = (static_cast<size_t>(k) * v.ny + j) * v.nx + i;
        if (wsum[q] <= 0 || acc[q] / wsum[q] < 0.5f) continue;
        const auto pt = voxelPoint(can.GetPointer(), v, i, j, k);
        for (const auto& l : loc.levels) {
          if (l.status == LevelStatus::Missing) continue;
          if (inLevelSlab(l, pt)) {
            out[q] = static_cast<uint8_t>(l.label);
            break;
          }
        }
      }
  for (const auto& l : loc.levels) {
    if (l.status != LevelStatus::Missing) keepLargest(out, v.nx, v.ny, v.nz, static_cast<uint8_t>(l.label));
    res.levels.push_back(levelEntry(l, loc));
  }
  finishSegmentation(res, lab.GetPointer(), cc.map, p.fracture_ratio);
  return res;
}

}  // namespace ctbmd
