// Contrast phase from the aorta, the IVC, the kidneys and the DICOM header (ctbmd/contrast.hpp).
#include "ctbmd/contrast.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"
#include "ctbmd/stats.hpp"

namespace ctbmd {

using nlohmann::json;

namespace {

json optNum(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> numOpt(const json& j, const char* key) {
  if (j.contains(key) && j[key].is_number()) return j[key].get<double>();
  return std::nullopt;
}

std::string hu(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f HU", v);
  return buf;
}

}  // namespace

json ContrastPhase::toJson() const {
  json j = {{"phase", phase}, {"confidence", confidence}, {"enhanced", enhanced}, {"basis", basis}};
  j["aorta_hu"] = optNum(aorta_hu);
  j["ivc_hu"] = optNum(ivc_hu);
  j["kidneys"] = kidneys;
  if (!dicom_agent.empty()) j["dicom_contrast_agent"] = dicom_agent;
  return j;
}

ContrastPhase ContrastPhase::fromJson(const json& j, const std::string& file) {
  const std::string where = file.empty() ? std::string("the contrast estimate") : "'" + file + "': contrast";
  ContrastPhase c;
  try {
    if (!j.is_object()) throw InputError(where + " is not an object");
    c.phase = j.value("phase", std::string("unknown"));
    c.confidence = j.value("confidence", 0.0);
    c.enhanced = j.value("enhanced", false);
    c.basis = j.value("basis", std::string());
    c.aorta_hu = numOpt(j, "aorta_hu");
    c.ivc_hu = numOpt(j, "ivc_hu");
    if (j.contains("kidneys") && j["kidneys"].is_object()) c.kidneys = j["kidneys"];
    c.dicom_agent = j.value("dicom_contrast_agent", std::string());
  } catch (const json::exception& e) {
    throw InputError(where + " has a field of the wrong type (" + jsonProblem(e) +
                     "); run ctbmd-localize again");
  }
  static const char* const kPhases[] = {"native",  "arterial", "portal-venous",
                                        "delayed", "enhanced", "unknown"};
  if (std::find(std::begin(kPhases), std::end(kPhases), c.phase) == std::end(kPhases))
    throw InputError(
        where + ": unknown phase '" + c.phase +
        "' (native, arterial, portal-venous, delayed, enhanced, unknown); run ctbmd-localize again");
  if (!(c.confidence >= 0 && c.confidence <= 1))
    throw InputError(where + ": confidence " + std::to_string(c.confidence) + " is outside 0-1");
  return c;
}

namespace {

json kidneyJson(const ContrastMeasures& m, bool excreted, const std::string& pattern) {
  return {{"slices_searched", m.kidney_slices},
          {"excretion_mm2", m.excretion_mm2},
          {"excretion_slices", m.excretion_slices},
          {"excretion_hu", optNum(m.excretion_hu)},
          {"parenchyma_hu", optNum(m.renal_hu)},
          {"excretion_seen", excreted},
          {"nephrogram",
           {{"pattern", pattern},
            {"sections_right", m.nephro_sections_right},
            {"sections_left", m.nephro_sections_left},
            {"lagging_medulla_sections_right", m.nephro_cmd_right},
            {"lagging_medulla_sections_left", m.nephro_cmd_left},
            {"cortex_hu", optNum(m.cortex_hu)},
            {"medulla_hu", optNum(m.medulla_hu)},
            {"medulla_fraction", m.medulla_fraction}}}};
}

std::string nephrogramWords(const ContrastMeasures& m, const std::string& pattern) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "renal parenchyma %s, medulla %s over %.0f %% of %d kidney section%s (%s)",
                m.cortex_hu ? hu(*m.cortex_hu).c_str() : "?", m.medulla_hu ? hu(*m.medulla_hu).c_str() : "-",
                100 * m.medulla_fraction, m.nephro_sections_right + m.nephro_sections_left,
                m.nephro_sections_right + m.nephro_sections_left == 1 ? "" : "s", pattern.c_str());
  return buf;
}

// The band of the aorta alone (enhanced scans): phase and how far inside its band (0-1).
std::pair<std::string, double> aorticBand(double a, const ContrastBands& b) {
  auto inside = [&](double lo, double hi) { return std::clamp(std::min(a - lo, hi - a) / 20.0, 0.0, 1.0); };
  if (a < b.delayed_below) return {"delayed", inside(b.native_below, b.delayed_below)};
  if (a < b.portal_below) return {"portal-venous", inside(b.delayed_below, b.portal_below)};
  return {"arterial", inside(b.portal_below, 1e9)};
}

}  // namespace

