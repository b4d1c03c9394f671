#pragma once
// Quality-control pictures a person can look at.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ctbmd/image.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, top row first
};

/// What the case picture can show beyond localize's result (all optional).
struct QcExtras {
  std::string case_id;
  const LabelImage* segmentation = nullptr;  // body outlines
  const LabelImage* roi = nullptr;           // ROI outlines
  const BmdResult* bmd = nullptr;            // per-level HU, BMD and validity
  std::vector<std::string> case_flags;
};

/// The case's QC picture: a header (case, status, anchors, flags or why nothing is named, a
/// legend), coronal and sagittal slabs (+-4 mm) through the column at true aspect ratio
/// (patient's right on the left, anterior on the left, superior up) with each level's name,
/// disc planes, anchors and (with a segmentation) body outlines coloured by validity, and one
/// axial panel per level through its centre with body and ROI outlines, HU and BMD.
RgbImage renderCaseQc(const Scan& scan, const LocalizeResult& loc, const QcExtras& extra);

/// renderCaseQc with localize's result only (ctbmd-localize's picture).
RgbImage renderLocalizeQc(const Scan& scan, const LocalizeResult& loc);

/// Pie chart of a learned classifier's class probabilities, with the category and a legend.
RgbImage renderClassificationQc(const ClassifyResult& r);

/// Text broken into lines of at most `cols` characters for a caption: breaks after a space
/// (dropped) or after '+', ',', ':' or '/' (kept), a longer word split hard; with max_lines > 0
/// and more text than fits, the last line ends in "..." so a cut is never silent.
std::vector<std::string> wrapText(const std::string& s, std::size_t cols, std::size_t max_lines = 0);

void writePngRgb(const std::filesystem::path& path, const RgbImage& img, bool force);
/// Grey PNG (8-bit), written atomically. `data` is row-major, top row first.
void writePng(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& data,
              bool force);

}  // namespace ctbmd
