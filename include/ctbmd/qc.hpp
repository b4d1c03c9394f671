#pragma once
// Quality-control pictures a person can look at.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "ctbmd/image.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, top row first
};

/// Coronal and sagittal maximum-intensity projections side by side (patient's right on the
/// left of the coronal view, anterior on the left of the sagittal view, superior up), with
/// each named level's centre marked and labelled; partial levels in yellow, found in green.
RgbImage renderLocalizeQc(const Scan& scan, const LocalizeResult& loc);

/// Pie chart of a learned classifier's class probabilities, with the category and a legend.
RgbImage renderClassificationQc(const ClassifyResult& r);

void writePngRgb(const std::filesystem::path& path, const RgbImage& img, bool force);

}  // namespace ctbmd
