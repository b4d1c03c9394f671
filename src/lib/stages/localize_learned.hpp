#pragma once
// Learned localization (the two-stage MIP localizer through the LibTorch plugin).
#include "ctbmd/stages.hpp"

namespace ctbmd {
LocalizeResult localizeLearned(const Scan& scan, const LocalizeParams& p);
/// Flags levels with metal (>= 2500 HU) beside them (flags "metal", anchors.metal_levels).
void flagMetalLevels(LocalizeResult& res, const CtImage* canonical);
}  // namespace ctbmd
