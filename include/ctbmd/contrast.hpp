#pragma once
// Contrast phase of a CT from the image (aortic blood HU beside the lumbar spine) and the DICOM
// header (ContrastBolusAgent). Trabecular HU rise under iodinated contrast, so HU rules made on
// unenhanced scans must not treat an enhanced scan as native (README: Contrast).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ctbmd/image.hpp"

namespace ctbmd {

struct LocalizeResult;

/// Aortic-blood bands (HU) of the phases, from the literature on phase classification:
/// unenhanced blood is 30-60 HU (haematocrit); enhancement peaks in the arterial phase (aorta
/// >= ~230 HU) and falls through the portal-venous (130-230) to the delayed phase (70-130).
struct ContrastBands {
  double native_below = 70;
  double delayed_below = 130;
  double portal_below = 230;
};

struct ContrastPhase {
  std::string phase = "unknown";  // native | arterial | portal-venous | delayed | enhanced | unknown
  double confidence = 0;          // 0-1
  bool enhanced = false;          // iodinated contrast is (or may be) present
  std::optional<double> aorta_hu;
  std::string dicom_agent;  // ContrastBolusAgent (0018,0010), when the header has one
  std::string basis;        // how the phase was decided, for people
  nlohmann::json toJson() const;
  static ContrastPhase fromJson(const nlohmann::json& j);
};

/// The phase from an aortic HU (none: not measured) and a DICOM agent ("" when none): a pure
/// function, tested table-driven.
ContrastPhase decideContrastPhase(std::optional<double> aorta_hu, const std::string& dicom_agent,
                                  const ContrastBands& b = {});

/// Measures the aorta along the localized spine and decides.
ContrastPhase estimateContrastPhase(const Scan& scan, const LocalizeResult& loc);

}  // namespace ctbmd
