#pragma once
// The five stages, callable in-process. Each result converts to and from the JSON file
// that the stage's executable writes, so a shell pipeline and ctbmd-run see the same data.
#include <array>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctbmd/contrast.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/levels.hpp"

namespace ctbmd {

// ---- localize ------------------------------------------------------------------------------
struct LevelLocation {
  int label = 0;
  std::string name;
  LevelStatus status = LevelStatus::Missing;
  std::array<double, 3> center_mm{0, 0, 0};  // physical LPS (ITK convention)
  double superior_mm = 0, inferior_mm = 0;   // world z of the body's top and bottom
  std::array<int, 2> slice_range{-1, -1};    // first/last index along the input's S-I axis
  double confidence = 0;
  // Naming QC: "suspected_merge" (the body is far longer than its neighbours predict: a
  // disc missed inside it), "named_across_merge" (its name was counted across such a body);
  // `note` says why. Either makes the level unusable downstream.
  std::vector<std::string> flags;
  std::string note;
  // The body lies between two oblique planes through the discs (point, unit normal pointing
  // superior; physical LPS).
  std::array<double, 3> superior_point{0, 0, 0}, superior_normal{0, 0, 1};
  std::array<double, 3> inferior_point{0, 0, 0}, inferior_normal{0, 0, 1};
};

struct LocalizeParams {
  std::string method = "classical";  // weight-free default | mip-localizer (learned)
  std::string model;                 // mip-localizer: folder with stage1/ and stage2/
  std::string device = "auto";       // auto | cpu | cuda
  // A level the user knows, for scans that show neither anchor (a cut-out around one
  // vertebra): "L3" names the complete vertebra nearest the scan's centre, "L3@-56.5" the one
  // nearest world z = -56.5 mm. Never overrides anatomy: a disagreeing hint is flagged.
  std::string level_hint;
};

/// A point in physical LPS millimetres (ITK convention).
using PointMm = std::array<double, 3>;

/// The anatomy gate's evidence for one segment (a candidate vertebra) of the traced column.
struct SegmentEvidence {
  bool sacral = false;
  double canal_enclosure = 0;  // best fraction of rays closed by bone, over the segment's slices
  double canal_radius_mm = 0;  // median ray length to bone at that point
  double canal_depth_mm = 0;   // how far behind the body centre the canal centre lies
  double canal_x = 0, canal_y = 0, canal_z = 0;  // where (canonical mm)
  int canal_slices = 0;                          // slices where it is closed, at one place
  int holes_in_marrow = 0;                       // closed holes refused: inside the body's own filled outline
  double posterior_bone_mm = 0;                  // most bone behind a closed canal (laminae, spinous process)
  int holes_without_arch = 0;                    // closed holes refused: no posterior elements behind them
  bool canal = false;                            // a canal by ColumnParams' bounds
  std::optional<double> midline_offset;          // |x - body centre| / half-width; none if the body is cut
};

/// The anatomy gate's verdict: is the traced chain of bone a vertebral column?
struct ColumnVerdict {
  bool seen = false;
  std::string reason;  // for people: why it is, or is not, a column
  int segments = 0, with_canal = 0, midline_known = 0, off_midline = 0;
};

/// localize.json "column": the gate's verdict and its evidence per segment, top to bottom
/// (absent when the gate did not run: no chain found, or a learned localizer).
struct ColumnAssessment {
  ColumnVerdict verdict;
  std::vector<SegmentEvidence> segments;
};

/// localize.json "vertebrae": one body found along the column, top to bottom.
struct VertebraFound {
  int index = 0;     // 0 = topmost segment
  std::string name;  // "T12", "L1", ..., "S1"; empty when unnamed
  int label = 0;     // VerSe label (0: unnamed; 26: sacrum)
  PointMm center_mm{0, 0, 0};
  double length_mm = 0;               // along the centreline, disc to disc
  bool partial = false;               // cut by the field of view
  int ribs_left = 0, ribs_right = 0;  // rib heads attached
  double row_width_mm = 0;            // bone width across the body's row (sacral alae are wide)
  double ala_reach_mm = 0;            // lateral reach of bone beside the body (sacral alae)
  bool sacral = false;
};

/// The rib and sacrum anchors the classical namer used (indices into `vertebrae`; -1: none).
struct NamingAnchors {
  int last_rib_bearing_index = -1, first_rib_index = -1, sacrum_index = -1;
  bool first_rib_in_view = false, sacrum_seen = false;
  double dense_bone_threshold_hu = 0;  // HU: the slice analysis's trabecular threshold
  double noise_hu = 0;                 // HU: measured pixel noise
  int slices_averaged = 0;             // slices in the analysis's z average
  long slices_traced_radially = 0;
  std::optional<int> rib_pairs_counted;  // when the first rib pair is in view
  std::optional<std::string> rib_pairs_counted_from;
  int rib_components_left = 0, rib_components_right = 0;
  std::optional<int> vertebrae_t1_to_sacrum;
  int ribs_found = 0;
  std::string note, rib_count_note;  // empty: none
  nlohmann::json naming_input;       // the namer's input, for replaying the naming
};

/// localize.json "anchors": what named the levels.
struct Anchors {
  std::string used;                       // sacrum+ribs | first-rib | ... | none; empty: learned
  std::optional<NamingAnchors> naming;    // classical namer's evidence
  std::vector<std::string> metal_levels;  // levels beside metal (>= 2500 HU)
  std::string level_hint;                 // --level-hint as given
  std::string method;                     // learned localizers: what placed the levels
  std::optional<double> l1_top_mm;        // learned localizers: world z of L1's top
  nlohmann::json toJson() const;
  static Anchors fromJson(const nlohmann::json& j);
};

struct LocalizeResult {
  std::string method;
  SpineStatus status = SpineStatus::Named;
  std::string reason;                              // why, for people (empty when named)
  std::optional<ColumnAssessment> column;          // the anatomy gate's verdict and evidence
  std::optional<ContrastPhase> contrast;           // when measured (ctbmd/contrast.hpp)
  nlohmann::json model = nlohmann::json::array();  // learned methods: the models' provenance
  std::vector<LevelLocation> levels;               // always T12, L1 ... L5 in this order
  Anchors anchors;
  std::vector<VertebraFound> vertebrae;  // every body found, top to bottom
  std::vector<PointMm> centerline;       // spine centre every 2 mm (LPS mm)
  std::vector<std::string> flags;        // e.g. "anchors_disagree"
  std::vector<std::string> warnings;
  nlohmann::json toJson() const;
  static LocalizeResult fromJson(const nlohmann::json& j, const std::string& file = "");
  const LevelLocation* find(int label) const;
};

/// Refuses input that is not CT (InputError) — no air/fat below 0 HU, no bone range.
void checkLooksLikeCt(const CtImage* img, const std::string& what);

/// --level-hint "L3" or "L3@-56.5" -> (VerSe label, world z); throws UsageError when malformed.
std::pair<int, std::optional<double>> parseLevelHint(const std::string& hint);
LocalizeResult localize(const Scan& scan, const LocalizeParams& p = {});

// ---- segment -------------------------------------------------------------------------------
struct LevelSegmentation {
  int label = 0;
  std::string name;
  LevelStatus status = LevelStatus::Missing;  // from localize
  long voxels = 0;
  double volume_mm3 = 0;
  double height_anterior_mm = 0, height_middle_mm = 0, height_posterior_mm = 0;
  bool suspected_fracture = false;
  std::string fracture_reason;
  bool suspected_merge = false;  // far taller than the column's bodies: holds part of a neighbour
  std::string merge_reason;
  std::vector<std::string> naming_flags;  // from localize's naming QC (e.g. named_across_merge)
  int repaired_slices = 0;                // slices fixed by the 3-D consistency check
  bool metal = false;                     // metal beside this level (from localize): HU unreliable
};

struct SegmentParams {
  std::string method = "classical";  // classical | unet2d | dense-unet3d
  std::string model;                 // learned methods: model folder (task segment)
  std::string device = "auto";       // auto | cpu | cuda
  double fracture_ratio = 0.8;       // height below this fraction of the neighbours' -> flagged
};

struct SegmentResult {
  std::string method;
  nlohmann::json model = nlohmann::json::object();  // learned methods: the model's provenance
  LabelImage::Pointer labels;                       // on the input grid
  std::vector<LevelSegmentation> levels;
  std::vector<std::string> warnings;
  nlohmann::json toJson() const;  // the label image itself is written separately
  static SegmentResult fromJson(const nlohmann::json& j, LabelImage::Pointer labels,
                                const std::string& file = "");
  const LevelSegmentation* find(int label) const;
};

/// Refuses (InputError) a localize result whose levels lie outside the scan (beyond 15 mm of
/// its edge): made from another scan, or edited. segment() calls it; `file` names the JSON.
void checkLocalizeFitsScan(const Scan& scan, const LocalizeResult& loc, const std::string& file = "");
SegmentResult segment(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p = {});

/// Height (anterior/middle/posterior) and volume of each labelled body, measured on a map.
void measureBodies(const LabelImage* labels, std::vector<LevelSegmentation>& levels);
/// Flags bodies much lower than their neighbours (possible compression fracture), and bodies
/// far taller than the column's others (`suspected_merge`: a disc missed, part of a neighbour
/// taken in).
void flagFractures(std::vector<LevelSegmentation>& levels, double ratio);

// ---- roi-extract ---------------------------------------------------------------------------
struct RoiStats {
  double mean_hu = 0, median_hu = 0, sd_hu = 0, p05 = 0, p25 = 0, p75 = 0, p95 = 0;
  double min_hu = 0, max_hu = 0;
  long voxels = 0;
  double volume_mm3 = 0;
};

struct LevelRoi {
  int label = 0;
  std::string name;
  LevelStatus status = LevelStatus::Missing;  // from the segmentation
  bool usable = false;                        // complete, not fractured, enough voxels
  std::vector<std::string> flags;             // partial, suspected_fracture, too_small, ...
  RoiStats stats;
};

struct RoiParams {
  std::string protocol = "ellipse-s1";  // ellipse-s1 | erode-4mm | mosaic-392
  long min_voxels = 20;
  // Also cut a 3-D crop (HU) around each body's centroid: the input of the 3-D DenseNet
  // regressor (bmd-estimate --bmd-method densenet3d).
  bool crop3d = false;
  double crop3d_spacing_mm = 1.0;
  std::array<int, 3> crop3d_size{32, 48, 48};  // D (superior), H (posterior), W (left)
};

struct RoiResult {
  std::string protocol;
  nlohmann::json protocol_info;
  LabelImage::Pointer roi;  // ROI label map on the input grid (ellipse-s1, erode-4mm)
  std::vector<LevelRoi> levels;
  // mosaic-392: one 392x392 image per level (name, image)
  std::vector<std::pair<std::string, Slice2D::Pointer>> mosaics;
  // crop3d: one 3-D HU crop per segmented level (name, image)
  std::vector<std::pair<std::string, FloatImage::Pointer>> crops3d;
  nlohmann::json toJson() const;
  /// `file` (where j was read) names it in errors.
  static RoiResult fromJson(const nlohmann::json& j, const std::string& file = "");
  const LevelRoi* find(int label) const;
};

/// Names and describes the protocols (source, definition, version).
nlohmann::json roiProtocols();
RoiResult extractRoi(const Scan& scan, const SegmentResult& seg, const RoiParams& p = {});
RoiStats computeStats(const std::vector<float>& values, double voxel_volume_mm3);

// ---- bmd-estimate --------------------------------------------------------------------------
struct Calibration {
  bool calibrated = false;
  std::string source = "default";  // default | file path
  std::string material = "hydroxyapatite";
  double intercept = 0, slope = 0.8;  // BMD [mg/cm3] = intercept + slope * HU
  double intercept_se = 0, slope_se = 0, cov_is = 0;
  nlohmann::json valid_for = nlohmann::json::object();  // kvp, kernel, scanner when known
  nlohmann::json raw = nlohmann::json::object();
  /// The nominal conversion (rules::kNominalSlopeMgCm3PerHu), uncalibrated, with its own
  /// uncertainty as the slope's SE (rules::kNominalSlopeRelSe).
  static Calibration defaultUncalibrated();
  /// The same for a scan of this DICOM KVP: off 120 kVp the slope's SE is
  /// rules::kNominalSlopeRelSeOffKvp.
  static Calibration nominalFor(const std::string& kvp);
  static Calibration fromJson(const nlohmann::json& j, const std::string& source);
  nlohmann::json toJson() const;
};

struct LevelBmd {
  int label = 0;
  std::string name;
  bool usable = false;
  std::vector<std::string> flags;
  double hu = 0, bmd = 0, bmd_se = 0;         // ROI HU (the chosen statistic) and BMD
  double hu_mean = 0, hu_median = 0;          // both ROI statistics, for HU-based rules
  double hu_sd = 0;                           // ROI standard deviation (HU)
  long voxels = 0;                            // ROI voxels
  LevelStatus status = LevelStatus::Missing;  // from localize
  std::array<double, 2> bmd_ci95{0, 0};
};

/// A level's validity in one word for tables: found | partial | missing | unusable:<flags>
/// ("uncalibrated" is a case property, not a level's fault, and is left out).
std::string levelValidity(const LevelBmd& l);

struct BmdParams {
  std::string statistic = "mean";  // mean | median of the ROI
  // calibration (default: HU -> BMD by the calibration) | mosaic-cnn (a regressor on the
  // mosaic-392 images; needs --protocol mosaic-392 and a bmd-regress model folder) |
  // densenet3d (3-D DenseNet-BC regressor on the roi-extract --crop3d crops)
  std::string method = "calibration";
  std::string model;            // model folder for learned methods
  std::string device = "auto";  // auto | cpu | cuda
};

struct BmdResult {
  std::string method = "calibration";
  nlohmann::json model = nlohmann::json::object();  // learned methods: the model's provenance
  Calibration calibration;
  std::string statistic;
  std::string protocol;
  std::vector<LevelBmd> levels;
  std::optional<double> bmd_l1l2, bmd_l1l2_se;
  std::vector<std::string> levels_used;
  std::string levels_reason;
  nlohmann::json toJson() const;
  static BmdResult fromJson(const nlohmann::json& j, const std::string& file = "");
  const LevelBmd* find(int label) const;
};

BmdResult estimateBmd(const RoiResult& roi, const Calibration& cal, const BmdParams& p = {});

// ---- classify ------------------------------------------------------------------------------
struct ClassifyParams {
  // acr-qct | who-tscore | l1-hu | ts-median (see classifyRules())
  std::string rule = "acr-qct";
  std::optional<double> ref_mean, ref_sd;  // who-tscore: young-adult reference of the same measure
  std::string contrast_phase;              // ts-median: native | arterial | portal-venous (given)
  // The phase estimated from the scan (localize.json's "contrast"): ts-median uses it when
  // contrast_phase is not given; HU rules flag an enhanced scan.
  std::optional<ContrastPhase> detected_contrast;
  std::string model;            // bccnet: model folder (task classify)
  std::string device = "auto";  // bccnet: auto | cpu | cuda
};

/// Names, definitions and sources of the classification rules.
nlohmann::json classifyRules();
/// classifyRules() as the Markdown table of docs/methods.md (ctbmd-classify --list-rules; a
/// test fails when that copy drifts from it).
std::string classifyRulesMarkdown();

struct ClassifyResult {
  std::string rule;
  std::string category;  // normal | osteopenia | osteoporosis | indeterminate | unavailable
  nlohmann::json inputs = nlohmann::json::object();
  nlohmann::json details = nlohmann::json::object();
  bool uncalibrated = false;
  std::vector<std::string> flags;                           // e.g. contrast_enhanced
  nlohmann::json probabilities = nlohmann::json::object();  // learned classifiers: class -> p
  nlohmann::json toJson() const;
  static ClassifyResult fromJson(const nlohmann::json& j, const std::string& file = "");
};

/// `roi` (with its mosaics) is needed by the learned rule bccnet only.
ClassifyResult classify(const BmdResult& bmd, const ClassifyParams& p = {}, const RoiResult* roi = nullptr);

/// Rule radiomics-rf: features of the scan's label map (the model's ROI), then its forest. The
/// classifier lives in the radiomics model library (ctbmd/radiomics_model.hpp), which the
/// executables that apply it register here; without it the rule is a UsageError.
using RadiomicsClassifier =
    std::function<ClassifyResult(const Scan& scan, const LabelImage* labels, const ClassifyParams& p)>;
void setRadiomicsClassifier(RadiomicsClassifier c);
/// Loads a radiomics-rf model folder once (card, forest, feature set), so a wrong folder fails
/// before a batch; registered beside the classifier. Without it: UsageError, as the rule.
using RadiomicsModelCheck = std::function<void(const std::string& folder)>;
void setRadiomicsModelCheck(RadiomicsModelCheck c);
void checkRadiomicsModel(const std::string& folder);
ClassifyResult classifyRadiomicsRule(const Scan& scan, const LabelImage* labels, const ClassifyParams& p);

}  // namespace ctbmd
