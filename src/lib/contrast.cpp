// Contrast phase from the aorta and the DICOM header (ctbmd/contrast.hpp).
#include "ctbmd/contrast.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

using nlohmann::json;

json ContrastPhase::toJson() const {
  json j = {{"phase", phase}, {"confidence", confidence}, {"enhanced", enhanced}, {"basis", basis}};
  j["aorta_hu"] = aorta_hu ? json(*aorta_hu) : json(nullptr);
  if (!dicom_agent.empty()) j["dicom_contrast_agent"] = dicom_agent;
  return j;
}

ContrastPhase ContrastPhase::fromJson(const json& j) {
  ContrastPhase c;
  c.phase = j.value("phase", std::string("unknown"));
  c.confidence = j.value("confidence", 0.0);
  c.enhanced = j.value("enhanced", false);
  c.basis = j.value("basis", std::string());
  if (j.contains("aorta_hu") && j["aorta_hu"].is_number()) c.aorta_hu = j["aorta_hu"].get<double>();
  c.dicom_agent = j.value("dicom_contrast_agent", std::string());
  return c;
}

ContrastPhase decideContrastPhase(std::optional<double> aorta_hu, const std::string& dicom_agent,
                                  const ContrastBands& b) {
  ContrastPhase c;
  c.aorta_hu = aorta_hu;
  c.dicom_agent = dicom_agent;
  const bool agent = !dicom_agent.empty();
  if (!aorta_hu) {
    c.phase = agent ? "enhanced" : "unknown";
    c.enhanced = agent;
    c.confidence = agent ? 0.6 : 0;
    c.basis = agent ? "aorta not found; the DICOM header names a contrast agent ('" + dicom_agent + "')"
                    : "aorta not found and no contrast agent in the header: phase unknown";
    return c;
  }
  const double a = *aorta_hu;
  // confidence: how far inside its band the value lies (20 HU from a border is sure)
  auto inside = [&](double lo, double hi) { return std::clamp(std::min(a - lo, hi - a) / 20.0, 0.0, 1.0); };
  char buf[96];
  std::snprintf(buf, sizeof buf, "aortic blood %.0f HU", a);
  c.basis = buf;
  if (a < b.native_below) {
    c.phase = "native";
    c.confidence = 0.5 + 0.45 * inside(-1e9, b.native_below);
    c.enhanced = agent;  // a named agent may be oral only; trust neither side fully
    if (agent) {
      c.confidence = std::min(c.confidence, 0.5);
      c.basis += " (unenhanced range), but the DICOM header names a contrast agent ('" + dicom_agent +
                 "'): oral contrast only, or a late scan; treated as possibly enhanced";
    } else {
      c.basis += ": in the unenhanced range (30-60 HU)";
    }
    return c;
  }
  c.enhanced = true;
  // Aortic HU alone cannot tell every phase apart (renal and portal-venous enhancement would),
  // so the enhanced phases never get more than 0.7.
  if (a < b.delayed_below) {
    c.phase = "delayed";
    c.confidence = 0.3 + 0.4 * inside(b.native_below, b.delayed_below);
  } else if (a < b.portal_below) {
    c.phase = "portal-venous";
    c.confidence = 0.3 + 0.4 * inside(b.delayed_below, b.portal_below);
  } else {
    c.phase = "arterial";
    c.confidence = 0.3 + 0.4 * inside(b.portal_below, 1e9);
  }
  c.basis += ": enhanced, " + c.phase + " band" + (agent ? "; DICOM agent '" + dicom_agent + "'" : "");
  return c;
}

ContrastPhase estimateContrastPhase(const Scan& scan, const LocalizeResult& loc) {
  return decideContrastPhase(measureAorta(scan, loc).hu, scan.info.contrast_agent);
}

}  // namespace ctbmd