ContrastPhase decideContrastPhase(const ContrastMeasures& m, const std::string& dicom_agent,
                                  const ContrastBands& b) {
  ContrastPhase c;
  c.aorta_hu = m.aorta_hu;
  c.ivc_hu = m.ivc_hu;
  c.dicom_agent = dicom_agent;
  const bool agent = !dicom_agent.empty();
  const bool excreted = m.excretion_mm2 >= b.excretion_min_mm2 && m.excretion_slices > 0;
  const std::string pattern = nephrogramPattern(m, b);
  c.kidneys = kidneyJson(m, excreted, pattern);
  const bool cmd = pattern == "corticomedullary", uniform = pattern == "homogeneous";
  std::string excretion_words;
  if (excreted) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "excreted contrast in the renal collecting system (%.0f mm2 in %d slice%s, %s)",
                  m.excretion_mm2, m.excretion_slices, m.excretion_slices == 1 ? "" : "s",
                  m.excretion_hu ? hu(*m.excretion_hu).c_str() : "?");
    excretion_words = buf;
  }
  const std::string agent_words = agent ? "; DICOM agent '" + dicom_agent + "'" : "";
  // Beside a column that is not named, the "aorta" may be any vessel or chamber (a chest CTA
  // crop measured the heart): the measures are reported, the phase is not claimed.
  auto cap_unnamed = [&] {
    if (m.spine_named) return;
    c.phase = c.enhanced ? "enhanced" : "unknown";
    c.confidence = c.enhanced ? std::min(c.confidence, 0.4) : 0.0;
    c.basis +=
        "; the column was not named, so the vessels measured are not anchored to the spine: no phase "
        "is claimed";
  };
  if (!m.aorta_hu) {
    if (excreted) {
      c.phase = "delayed";
      c.enhanced = true;
      c.confidence = 0.6;
      c.basis = "aorta not found; " + excretion_words + agent_words;
    } else if (cmd) {
      c.phase = "arterial";
      c.enhanced = true;
      c.confidence = 0.6;
      c.basis = "aorta not found; " + nephrogramWords(m, pattern) + ": arterial (corticomedullary) phase" +
                agent_words;
    } else {
      c.phase = agent ? "enhanced" : "unknown";
      c.enhanced = agent;
      c.confidence = agent ? 0.6 : 0;
      c.basis = agent ? "aorta not found; the DICOM header names a contrast agent ('" + dicom_agent + "')"
                      : "aorta not found and no contrast agent in the header: phase unknown";
    }
    cap_unnamed();
    return c;
  }
  const double a = *m.aorta_hu;
  c.basis = "aortic blood " + hu(a);
  if (m.ivc_hu) c.basis += ", IVC " + hu(*m.ivc_hu);
  if (a < b.native_below && !excreted) {
    c.phase = "native";
    c.confidence = 0.5 + 0.45 * std::clamp((b.native_below - a) / 20.0, 0.0, 1.0);
    c.enhanced = agent;  // a named agent may be oral only; trust neither side fully
    if (agent) {
      c.confidence = std::min(c.confidence, 0.5);
      c.basis += " (unenhanced range), but the DICOM header names a contrast agent ('" + dicom_agent +
                 "'): oral contrast only, or a late scan; treated as possibly enhanced";
    } else {
      c.basis += ": in the unenhanced range (30-60 HU)";
    }
    cap_unnamed();
    return c;
  }
  c.enhanced = true;
  if (excreted && a < b.portal_below) {
    // the kidneys excrete from ~3 min: a scan showing it is delayed, whatever the aorta says
    c.phase = "delayed";
    c.confidence = m.excretion_slices >= 2 ? 0.85 : 0.7;
    c.basis += "; " + excretion_words + ": delayed (excretory) phase" + agent_words;
  } else if (cmd) {
    // the renal cortex enhances before the medulla: ~25-70 s after injection
    const bool lag = m.ivc_hu && a - *m.ivc_hu >= b.arterial_gap;
    c.phase = "arterial";
    c.confidence = lag ? 0.9 : 0.75;
    c.basis += "; " + nephrogramWords(m, pattern) + (lag ? "; the IVC lags the aorta" : std::string()) +
               ": arterial (corticomedullary) phase" + agent_words;
  } else if (m.ivc_hu && a - *m.ivc_hu >= b.arterial_gap && a >= b.arterial_min_aorta) {
    c.phase = "arterial";
    c.confidence = uniform ? 0.65 : 0.8;
    c.basis += ": the IVC lags the aorta (contrast has not yet returned): arterial phase";
    if (uniform)
      c.basis += "; but " + nephrogramWords(m, pattern) + ": a late arterial or early portal scan?";
    c.basis += agent_words;
  } else if (m.ivc_hu && std::abs(a - *m.ivc_hu) <= b.equilibrium_within) {
    // aorta and IVC mixed: portal-venous, or delayed once the aorta has fallen below its band
    c.phase = a >= b.delayed_below ? "portal-venous" : "delayed";
    c.confidence = uniform ? 0.8 : 0.7;
    c.basis += ": aorta and IVC in equilibrium, no excreted contrast seen" +
               std::string(m.kidney_slices ? "" : " (kidneys not searched)");
    if (uniform) c.basis += "; " + nephrogramWords(m, pattern);
    c.basis += ": " + c.phase + agent_words;
  } else {
    const auto [phase, inside] = aorticBand(a, b);
    c.phase = phase;
    c.confidence = 0.3 + 0.3 * inside;
    c.basis += std::string(": enhanced, ") + phase + " band of the aorta alone" +
               (m.ivc_hu ? " (the IVC does not decide)" : " (IVC not found)") + agent_words;
  }
  if (excreted && c.phase != "delayed") c.basis += "; " + excretion_words + " (an earlier injection?)";
  cap_unnamed();
  return c;
}

