#pragma once
// The stage contract: what each stage writes, shared by the single-stage executables and
// ctbmd-run (which chains the stages in one process without re-reading the scan).
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/contrast.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

namespace fs = std::filesystem;

/// {"ct": {"path", "sha256", "format", ...}} for a scan.
nlohmann::json scanInputs(const Scan& scan);
/// {"path", "sha256"} of a file.
nlohmann::json fileInput(const fs::path& p);

/// Writes `body` with schema and provenance stamped on, atomically.
void writeStageJson(const fs::path& path, nlohmann::json body, const std::string& schema,
                    const nlohmann::json& inputs, const nlohmann::json& params, bool force);

// Stage writers. Each returns nothing and throws on failure; outputs are atomic.
void saveLocalize(const fs::path& json_path, const LocalizeResult& r, const Scan& scan,
                  const LocalizeParams& p, bool force);
/// Writes the label map and its JSON (<stem>.json beside it, i.e. segmentation.json).
void saveSegment(const fs::path& nii_path, const SegmentResult& r, const Scan& scan,
                 const fs::path& localize_json, const SegmentParams& p, bool force);
fs::path segmentJsonPath(const fs::path& nii_path);
/// Writes roi.nii.gz, roi.json (beside: <stem>.json) and, for mosaic-392, mosaic_<L>.nii.gz/.png.
void saveRoi(const fs::path& nii_path, const RoiResult& r, const Scan& scan, const fs::path& seg_path,
             const RoiParams& p, bool force);
fs::path roiJsonPath(const fs::path& nii_path);
void saveBmd(const fs::path& json_path, const BmdResult& r, const fs::path& roi_json,
             const std::optional<fs::path>& calibration, const BmdParams& p, bool force);
void saveClassification(const fs::path& json_path, const ClassifyResult& r, const fs::path& bmd_json,
                        const ClassifyParams& p, bool force);

/// Calibration JSON (schema ctbmd.calibration) that bmd-estimate reads.
void saveCalibration(const fs::path& json_path, const CalibrationFit& fit, const nlohmann::json& inputs,
                     const nlohmann::json& params, bool force);

/// roi.json with the mosaic-392 images written beside it (for learned methods).
RoiResult loadRoiWithMosaics(const fs::path& roi_json);

struct PipelineOptions {
  LocalizeParams localize;
  SegmentParams segment;
  RoiParams roi;
  BmdParams bmd;
  ClassifyParams classify;
  std::optional<fs::path> calibration;
  // Per-case calibration from the scan itself: "" (none), "rods" or "internal".
  std::string calibrate;
  std::string phantom = "esp-ha";   // rods: built-in name or definition file
  std::optional<fs::path> tissues;  // internal: tissue table file (default: built-in)
  ReadOptions read;
};

struct CaseResult {
  std::string case_id;
  fs::path input;
  CaseStatus status = CaseStatus::Ok;
  std::string reason;  // why, for no_spine and levels_not_named
  std::string error;
  ScanInfo scan;                                   // what the scan's header says (kVp, kernel, UIDs; DICOM)
  std::string rule;                                // the classification rule applied
  std::optional<ContrastPhase> contrast;           // estimated from the scan (not for no_spine)
  std::map<std::string, double> level_confidence;  // localize's naming confidence per level
  int exit_code = 0;
  std::optional<BmdResult> bmd;
  std::optional<ClassifyResult> classification;
  std::string localize_method, anchors;
  std::vector<std::string> flags;
  double seconds = 0;
  nlohmann::json stage_seconds = nlohmann::json::object();
};

/// Runs all five stages on one input, writing the intermediates into case_dir.
/// Never throws for case-level failures: they come back as status "error".
CaseResult runCase(const fs::path& input, const std::string& case_id, const fs::path& case_dir,
                   const PipelineOptions& opt, const Calibration& cal, bool force);

/// Files and DICOM series folders under the given paths (folders searched recursively).
/// Paths whose file name matches one of `exclude` (glob: * and ?) are skipped.
std::vector<fs::path> discoverInputs(const std::vector<fs::path>& paths,
                                     const std::vector<std::string>& exclude);

std::string resultsCsvHeader();
std::string resultsCsvRow(const CaseResult& r);
/// levels.csv: one row per case and reported level (the long format of results.csv).
std::string levelsCsvHeader();
/// The case's rows of levels.csv, each ending in a newline.
std::string levelsCsvRows(const CaseResult& r);

/// One line per level for the log: "L1 found 145.2 HU -> 116.1 mg/cm3".
void logSummary(const CaseResult& r);

}  // namespace ctbmd
