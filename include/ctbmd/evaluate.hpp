#pragma once
// ctbmd-evaluate: predictions (a ctbmd-run output folder or its results.csv) against references
// (a CSV, or a folder of ctbmd-phantom *_truth.json files): the statistics of the published
// tables - agreement, Bland-Altman, regression, ROC with DeLong CIs, sensitivity/specificity/
// PPV/NPV, confusion matrix, Dice and labelling accuracy - as JSON, Markdown and plots.
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ctbmd {

struct EvalCase {
  std::string case_id;
  // reference
  std::optional<double> ref_bmd;  // L1-L2 average, mg/cm3
  std::string ref_category;       // normal | osteopenia | osteoporosis ("" = from ref_bmd)
  std::map<std::string, double> ref_level_bmd;
  std::filesystem::path ref_labels;                        // label map (VerSe numbering), optional
  std::optional<double> ref_cal_slope, ref_cal_intercept;  // true BMD = intercept + slope * HU (phantoms)
  // prediction
  bool pred_ok = false;
  std::string pred_status, pred_error;
  std::string pred_reason;  // results.csv "reason": why a case gave no level (no_spine, levels_not_named)
  std::optional<double> pred_bmd;
  std::string pred_category, pred_calibration;
  std::map<std::string, double> pred_level_bmd;  // usable levels only (bmd.json), when known
  long pred_levels_unusable = 0;
  std::filesystem::path pred_labels;
  std::optional<double> pred_cal_slope, pred_cal_intercept;  // the case's calibration.json, if any
  std::string pred_cal_source;
  // Learned rules (bccnet, radiomics-rf): the class probabilities of classification.json.
  std::map<std::string, double> pred_probability;
};

struct EvaluateOptions {
  bool dice = true;   // compute Dice when both label maps are known
  bool plots = true;  // PNG + SVG through gnuplot
  std::string title = "ctbmd evaluation";
};

/// Reads predictions: a ctbmd-run output folder (results.csv + <case>/segmentation.nii.gz) or a
/// results.csv; and references: a CSV (case_id, bmd or bmd_l1l2, optional category, labels,
/// L1_bmd...) or a folder of *_truth.json. Joins them on case_id.
std::vector<EvalCase> loadEvaluationCases(const std::filesystem::path& predictions,
                                          const std::filesystem::path& reference,
                                          std::vector<std::string>& notes);

/// Computes everything; returns the JSON written as evaluation.json.
nlohmann::json evaluate(const std::vector<EvalCase>& cases, const EvaluateOptions& opt);

/// Markdown tables (like the papers') from the evaluation JSON.
std::string evaluationMarkdown(const nlohmann::json& ev, const std::string& title);

/// evaluation.html: the Markdown report as HTML with the plots' SVG (from `dir`) inline, and a
/// sortable table of every case (predicted, reference, error, categories) to find the outliers.
std::string evaluationHtml(const nlohmann::json& ev, const std::string& markdown,
                           const std::filesystem::path& dir, const std::string& title);

/// Writes regression, Bland-Altman and ROC plots as PNG and SVG into `dir` with gnuplot
/// (the script is kept as plots.gp). Throws ProcessingError when gnuplot is missing.
std::vector<std::filesystem::path> writeEvaluationPlots(const std::vector<EvalCase>& cases,
                                                        const nlohmann::json& ev,
                                                        const std::filesystem::path& dir,
                                                        const std::string& title, bool force);

}  // namespace ctbmd