namespace {

// Where the column is in each canonical slice: named levels' centres, interpolated along z
// (beyond them, the nearest), else the centreline; canonical index coordinates.
struct SpineTrack {
  std::vector<std::array<double, 3>> pts;  // (i, j, k), sorted by k
  bool named = false;
  // Centre in slice k; false when no point lies within max_mm (mm along z) of it.
  bool at(double k, double sz, double max_mm, double& ci, double& cj) const {
    if (pts.empty()) return false;
    auto hi = std::lower_bound(pts.begin(), pts.end(), k, [](const auto& p, double v) { return p[2] < v; });
    if (hi != pts.end() && hi != pts.begin()) {
      const auto& p = *(hi - 1);
      const auto& q = *hi;
      const double t = q[2] > p[2] ? (k - p[2]) / (q[2] - p[2]) : 0;
      ci = p[0] + t * (q[0] - p[0]);
      cj = p[1] + t * (q[1] - p[1]);
      return true;
    }
    const auto& e = hi == pts.end() ? pts.back() : pts.front();
    ci = e[0];
    cj = e[1];
    return std::abs(e[2] - k) * sz <= max_mm;
  }
};

SpineTrack spineTrack(const CtImage* img, const LocalizeResult& loc, double& klo, double& khi) {
  SpineTrack t;
  auto index = [&](const std::array<double, 3>& mm) {
    itk::Point<double, 3> p;
    for (int a = 0; a < 3; ++a) p[a] = mm[a];
    itk::ContinuousIndex<double, 3> ci;
    img->TransformPhysicalPointToContinuousIndex(p, ci);
    return std::array<double, 3>{ci[0], ci[1], ci[2]};
  };
  klo = 1e9;  // the slices of T12-L3 (empty when none is named)
  khi = -1e9;
  for (int label : kReportedLevels) {
    const LevelLocation* l = loc.find(label);
    if (!l || l->status == LevelStatus::Missing) continue;
    t.pts.push_back(index(l->center_mm));
    if (label > kL3) continue;
    klo = std::min(klo, t.pts.back()[2]);
    khi = std::max(khi, t.pts.back()[2]);
  }
  t.named = t.pts.size() >= 2;
  if (!t.named) {
    t.pts.clear();
    for (const auto& p : loc.centerline) t.pts.push_back(index(p));
  }
  std::sort(t.pts.begin(), t.pts.end(), [](const auto& a, const auto& b) { return a[2] < b[2]; });
  return t;
}

// Renal search box, per side, relative to the body centre: the hilum and the calyces lie 35-95
// mm lateral of it, within 50 mm in front or behind.
constexpr double kRenalLateralMinMm = 35, kRenalLateralMaxMm = 95, kRenalApMm = 50;
// Excreted contrast: >= 300 HU, a component of 8-1500 mm^2 peaking >= 500 HU (denser than
// arterial blood in a renal artery), ringed 1.5-5 mm out by enhanced parenchyma (median
// 100-350 HU, >= 85 % of the ring 60-400 HU) — which bone (ribs, transverse processes: muscle,
// fat or lung in part of the ring; measured 35-85 % on CRLM-CT-1004, 45-62 % in the phantom's
// liver, against 90-100 % around its collecting systems) and stones in unenhanced kidneys
// (~30 HU around) are not. A stone in an enhanced kidney would pass (docs/methods.md).
constexpr double kExcretedMinHu = 300, kExcretedPeakHu = 500;
constexpr double kExcretedMinMm2 = 8, kExcretedMaxMm2 = 1500;
constexpr double kRingInMm = 1.5, kRingOutMm = 5;
constexpr double kParenchymaLoHu = 100, kParenchymaHiHu = 350, kParenchymaRingFraction = 0.85;

struct Excretion {
  double area_mm2 = 0;
  std::vector<double> values, ring;
};

// Excreted-contrast components in one side's box of slice s.
void excretionInBox(const int16_t* s, int nx, int ny, double sx, double sy, int i0, int i1, int j0, int j1,
                    Excretion& out) {
  i0 = std::max(i0, 0);
  j0 = std::max(j0, 0);
  i1 = std::min(i1, nx - 1);
  j1 = std::min(j1, ny - 1);
  if (i1 < i0 || j1 < j0) return;
  const int bw = i1 - i0 + 1, bh = j1 - j0 + 1;
  std::vector<int> comp(static_cast<size_t>(bw) * bh, -1);
  const int rout_i = static_cast<int>(std::ceil(kRingOutMm / sx)),
            rout_j = static_cast<int>(std::ceil(kRingOutMm / sy));
  int next = 0;
  std::vector<std::pair<int, int>> stack, pix;
  for (int bj = 0; bj < bh; ++bj)
    for (int bi = 0; bi < bw; ++bi) {
      if (comp[static_cast<size_t>(bj) * bw + bi] >= 0 ||
          s[static_cast<size_t>(j0 + bj) * nx + i0 + bi] < kExcretedMinHu)
        continue;
      const int id = next++;
      pix.clear();
      stack.assign(1, {bi, bj});
      comp[static_cast<size_t>(bj) * bw + bi] = id;
      while (!stack.empty()) {
        auto [x, y] = stack.back();
        stack.pop_back();
        pix.push_back({x, y});
        const int nb[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
        for (const auto& d : nb) {
          const int u = x + d[0], v = y + d[1];
          if (u < 0 || v < 0 || u >= bw || v >= bh) continue;
          const size_t q = static_cast<size_t>(v) * bw + u;
          if (comp[q] >= 0 || s[static_cast<size_t>(j0 + v) * nx + i0 + u] < kExcretedMinHu) continue;
          comp[q] = id;
          stack.push_back({u, v});
        }
      }
      const double area = pix.size() * sx * sy;
      if (area < kExcretedMinMm2 || area > kExcretedMaxMm2) continue;
      std::vector<double> vals;
      int xa = bw, xb = -1, ya = bh, yb = -1;
      for (auto [x, y] : pix) {
        vals.push_back(s[static_cast<size_t>(j0 + y) * nx + i0 + x]);
        xa = std::min(xa, x);
        xb = std::max(xb, x);
        ya = std::min(ya, y);
        yb = std::max(yb, y);
      }
      if (*std::max_element(vals.begin(), vals.end()) < kExcretedPeakHu) continue;
      // the ring 1.5-5 mm outside the component (image coordinates, may leave the box)
      std::vector<double> ring;
      for (int y = ya - rout_j; y <= yb + rout_j; ++y)
        for (int x = xa - rout_i; x <= xb + rout_i; ++x) {
          const int gi = i0 + x, gj = j0 + y;
          if (gi < 0 || gj < 0 || gi >= nx || gj >= ny) continue;
          if (x >= 0 && y >= 0 && x < bw && y < bh && comp[static_cast<size_t>(y) * bw + x] == id) continue;
          double d2 = 1e30;
          for (auto [px, py] : pix)
            d2 = std::min(d2, std::pow((px - x) * sx, 2) + std::pow((py - y) * sy, 2));
          if (d2 >= kRingInMm * kRingInMm && d2 <= kRingOutMm * kRingOutMm)
            ring.push_back(s[static_cast<size_t>(gj) * nx + gi]);
        }
      if (ring.size() < 8) continue;
      const double rmed = stats::median(ring);
      const long soft = std::count_if(ring.begin(), ring.end(), [](double v) { return v >= 60 && v <= 400; });
      spdlog::debug(
          "contrast: bright component {:.0f} mm2 at ({}, {}), median {:.0f} HU, ring {:.0f} HU ({:.0f} % "
          "soft)",
          area, i0 + (xa + xb) / 2, j0 + (ya + yb) / 2, stats::median(vals), rmed,
          100.0 * soft / ring.size());
      if (rmed < kParenchymaLoHu || rmed > kParenchymaHiHu || soft < kParenchymaRingFraction * ring.size())
        continue;
      out.area_mm2 += area;
      out.values.insert(out.values.end(), vals.begin(), vals.end());
      out.ring.insert(out.ring.end(), ring.begin(), ring.end());
    }
}

// Kidney sections for the nephrogram, in a wider box than the collecting-system search (the
// whole kidney, 20-130 mm lateral, within 70 mm in front or behind): closed components of
// enhanced parenchyma (3x3 mean >= 130 HU, <= 400 HU) of 300-5000 mm^2 that do not touch the
// box's edge (a liver or spleen the box cuts does), and the holes they enclose. Medulla: hole
// pixels whose whole 5x5 neighbourhood (3x3 means) lies from 0 HU to the section's median
// minus the gap — renal-sinus fat is below 0 HU, excreted contrast above, and the partial-volume
// band between fat and parenchyma (1-2 pixels) is too thin to pass the neighbourhood test.
constexpr double kNephroLateralMinMm = 20, kNephroLateralMaxMm = 130, kNephroApMm = 70;
constexpr double kCortexMinHu = 130, kCortexMaxHu = 400;
constexpr double kSectionMinMm2 = 300, kSectionMaxMm2 = 5000;
constexpr double kMedullaMinHu = 0;

struct Nephrogram {
  int sections = 0, cmd_sections = 0;
  double filled_mm2 = 0, medulla_mm2 = 0;
  std::vector<double> cortex, medulla;
};

void nephrogramInBox(const int16_t* s, int nx, int ny, double sx, double sy, int i0, int i1, int j0, int j1,
                     const ContrastBands& b, Nephrogram& out) {
  i0 = std::max(i0, 0);
  j0 = std::max(j0, 0);
  i1 = std::min(i1, nx - 1);
  j1 = std::min(j1, ny - 1);
  if (i1 - i0 < 4 || j1 - j0 < 4) return;
  const int bw = i1 - i0 + 1, bh = j1 - j0 + 1;
  auto at = [&](int x, int y) { return static_cast<size_t>(y) * bw + x; };
  std::vector<float> mean(static_cast<size_t>(bw) * bh);
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) {
      double sum = 0;
      int n = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int u = std::clamp(x + dx, 0, bw - 1), v = std::clamp(y + dy, 0, bh - 1);
          sum += s[static_cast<size_t>(j0 + v) * nx + i0 + u];
          ++n;
        }
      mean[at(x, y)] = static_cast<float>(sum / n);
    }
  auto parenchyma = [&](size_t q) { return mean[q] >= kCortexMinHu && mean[q] <= kCortexMaxHu; };
  std::vector<int> comp(mean.size(), -1);
  std::vector<std::pair<int, int>> stack, pix;
  int next = 0;
  for (int y0 = 0; y0 < bh; ++y0)
    for (int x0 = 0; x0 < bw; ++x0) {
      if (comp[at(x0, y0)] >= 0 || !parenchyma(at(x0, y0))) continue;
      const int id = next++;
      pix.clear();
      stack.assign(1, {x0, y0});
      comp[at(x0, y0)] = id;
      bool touches = false;
      int xa = bw, xb = -1, ya = bh, yb = -1;
      while (!stack.empty()) {
        auto [x, y] = stack.back();
        stack.pop_back();
        pix.push_back({x, y});
        touches = touches || x == 0 || y == 0 || x == bw - 1 || y == bh - 1;
        xa = std::min(xa, x), xb = std::max(xb, x), ya = std::min(ya, y), yb = std::max(yb, y);
        const int nb[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
        for (const auto& d : nb) {
          const int u = x + d[0], v = y + d[1];
          if (u < 0 || v < 0 || u >= bw || v >= bh || comp[at(u, v)] >= 0 || !parenchyma(at(u, v))) continue;
          comp[at(u, v)] = id;
          stack.push_back({u, v});
        }
      }
      const double area = pix.size() * sx * sy;
      if (touches || area < kSectionMinMm2 || area > kSectionMaxMm2) continue;
      // holes: pixels of the bounding box not in the section that a flood from its rim misses
      const int w = xb - xa + 3, h = yb - ya + 3;  // one pixel of margin all round
      std::vector<uint8_t> outside(static_cast<size_t>(w) * h, 0);
      auto mine = [&](int u, int v) {  // u, v in the margin box
        const int x = xa - 1 + u, y = ya - 1 + v;
        return x >= 0 && y >= 0 && x < bw && y < bh && comp[at(x, y)] == id;
      };
      stack.assign(1, {0, 0});
      outside[0] = 1;
      while (!stack.empty()) {
        auto [u, v] = stack.back();
        stack.pop_back();
        const int nb[4][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}};
        for (const auto& d : nb) {
          const int a = u + d[0], c = v + d[1];
          if (a < 0 || c < 0 || a >= w || c >= h) continue;
          const size_t q = static_cast<size_t>(c) * w + a;
          if (outside[q] || mine(a, c)) continue;
          outside[q] = 1;
          stack.push_back({a, c});
        }
      }
      std::vector<double> cortex;
      for (auto [x, y] : pix) cortex.push_back(s[static_cast<size_t>(j0 + y) * nx + i0 + x]);
      const double c_med = stats::median(cortex);
      const double med_hi = c_med - b.cmd_min_gap_hu;
      auto medullaLike = [&](int x, int y) {
        if (x < 0 || y < 0 || x >= bw || y >= bh) return false;
        const float v = mean[at(x, y)];
        return v >= kMedullaMinHu && v <= med_hi && comp[at(x, y)] != id;
      };
      int holes = 0;
      std::vector<double> medulla;
      for (int v = 1; v + 1 < h; ++v)
        for (int u = 1; u + 1 < w; ++u) {
          if (outside[static_cast<size_t>(v) * w + u] || mine(u, v)) continue;
          ++holes;
          const int x = xa - 1 + u, y = ya - 1 + v;
          bool thick = true;
          for (int dy = -2; dy <= 2 && thick; ++dy)
            for (int dx = -2; dx <= 2 && thick; ++dx) thick = medullaLike(x + dx, y + dy);
          if (thick) medulla.push_back(s[static_cast<size_t>(j0 + y) * nx + i0 + x]);
        }
      const double filled = (pix.size() + holes) * sx * sy, med_mm2 = medulla.size() * sx * sy;
      spdlog::debug(
          "contrast: kidney section {:.0f} mm2 (filled {:.0f}) at ({}, {}), parenchyma {:.0f} HU, "
          "medulla {:.0f} mm2{}",
          area, filled, i0 + (xa + xb) / 2, j0 + (ya + yb) / 2, c_med, med_mm2,
          medulla.empty() ? std::string() : fmt::format(" at {:.0f} HU", stats::median(medulla)));
      ++out.sections;
      if (med_mm2 >= b.cmd_min_fraction * filled) ++out.cmd_sections;
      out.filled_mm2 += filled;
      out.medulla_mm2 += med_mm2;
      out.cortex.insert(out.cortex.end(), cortex.begin(), cortex.end());
      out.medulla.insert(out.medulla.end(), medulla.begin(), medulla.end());
    }
}

}  // namespace

