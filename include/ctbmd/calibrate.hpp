#pragma once
#include <optional>
// HU -> BMD calibration (BMD [mg/cm3] = intercept + slope * HU) from three sources:
// phantom rods in a scan, paired HU/QCT data, or the patient's own reference tissues.
// The result is the calibration JSON that bmd-estimate reads (Calibration::fromJson).
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/image.hpp"
#include "ctbmd/stages.hpp"
#include "ctbmd/stats.hpp"

namespace ctbmd {

struct CalibrationPoint {
  std::string name;    // rod name, tissue, or "case/level"
  double hu = 0;       // measured (robust ROI statistic)
  double hu_sd = 0;    // spread of the measurement (SD of per-slice means, or ROI SD)
  double density = 0;  // reference density, mg/cm3 of the material
  long voxels = 0;
  bool used = true;
  std::string note;
  std::array<double, 3> center_mm{0, 0, 0};  // where it was measured (LPS), if in a scan
};

struct CalibrationFit {
  std::string source;    // rods | paired | internal
  std::string material;  // hydroxyapatite | K2HPO4
  stats::LinearFit fit;  // x = HU, y = density
  std::vector<CalibrationPoint> points;
  nlohmann::json valid_for = nlohmann::json::object();  // kvp, kernel, scanner, ... when known
  nlohmann::json details = nlohmann::json::object();
  std::vector<std::string> warnings;
  /// The calibration JSON body (read back by Calibration::fromJson).
  nlohmann::json toJson() const;
};

// ---- phantom rods ----------------------------------------------------------------------------
struct PhantomRod {
  std::string name;
  double density = 0;  // mg/cm3 of the material
};

struct PhantomDefinition {
  std::string name, material, description, source;
  double rod_diameter_mm = 0;
  std::vector<PhantomRod> rods;
  static PhantomDefinition fromJson(const nlohmann::json& j, const std::string& where);
  nlohmann::json toJson() const;
  /// Built-in definitions: "esp-ha" (50/100/200 mg/cm3 HA, ESP-like), "k2hpo4-5rod".
  static PhantomDefinition builtin(const std::string& name);
  static std::vector<std::string> builtinNames();
  /// A built-in name or a JSON file path.
  static PhantomDefinition load(const std::string& name_or_path);
};

struct RodParams {
  double min_contrast_hu = 12;   // rod vs surrounding material
  double roi_radius_frac = 0.6;  // measuring disk, fraction of the rod radius
};

/// Finds the rods in a scan (under a patient or a phantom-only scan) and fits the line.
CalibrationFit calibrateRods(const Scan& scan, const PhantomDefinition& def, const RodParams& p = {});

// ---- paired data -------------------------------------------------------------------------------
struct PairedRow {
  std::string case_id, level;
  double hu = 0, bmd = 0;
};
/// CSV with a header naming columns: hu and bmd (required; also accepts reference_bmd,
/// qct_bmd), case/case_id and level (optional).
std::vector<PairedRow> readPairedCsv(const std::filesystem::path& path);
CalibrationFit calibratePaired(const std::vector<PairedRow>& rows, const std::string& method,
                               const std::string& material, double huber_k = 1.345);

// ---- internal (phantomless) --------------------------------------------------------------------
struct ReferenceTissue {
  std::string name;
  double density = 0;                    // equivalent density, mg/cm3 of the material
  std::array<double, 2> hu_range{0, 0};  // plausible HU on a working scanner; outside -> not used
  std::string description;
};
struct TissueTable {
  std::string material = "hydroxyapatite";
  std::string source;
  std::vector<ReferenceTissue> tissues;
  const ReferenceTissue* find(const std::string& name) const;
  static TissueTable builtin();
  static TissueTable fromJson(const nlohmann::json& j, const std::string& where);
  nlohmann::json toJson() const;
};

struct InternalParams {
  std::array<double, 2> slope_range{0.55, 1.10};       // plausible mg/cm3 per HU
  std::array<double, 2> intercept_range{-60.0, 60.0};  // plausible mg/cm3 at 0 HU
  double max_residual_sd = 20.0;                       // mg/cm3
  long min_voxels = 200;                               // per tissue
};

/// Segments air, subcutaneous fat, paraspinal muscle and aortic blood, checks their HU and
/// fits the line. `loc` places the tissues around the spine. Throws ProcessingError when
/// fewer than three tissues are plausible or the fitted line is implausible.
CalibrationFit calibrateInternal(const Scan& scan, const LocalizeResult& loc, const TissueTable& tissues,
                                 const InternalParams& p = {});

/// Aortic blood beside the lumbar spine (between L1 and L3 when named, else along the whole
/// centreline): the median HU of the aorta's inner 5 mm disk over every ~3 mm slice where it
/// is found; and of the inferior vena cava beside it (15-50 mm to the patient's right), found
/// in at least two slices. Empty when the spine or the vessel is not found.
struct AortaMeasure {
  std::optional<double> hu;
  long voxels = 0;
  int slices = 0;
  std::optional<double> ivc_hu;
  long ivc_voxels = 0;
  int ivc_slices = 0;
};
AortaMeasure measureAorta(const Scan& scan, const LocalizeResult& loc);

/// Scan parameters a calibration made on this scan is valid for.
nlohmann::json scanValidity(const ScanInfo& info);
/// Warnings when the calibration was made under other scan parameters than `info`'s.
std::vector<std::string> calibrationMismatch(const Calibration& cal, const nlohmann::json& scan_ct);

}  // namespace ctbmd
