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
  // The nephrogram: corticomedullary when the medulla lags the cortex by at least this (HU)
  // over at least cmd_min_fraction of the sections' area, on both sides where both were found,
  // in at least cmd_min_sections sections; homogeneous when the medulla is under
  // homogeneous_max_fraction of that area over as many sections. The corticomedullary phase
  // shows cortex 150-250 HU against medulla 60-110 HU; by the nephrographic phase (80-120 s)
  // the parenchyma is uniform (Yuh & Cohan, AJR 1999, "Different phases of renal enhancement"; Sheth et al.,
  // RadioGraphics 2001;21:S237-S254).
  double cmd_min_gap_hu = 60;
  double cmd_min_fraction = 0.08;
  double homogeneous_max_fraction = 0.02;
  int cmd_min_sections = 3;
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
  // The nephrogram: kidney sections (enhanced parenchyma >= 130 HU ringing a closed outline)
  // per side, and the medulla inside them (measureContrast; docs/methods.md "Contrast phase").
  int nephro_sections_right = 0, nephro_sections_left = 0;
  int nephro_cmd_right = 0, nephro_cmd_left = 0;  // sections of those with a lagging medulla
  std::optional<double> cortex_hu;                // median HU of the sections' parenchyma
  std::optional<double> medulla_hu;               // median HU of their medulla (when any)
  double medulla_fraction = 0;                    // medulla area / filled section area
};

/// The pattern of renal enhancement: `corticomedullary` (cortex bright, medulla lagging: about
/// 25-70 s after injection), `homogeneous` (nephrographic or later, or unenhanced kidneys
/// that were found because they are bright), `indeterminate` (sections found, evidence mixed
/// or one-sided), `not_seen` (no kidney section found), `not_searched` (no named level
/// says where the kidneys are).
std::string nephrogramPattern(const ContrastMeasures& m, const ContrastBands& b = {});

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