std::string nephrogramPattern(const ContrastMeasures& m, const ContrastBands& b) {
  const int sections = m.nephro_sections_right + m.nephro_sections_left;
  if (m.kidney_slices == 0) return "not_searched";
  if (sections == 0) return "not_seen";
  if (sections < b.cmd_min_sections) return "indeterminate";
  const bool gap = m.cortex_hu && m.medulla_hu && *m.cortex_hu - *m.medulla_hu >= b.cmd_min_gap_hu;
  // both kidneys, where both were found: one lagging section beside a liver lesion is not a phase
  const bool both = m.nephro_sections_right > 0 && m.nephro_sections_left > 0;
  const bool sides =
      both ? m.nephro_cmd_right > 0 && m.nephro_cmd_left > 0 : m.nephro_cmd_right + m.nephro_cmd_left > 0;
  if (gap && sides && m.medulla_fraction >= b.cmd_min_fraction &&
      m.nephro_cmd_right + m.nephro_cmd_left >= b.cmd_min_sections)
    return "corticomedullary";
  if (m.medulla_fraction < b.homogeneous_max_fraction) return "homogeneous";
  return "indeterminate";
}

ContrastMeasures measureContrast(const Scan& scan, const LocalizeResult& loc) {
  ContrastMeasures m;
  const auto aorta = measureAorta(scan, loc);
  m.aorta_hu = aorta.hu;
  m.ivc_hu = aorta.ivc_hu;
  const auto& cc = canonicalOf(scan);
  const CtImage* img = cc.image.GetPointer();
  const auto size = img->GetLargestPossibleRegion().GetSize();
  const auto sp = img->GetSpacing();
  const int nx = static_cast<int>(size[0]), ny = static_cast<int>(size[1]), nz = static_cast<int>(size[2]);
  double klo = 0, khi = 0;
  const SpineTrack track = spineTrack(img, loc, klo, khi);
  m.spine_named = track.named;
  // The kidneys lie beside T12-L3: that range and 20 mm beyond, sampled every ~5 mm; not
  // searched when none of those levels is named (nothing says where the kidneys would be).
  if (!track.named || klo > khi) return m;
  const double margin = 20 / sp[2];
  const int ka = std::max(0, static_cast<int>(std::ceil(klo - margin)));
  const int kb = std::min(nz - 1, static_cast<int>(std::floor(khi + margin)));
  const int step = std::max(1, static_cast<int>(std::lround(5.0 / sp[2])));
  Excretion ex;
  Nephrogram right, left;
  const ContrastBands bands;
  for (int k = ka; k <= kb; k += step) {
    double ci = 0, cj = 0;
    if (!track.at(k, sp[2], 6, ci, cj)) continue;
    ++m.kidney_slices;
    const int16_t* s = img->GetBufferPointer() + static_cast<size_t>(k) * nx * ny;
    const double before = ex.area_mm2;
    const int j0 = static_cast<int>(cj - kRenalApMm / sp[1]), j1 = static_cast<int>(cj + kRenalApMm / sp[1]);
    const int lo = static_cast<int>(kRenalLateralMinMm / sp[0]),
              hi = static_cast<int>(kRenalLateralMaxMm / sp[0]);
    const int ic = static_cast<int>(std::lround(ci));
    excretionInBox(s, nx, ny, sp[0], sp[1], ic - hi, ic - lo, j0, j1, ex);  // patient's right
    excretionInBox(s, nx, ny, sp[0], sp[1], ic + lo, ic + hi, j0, j1, ex);  // patient's left
    if (ex.area_mm2 > before) ++m.excretion_slices;
    const int nj0 = static_cast<int>(cj - kNephroApMm / sp[1]),
              nj1 = static_cast<int>(cj + kNephroApMm / sp[1]);
    const int nlo = static_cast<int>(kNephroLateralMinMm / sp[0]),
              nhi = static_cast<int>(kNephroLateralMaxMm / sp[0]);
    nephrogramInBox(s, nx, ny, sp[0], sp[1], ic - nhi, ic - nlo, nj0, nj1, bands, right);
    nephrogramInBox(s, nx, ny, sp[0], sp[1], ic + nlo, ic + nhi, nj0, nj1, bands, left);
  }
  m.nephro_sections_right = right.sections;
  m.nephro_sections_left = left.sections;
  m.nephro_cmd_right = right.cmd_sections;
  m.nephro_cmd_left = left.cmd_sections;
  std::vector<double> cortex = right.cortex, medulla = right.medulla;
  cortex.insert(cortex.end(), left.cortex.begin(), left.cortex.end());
  medulla.insert(medulla.end(), left.medulla.begin(), left.medulla.end());
  if (!cortex.empty()) m.cortex_hu = stats::median(cortex);
  if (!medulla.empty()) m.medulla_hu = stats::median(medulla);
  const double filled = right.filled_mm2 + left.filled_mm2;
  if (filled > 0) m.medulla_fraction = (right.medulla_mm2 + left.medulla_mm2) / filled;
  m.excretion_mm2 = ex.area_mm2;
  if (!ex.values.empty()) m.excretion_hu = stats::median(ex.values);
  if (!ex.ring.empty()) m.renal_hu = stats::median(ex.ring);
  return m;
}

ContrastPhase estimateContrastPhase(const Scan& scan, const LocalizeResult& loc) {
  return decideContrastPhase(measureContrast(scan, loc), scan.info.contrast_agent);
}

}  // namespace ctbmd
