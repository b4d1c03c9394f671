#pragma once
// Contrast phase of a CT from the image — aortic and caval blood beside the lumbar spine and
// excreted contrast in the renal collecting systems, the cues published phase classifiers use —
// and from the DICOM header (ContrastBolusAgent). Trabecular HU rise under iodinated contrast,
// so HU rules made on unenhanced scans must not treat an enhanced scan as native (README:
// Contrast; docs/methods.md "Contrast phase").
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ctbmd/image.hpp"

namespace ctbmd {

struct LocalizeResult;

/// Aortic-blood bands (HU) of the phases, from the literature on phase classification:
/// unenhanced blood is 30-60 HU (haematocrit); enhancement peaks in the arterial phase (aorta
/// >= ~230 HU) and falls through the portal-venous (130-230) to the delayed phase (70-130).
/// The aorta alone is the weakest cue: the IVC and the kidneys decide first when measured.
struct ContrastBands {
  double native_below = 70;
  double delayed_below = 130;
  double portal_below = 230;
  // Aorta minus IVC: at least this (HU) with the aorta >= arterial_min_aorta is the arterial
  // phase (contrast has not yet returned through the veins); within equilibrium_within the two
  // are mixed (portal-venous, or delayed when the aorta is below delayed_below).
  double arterial_gap = 60;
  double arterial_min_aorta = 150;
  double equilibrium_within = 35;
  // Excreted contrast: at least this bright area (mm^2, summed over the slices searched) in a
  // renal collecting system is the delayed (excretory) phase; kidneys excrete from ~3 min on.
  double excretion_min_mm2 = 20;
};

/// What was measured on the image (none: not measured).
struct ContrastMeasures {
  std::optional<double> aorta_hu;  // median of the aorta's inner 5 mm disk, L1-L3
  std::optional<double> ivc_hu;    // the same for the inferior vena cava beside it
  bool spine_named = true;         // false: the aorta was sought beside an unnamed column
  int kidney_slices = 0;           // slices searched for the kidneys (0: not searched)
  double excretion_mm2 = 0;        // excreted contrast (>= 300 HU) in renal collecting systems
  int excretion_slices = 0;
  std::optional<double> excretion_hu;  // its median HU
  std::optional<double> renal_hu;      // enhanced parenchyma around it (median HU)
};

struct ContrastPhase {
  std::string phase = "unknown";  // native | arterial | portal-venous | delayed | enhanced | unknown
  double confidence = 0;          // 0-1
  bool enhanced = false;          // iodinated contrast is (or may be) present
  std::optional<double> aorta_hu;
  std::optional<double> ivc_hu;
  nlohmann::json kidneys = nlohmann::json::object();  // the collecting-system search (toJson)
  std::string dicom_agent;  // ContrastBolusAgent (0018,0010), when the header has one
  std::string basis;        // how the phase was decided, for people
  nlohmann::json toJson() const;
  /// Checked: an object with a known phase and a confidence in 0-1 (else InputError naming
  /// `file`, e.g. localize.json); measures absent or null are not measured.
  static ContrastPhase fromJson(const nlohmann::json& j, const std::string& file = "");
};

/// The phase from what was measured and a DICOM agent ("" when none): a pure function, tested
/// table-driven. Order of evidence: excreted contrast in the kidneys (delayed), then the aorta
/// against the IVC (arterial / equilibrium), then the aortic bands alone (confidence <= 0.6);
/// an unnamed column caps the confidence at 0.4.
ContrastPhase decideContrastPhase(const ContrastMeasures& m, const std::string& dicom_agent,
                                  const ContrastBands& b = {});

/// Measures the aorta, the IVC and the kidneys along the localized spine.
ContrastMeasures measureContrast(const Scan& scan, const LocalizeResult& loc);

/// measureContrast, then decideContrastPhase with the scan's DICOM agent.
ContrastPhase estimateContrastPhase(const Scan& scan, const LocalizeResult& loc);

}  // namespace ctbmd
