#pragma once
// The radiomics random-forest classifier (issue 19): training in the hip seed's order —
// z-score fitted on the training split, RFE, mRMR, LASSO, then a random forest (OpenCV's
// ml::RTrees) — and the model folder it writes and reads: model.json (a model card, task
// "radiomics-classify") + forest.yml, checked by sha256 through one typed loader.
// Linked only by the executables that train or apply it (OpenCV costs ~9 ms of start-up).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/model_card.hpp"
#include "ctbmd/radiomics.hpp"
#include "ctbmd/radiomics_selection.hpp"

namespace ctbmd::radiomics {

// Every tuned number of the training, with its unit and reason.
struct TrainRadiomicsParams {
  std::string label_column = "category";  // the reference CSV's class column
  std::vector<std::string> classes;       // class order (ordinal for LASSO); empty: the seed's three
  double test_fraction = 0.3;             // of the cases (never ROIs: a case's levels stay together)
  uint64_t seed = 1;                      // the split and the forest
  int rfe_keep = 100;                     // features after RFE (the seed's first, coarse step)
  int rfe_step = 10;                      // features dropped per RFE round
  double ridge_alpha = 1.0;  // RFE's estimator: RidgeClassifier(alpha = 1), scikit-learn's default
  int mrmr_keep = 20;        // features after mRMR
  int mrmr_bins = 10;        // equal-width bins per feature for the MI estimate
  int lasso_folds = 5;       // LassoCV folds over the training rows
  int trees = 500;           // forest size
  int max_depth = 12;        // per tree; the training rows are few
  int min_samples = 2;       // per split
};

struct TrainRadiomicsResult {
  std::filesystem::path folder;
  nlohmann::json card;  // model.json as written
};

// Features: one or more features.csv (ctbmd-radiomics), rows keyed by case_id and roi. The
// reference CSV: case_id, optional roi, and the label column. Writes the model folder.
TrainRadiomicsResult trainRadiomics(const std::vector<std::filesystem::path>& feature_csvs,
                                    const std::filesystem::path& reference_csv, const TrainRadiomicsParams& p,
                                    const std::filesystem::path& out_folder, bool force);

struct RadiomicsPrediction {
  std::string label;                          // the most probable class
  std::map<std::string, double> probability;  // votes / trees, per class
  // Kept features beyond the training rows' range (card input.training_range): the prediction
  // is an extrapolation and rule radiomics-rf does not report it.
  std::vector<std::string> outside_training;
};

class RadiomicsModel {
 public:
  static RadiomicsModel load(const std::filesystem::path& folder);  // InputError naming what is wrong
  const ModelCard& card() const { return card_; }
  const std::vector<std::string>& features() const { return features_; }
  const std::vector<std::string>& classes() const { return classes_; }
  // The feature set and ROI the forest was trained on (feature_set.json, input.roi).
  const FeatureConfig& featureConfig() const { return config_; }
  const RoiRequest& roi() const { return roi_; }
  // Kept features beyond the training range (card input.training_range) that make a case
  // "outside" the model.
  int minFeaturesOutside() const { return min_outside_; }
  // Probabilities for one ROI's features (tag -> value); a missing or undefined feature the
  // model uses is an InputError naming it.
  RadiomicsPrediction predict(const std::map<std::string, double>& row) const;
  ~RadiomicsModel();
  RadiomicsModel(RadiomicsModel&&) noexcept;
  RadiomicsModel& operator=(RadiomicsModel&&) noexcept;

 private:
  RadiomicsModel();
  struct Forest;
  ModelCard card_;
  std::vector<std::string> features_, classes_;
  Scaler scaler_;
  std::vector<double> range_lo_, range_hi_;
  double range_margin_ = 0.5;
  int min_outside_ = 2;
  FeatureConfig config_;
  RoiRequest roi_;
  std::unique_ptr<Forest> forest_;
};

}  // namespace ctbmd::radiomics

namespace ctbmd {
struct Scan;
struct ClassifyParams;
struct ClassifyResult;
}  // namespace ctbmd

namespace ctbmd::radiomics {
// Rule radiomics-rf on one scan: the features of the model's ROI (input.roi) of `labels` with
// the model's feature set, then the forest. A ROI the segmentation lacks, or a feature undefined
// on it, gives category "unavailable" with the reason (never an exception for a case's data).
ClassifyResult classifyRadiomics(const Scan& scan, const LabelImage* labels, const ClassifyParams& p);
// The same from rows already computed (ctbmd-classify --features): one result per row.
std::vector<ClassifyResult> classifyFeatureRows(const RadiomicsModel& model,
                                                const std::vector<FeatureRow>& rows);
// Registers classifyRadiomics as the library's radiomics-rf rule (ctbmd-run, ctbmd-classify).
void registerRadiomicsRule();
}  // namespace ctbmd::radiomics
