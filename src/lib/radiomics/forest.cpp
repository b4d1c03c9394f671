// The radiomics classifier: training pipeline (split, z-score, RFE, mRMR, LASSO, random forest)
// and the model folder's typed loader. OpenCV's ml::RTrees is the forest.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/ml.hpp>
#include <random>
#include <set>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/radiomics.hpp"
#include "ctbmd/radiomics_model.hpp"
#include "ctbmd/stats.hpp"

namespace ctbmd::radiomics {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct RadiomicsModel::Forest {
  cv::Ptr<cv::ml::RTrees> trees;
};

namespace {

const std::vector<std::string> kSeedClasses = {"normal", "osteopenia", "osteoporosis"};
constexpr const char* kFirstFeatureAfter = "moran_stride";  // features.csv: feature columns follow it
// How far beyond the training rows' range (as a fraction of it) a feature may lie before the
// case is outside what the forest has seen. Measured with models/radiomics-rf-phantom: unseen
// phantoms (seeds 9201-9206) lie at most 0.17 of the range beyond it; the real example_ct and
// CRLM-CT-1004 6.9 and 3.1 (tools/train/radiomics_phantom.sh, docs/radiomics.md).
constexpr double kRangeMargin = 0.5;
// Features beyond it before the case counts as outside: one heavy-tailed feature (NGTDM
// busyness reached 8x its training maximum on an unseen phantom) is not a different scan; two
// independent excursions are (the real CTs above: 5 and 2 features).
constexpr int kMinFeaturesOutside = 2;

struct Row {
  std::string case_id, roi;
  std::vector<double> x;
  int y = -1;
};

double parseCell(const std::string& s) {
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size()) return std::numeric_limits<double>::quiet_NaN();
    return v;
  } catch (const std::exception&) {
    return std::numeric_limits<double>::quiet_NaN();
  }
}

// A deterministic Fisher-Yates shuffle with a portable generator (std::shuffle's draws differ
// between standard libraries).
template <class T>
void portableShuffle(std::vector<T>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::size_t i = v.size(); i > 1; --i) {
    const std::size_t j = std::size_t(rng() % i);
    std::swap(v[i - 1], v[j]);
  }
}

cv::Mat toMat(const Eigen::MatrixXd& x) {
  cv::Mat m(int(x.rows()), int(x.cols()), CV_32F);
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j) m.at<float>(int(i), int(j)) = float(x(i, j));
  return m;
}

// Votes per class (rows: samples) from OpenCV's getVotes, whose first row is the class labels.
Eigen::MatrixXd votes(const cv::ml::RTrees& f, const Eigen::MatrixXd& x, int classes) {
  cv::Mat res;
  f.getVotes(toMat(x), res, 0);
  Eigen::MatrixXd p = Eigen::MatrixXd::Zero(x.rows(), classes);
  for (int c = 0; c < res.cols; ++c) {
    const int label = res.at<int>(0, c);
    if (label < 0 || label >= classes) continue;
    for (int i = 0; i < int(x.rows()); ++i) p(i, label) = res.at<int>(i + 1, c);
  }
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    const double s = p.row(i).sum();
    if (s > 0) p.row(i) /= s;
  }
  return p;
}

json evaluateSplit(const Eigen::MatrixXd& prob, const std::vector<int>& y,
                   const std::vector<std::string>& classes) {
  const int k = int(classes.size());
  std::vector<std::vector<long>> confusion(std::size_t(k), std::vector<long>(std::size_t(k), 0));
  long correct = 0;
  std::vector<int> pred(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) {
    Eigen::Index best = 0;
    prob.row(Eigen::Index(i)).maxCoeff(&best);
    pred[i] = int(best);
    confusion[std::size_t(y[i])][std::size_t(best)] += 1;
    correct += pred[i] == y[i];
  }
  const auto acc = stats::proportion(correct, long(y.size()));
  json per_class = json::object();
  for (int c = 0; c < k; ++c) {
    std::vector<double> score;
    std::vector<bool> pos;
    long tp = 0, fn = 0, tn = 0, fp = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
      score.push_back(prob(Eigen::Index(i), c));
      pos.push_back(y[i] == c);
      if (y[i] == c)
        (pred[i] == c ? tp : fn) += 1;
      else
        (pred[i] == c ? fp : tn) += 1;
    }
    json e = {{"n_positive", tp + fn}, {"n_negative", tn + fp}};
    if (tp + fn > 0 && tn + fp > 0) {
      const auto r = stats::roc(score, pos);
      e["auc_one_vs_rest"] = r.auc;
      e["auc_ci95"] = r.auc_ci95;
    }
    if (tp + fn > 0) {
      const auto s = stats::proportion(tp, tp + fn);
      e["sensitivity"] = s.value;
      e["sensitivity_ci95"] = s.ci95;
    }
    if (tn + fp > 0) {
      const auto s = stats::proportion(tn, tn + fp);
      e["specificity"] = s.value;
      e["specificity_ci95"] = s.ci95;
    }
    per_class[classes[std::size_t(c)]] = e;
  }
  return {{"n", y.size()},
          {"accuracy", acc.value},
          {"accuracy_ci95", acc.ci95},
          {"confusion",
           {{"rows", "reference"}, {"columns", "predicted"}, {"classes", classes}, {"counts", confusion}}},
          {"per_class", per_class}};
}

std::vector<std::string> pick(const std::vector<std::string>& names, const std::vector<int>& idx) {
  std::vector<std::string> out;
  for (int i : idx) out.push_back(names[std::size_t(i)]);
  return out;
}
}  // namespace

TrainRadiomicsResult trainRadiomics(const std::vector<fs::path>& feature_csvs, const fs::path& reference_csv,
                                    const TrainRadiomicsParams& p, const fs::path& out_folder, bool force) {
  const std::vector<std::string> classes = p.classes.empty() ? kSeedClasses : p.classes;
  if (fs::exists(out_folder / "model.json") && !force)
    throw UsageError("model folder '" + out_folder.string() +
                     "' already holds a model; use --force to replace it");
  // 1. The feature rows.
  std::vector<std::string> names;
  std::vector<Row> rows;
  json inputs = json::array();
  json feature_set, roi_spec;
  for (const auto& f : feature_csvs) {
    // The feature set and ROI each table was computed with (its features.json): one for all, kept
    // in the model so that a case is classified from the same features.
    const fs::path side = featuresJsonPath(f);
    if (!fs::exists(side))
      throw InputError("'" + f.string() + "' has no " + side.filename().string() +
                       " beside it (the feature set it was computed with): use ctbmd-radiomics' outputs");
    const json sj = readJsonFile(side);
    checkStageFile(sj, side.string(), "ctbmd.radiomics", 1, "", "");
    const json fs_j = sj.at("feature_set");
    const json roi_j = {{"labels", sj.at("provenance").at("parameters").at("labels")},
                        {"merged", sj.at("provenance").at("parameters").at("merged")}};
    if (feature_set.is_null()) {
      feature_set = fs_j;
      roi_spec = roi_j;
    }
    if (fs_j != feature_set)
      throw InputError("'" + side.string() + "' records another feature set than '" +
                       featuresJsonPath(feature_csvs.front()).string() +
                       "': compute every case with the same --config");
    if (roi_j != roi_spec)
      throw InputError("'" + side.string() + "' was computed for other labels (-l/--merge) than '" +
                       featuresJsonPath(feature_csvs.front()).string() + "'");
    const CsvTable t = readCsv(f);
    const int c_case = t.column({"case_id"}), c_roi = t.column({"roi"}),
              c_first = t.column({kFirstFeatureAfter});
    if (c_case < 0 || c_roi < 0 || c_first < 0)
      throw InputError("'" + f.string() + "' is not a ctbmd-radiomics features.csv (needs case_id, roi, " +
                       kFirstFeatureAfter + " and feature columns)");
    std::vector<std::string> these(t.header.begin() + c_first + 1, t.header.end());
    if (names.empty()) names = these;
    if (these != names)
      throw InputError("'" + f.string() + "' has other feature columns than '" +
                       feature_csvs.front().string() +
                       "': compute every case with the same feature set (--config)");
    for (std::size_t r = 0; r < t.rows.size(); ++r) {
      Row row{t.cell(r, c_case), t.cell(r, c_roi), {}, -1};
      for (std::size_t k = 0; k < names.size(); ++k)
        row.x.push_back(parseCell(t.cell(r, int(c_first + 1 + k))));
      rows.push_back(std::move(row));
    }
    inputs.push_back({{"path", f.string()}, {"sha256", sha256File(f)}});
  }
  // 2. Their classes from the reference.
  const CsvTable ref = readCsv(reference_csv);
  const int r_case = ref.column({"case_id"}), r_roi = ref.column({"roi"}),
            r_label = ref.column({p.label_column.c_str()});
  if (r_case < 0 || r_label < 0)
    throw InputError("reference '" + reference_csv.string() + "' needs columns case_id and " +
                     p.label_column);
  std::map<std::string, std::string> by_case, by_roi;
  for (std::size_t r = 0; r < ref.rows.size(); ++r) {
    const std::string label = ref.cell(r, r_label);
    if (r_roi >= 0 && !ref.cell(r, r_roi).empty())
      by_roi[ref.cell(r, r_case) + "\t" + ref.cell(r, r_roi)] = label;
    else
      by_case[ref.cell(r, r_case)] = label;
  }
  std::size_t unmatched = 0;
  std::vector<Row> labelled;
  for (auto& row : rows) {
    auto it = by_roi.find(row.case_id + "\t" + row.roi);
    std::string label;
    if (it != by_roi.end())
      label = it->second;
    else if (by_case.count(row.case_id))
      label = by_case[row.case_id];
    if (label.empty()) {
      ++unmatched;
      continue;
    }
    const auto c = std::find(classes.begin(), classes.end(), label);
    if (c == classes.end())
      throw InputError("reference '" + reference_csv.string() + "': class '" + label + "' of case " +
                       row.case_id + " is not one of the classes (" + classes.front() + ", ...)");
    row.y = int(c - classes.begin());
    labelled.push_back(row);
  }
  // 3. Split by case.
  std::vector<std::string> cases;
  for (const auto& r : labelled) cases.push_back(r.case_id);
  std::sort(cases.begin(), cases.end());
  cases.erase(std::unique(cases.begin(), cases.end()), cases.end());
  if (cases.size() < 4)
    throw InputError("radiomics training needs at least 4 labelled cases; found " +
                     std::to_string(cases.size()));
  portableShuffle(cases, p.seed);
  const std::size_t n_test = std::size_t(std::lround(p.test_fraction * double(cases.size())));
  const std::set<std::string> test_cases(cases.begin(), cases.begin() + long(n_test));
  std::vector<Row> train, test;
  for (const auto& r : labelled) (test_cases.count(r.case_id) ? test : train).push_back(r);
  for (int c = 0; c < int(classes.size()); ++c) {
    const auto n = std::count_if(train.begin(), train.end(), [&](const Row& r) { return r.y == c; });
    if (n < 2)
      throw InputError("class '" + classes[std::size_t(c)] + "' has " + std::to_string(n) +
                       " training row(s) after the split: more cases of it are needed");
  }
  // 4. Features defined on every row and not constant in training.
  std::vector<int> usable;
  std::vector<std::string> undefined, constant;
  for (std::size_t k = 0; k < names.size(); ++k) {
    bool ok = true;
    for (const auto& r : labelled) ok = ok && std::isfinite(r.x[k]);
    if (!ok) {
      undefined.push_back(names[k]);
      continue;
    }
    double lo = train.front().x[k], hi = lo;
    for (const auto& r : train) lo = std::min(lo, r.x[k]), hi = std::max(hi, r.x[k]);
    if (hi <= lo) {
      constant.push_back(names[k]);
      continue;
    }
    usable.push_back(int(k));
  }
  auto matrix = [&](const std::vector<Row>& rs, const std::vector<int>& cols) {
    Eigen::MatrixXd m(Eigen::Index(rs.size()), Eigen::Index(cols.size()));
    for (std::size_t i = 0; i < rs.size(); ++i)
      for (std::size_t j = 0; j < cols.size(); ++j)
        m(Eigen::Index(i), Eigen::Index(j)) = rs[i].x[std::size_t(cols[j])];
    return m;
  };
  // Features equal on every training row to an earlier one (IBSI's cluster tendency and sum
  // variance are one quantity by two formulas) tie in every ranking: only the first is kept.
  std::vector<std::string> duplicate;
  {
    std::vector<int> distinct;
    for (int k : usable) {
      bool dup = false;
      for (int d : distinct) {
        bool same = true;
        for (const auto& r : train)
          if (std::fabs(r.x[std::size_t(k)] - r.x[std::size_t(d)]) >
              1e-9 * (std::fabs(r.x[std::size_t(d)]) + 1.0)) {
            same = false;
            break;
          }
        if (same) {
          dup = true;
          break;
        }
      }
      if (dup)
        duplicate.push_back(names[std::size_t(k)]);
      else
        distinct.push_back(k);
    }
    usable.swap(distinct);
  }
  std::vector<int> ytr, yte;
  for (const auto& r : train) ytr.push_back(r.y);
  for (const auto& r : test) yte.push_back(r.y);
  const std::vector<std::string> usable_names = pick(names, usable);
  const Eigen::MatrixXd xtr_raw = matrix(train, usable);
  const Scaler scaler = Scaler::fit(xtr_raw);
  const Eigen::MatrixXd xtr = scaler.apply(xtr_raw);
  // 5. RFE -> mRMR -> LASSO, each on the survivors of the previous step.
  const int k = int(classes.size());
  const std::vector<int> rfe = recursiveFeatureElimination(xtr, ytr, k, std::min(p.rfe_keep, int(xtr.cols())),
                                                           p.rfe_step, p.ridge_alpha);
  auto columns = [](const Eigen::MatrixXd& x, const std::vector<int>& idx) {
    Eigen::MatrixXd m(x.rows(), Eigen::Index(idx.size()));
    for (std::size_t j = 0; j < idx.size(); ++j) m.col(Eigen::Index(j)) = x.col(idx[j]);
    return m;
  };
  const Eigen::MatrixXd x_rfe = columns(xtr, rfe);
  const std::vector<int> mr = mrmr(x_rfe, ytr, k, p.mrmr_keep, p.mrmr_bins);
  const Eigen::MatrixXd x_mr = columns(x_rfe, mr);
  Eigen::VectorXd yord(Eigen::Index(ytr.size()));
  for (std::size_t i = 0; i < ytr.size(); ++i) yord[Eigen::Index(i)] = ytr[i];
  const LassoCvResult lasso = lassoCv(x_mr, yord, p.lasso_folds);
  std::vector<int> final_cols;  // into usable
  json lasso_coef = json::object();
  for (Eigen::Index j = 0; j < lasso.coef.size(); ++j) {
    const int u = rfe[std::size_t(mr[std::size_t(j)])];
    lasso_coef[usable_names[std::size_t(u)]] = lasso.coef[j];
    if (lasso.coef[j] != 0) final_cols.push_back(u);
  }
  if (final_cols.empty())
    throw InputError("LASSO kept no feature at its cross-validated lambda (" + std::to_string(lasso.alpha) +
                     "): the features carry no signal for these classes in this cohort");
  // 6. The forest.
  const Eigen::MatrixXd xf = columns(xtr, final_cols);
  cv::Mat resp(int(ytr.size()), 1, CV_32S);
  for (std::size_t i = 0; i < ytr.size(); ++i) resp.at<int>(int(i)) = ytr[i];
  auto forest = cv::ml::RTrees::create();
  forest->setMaxDepth(p.max_depth);
  forest->setMinSampleCount(p.min_samples);
  forest->setActiveVarCount(0);  // sqrt(features) per split
  forest->setCalculateVarImportance(true);
  forest->setTermCriteria(cv::TermCriteria(cv::TermCriteria::MAX_ITER, p.trees, 0));
  forest->train(cv::ml::TrainData::create(toMat(xf), cv::ml::ROW_SAMPLE, resp));
  const cv::Mat imp = forest->getVarImportance();
  json importance = json::object();
  std::vector<std::string> final_names;
  for (std::size_t j = 0; j < final_cols.size(); ++j) {
    final_names.push_back(usable_names[std::size_t(final_cols[j])]);
    importance[final_names.back()] = imp.empty() ? 0.0 : double(imp.at<float>(int(j)));
  }
  json metrics = json::object();
  metrics["train"] = evaluateSplit(votes(*forest, xf, k), ytr, classes);
  if (!test.empty()) {
    const Eigen::MatrixXd xte = columns(scaler.apply(matrix(test, usable)), final_cols);
    metrics["test"] = evaluateSplit(votes(*forest, xte, k), yte, classes);
  }
  // 7. The folder.
  fs::create_directories(out_folder);
  const fs::path forest_path = out_folder / "forest.yml";
  atomicWrite(forest_path, true, [&](const fs::path& tmp) { forest->save(tmp.string()); });
  const fs::path set_path = out_folder / "feature_set.json";
  writeJsonFile(set_path, feature_set, true);
  // The training rows' range of each kept feature: a case outside it is not classified (the
  // forest would extrapolate with confidence it has not earned).
  std::vector<double> range_lo, range_hi;
  for (int c : final_cols) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const auto& r : train) {
      lo = std::min(lo, r.x[std::size_t(usable[std::size_t(c)])]);
      hi = std::max(hi, r.x[std::size_t(usable[std::size_t(c)])]);
    }
    range_lo.push_back(lo);
    range_hi.push_back(hi);
  }
  std::vector<double> mean, sd;
  for (int c : final_cols) {
    const auto it = std::find(usable.begin(), usable.end(), usable[std::size_t(c)]);
    const auto j = it - usable.begin();
    mean.push_back(scaler.mean[j]);
    sd.push_back(scaler.sd[j]);
  }
  std::vector<std::string> train_cases, test_list(test_cases.begin(), test_cases.end());
  for (const auto& c : cases)
    if (!test_cases.count(c)) train_cases.push_back(c);
  std::sort(train_cases.begin(), train_cases.end());
  json card = {
      {"name", out_folder.filename().string()},
      {"task", "radiomics-classify"},
      {"architecture",
       {{"name", "random-forest"},
        {"hyper_parameters",
         {{"library", "OpenCV " CV_VERSION " ml::RTrees"},
          {"trees", p.trees},
          {"max_depth", p.max_depth},
          {"min_samples", p.min_samples},
          {"features_per_split", "sqrt(features)"},
          {"randomness", "OpenCV's fixed internal seed"}}}}},
      {"weights", {{"format", "opencv-yml"}, {"file", "forest.yml"}, {"sha256", sha256File(forest_path)}}},
      {"input",
       {{"normalisation", "zscore"},
        {"feature_set", {{"file", "feature_set.json"}, {"sha256", sha256File(set_path)}}},
        {"roi", roi_spec},
        {"features", final_names},
        {"scaler", {{"mean", mean}, {"sd", sd}, {"fitted_on", "training split only (population SD)"}}},
        {"training_range",
         {{"min", range_lo},
          {"max", range_hi},
          {"margin", kRangeMargin},
          {"min_features_outside", kMinFeaturesOutside},
          {"rule",
           "a case with min_features_outside or more kept features beyond [min - margin (max - min), max + "
           "margin (max - min)] is not classified"}}}}},
      {"labels", classes},
      {"selection",
       {{"candidates", names.size()},
        {"dropped_undefined", undefined},
        {"dropped_constant", constant},
        {"dropped_duplicate", duplicate},
        {"rfe",
         {{"estimator", "ridge classifier (scikit-learn RidgeClassifier semantics)"},
          {"alpha", p.ridge_alpha},
          {"step", p.rfe_step},
          {"importance", "sum over classes of squared coefficients"},
          {"kept", pick(usable_names, rfe)}}},
        {"mrmr",
         {{"form", "MID: relevance - mean redundancy"},
          {"mutual_information", "nats, joint histogram"},
          {"bins", p.mrmr_bins},
          {"kept_in_order",
           [&] {
             std::vector<std::string> v;
             for (int j : mr) v.push_back(usable_names[std::size_t(rfe[std::size_t(j)])]);
             return v;
           }()}}},
        {"lasso",
         {{"target", "class index (ordinal: " + classes.front() + " = 0)"},
          {"folds", p.lasso_folds},
          {"alpha", lasso.alpha},
          {"alphas", lasso.alphas},
          {"cv_mse", lasso.cv_mse},
          {"coefficients", lasso_coef},
          {"intercept", lasso.intercept},
          {"kept", final_names}}},
        {"forest_importance", importance}}},
      {"training",
       {{"features", inputs},
        {"reference", {{"path", reference_csv.string()}, {"sha256", sha256File(reference_csv)}}},
        {"label_column", p.label_column},
        {"rows_without_reference", unmatched},
        {"split",
         {{"by", "case"},
          {"test_fraction", p.test_fraction},
          {"seed", p.seed},
          {"train_cases", train_cases},
          {"test_cases", test_list}}},
        {"rows", {{"train", train.size()}, {"test", test.size()}}},
        {"command", runContext().command_line},
        {"ctbmd_version", versionString()}}},
      {"metrics", metrics},
      {"intended_use",
       "Research: bone-status classes from radiomics of the ROIs this model was trained on. Trained on the "
       "data named under training; a phantom's texture is not bone's, so a phantom-trained model says "
       "nothing "
       "about patients."}};
  writeJsonFile(out_folder / "model.json", card, true);
  return {out_folder, card};
}

RadiomicsModel::RadiomicsModel() = default;
RadiomicsModel::~RadiomicsModel() = default;
RadiomicsModel::RadiomicsModel(RadiomicsModel&&) noexcept = default;
RadiomicsModel& RadiomicsModel::operator=(RadiomicsModel&&) noexcept = default;

RadiomicsModel RadiomicsModel::load(const fs::path& folder) {
  RadiomicsModel m;
  m.card_ = ModelCard::load(folder, "radiomics-classify");
  const std::string where = "model card '" + (folder / "model.json").string() + "'";
  if (m.card_.architecture != "random-forest" || m.card_.format != "opencv-yml")
    throw InputError(where + ": a radiomics-classify model must be a random-forest in opencv-yml");
  try {
    const json& in = m.card_.raw.at("input");
    m.features_ = in.at("features").get<std::vector<std::string>>();
    const auto mean = in.at("scaler").at("mean").get<std::vector<double>>();
    const auto sd = in.at("scaler").at("sd").get<std::vector<double>>();
    if (m.features_.empty() || mean.size() != m.features_.size() || sd.size() != m.features_.size())
      throw InputError(where +
                       ": input.features and input.scaler mean/sd must be non-empty and of one length");
    m.scaler_.mean = Eigen::Map<const Eigen::VectorXd>(mean.data(), Eigen::Index(mean.size()));
    m.scaler_.sd = Eigen::Map<const Eigen::VectorXd>(sd.data(), Eigen::Index(sd.size()));
    for (double s : sd)
      if (!(s > 0)) throw InputError(where + ": input.scaler.sd must be positive");
    if (in.contains("training_range")) {
      m.range_lo_ = in["training_range"].at("min").get<std::vector<double>>();
      m.range_hi_ = in["training_range"].at("max").get<std::vector<double>>();
      m.range_margin_ = in["training_range"].value("margin", kRangeMargin);
      m.min_outside_ = in["training_range"].value("min_features_outside", kMinFeaturesOutside);
      if (m.range_lo_.size() != m.features_.size() || m.range_hi_.size() != m.features_.size())
        throw InputError(where + ": input.training_range min/max must have one value per feature");
    }
    const json& fsj = in.at("feature_set");
    const fs::path set_path = m.card_.folder / fsj.at("file").get<std::string>();
    if (!fs::exists(set_path))
      throw InputError(where + ": its feature set '" + set_path.string() + "' is missing");
    if (sha256File(set_path) != fsj.at("sha256").get<std::string>())
      throw InputError(
          "model '" + folder.string() +
          "': feature_set.json does not match the card's sha256: the "
          "feature set was changed; refusing to classify with features the forest was not trained on");
    m.config_ = featureConfigFromJson(readJsonFile(set_path), set_path.string());
    const json& roi = in.at("roi");
    m.roi_.labels = roi.at("labels").get<std::vector<int>>();
    m.roi_.merged = roi.at("merged").get<bool>();
  } catch (const json::exception& e) {
    throw InputError(where + ": " + jsonProblem(e));
  }
  m.classes_ = m.card_.labels;
  if (m.classes_.size() < 2) throw InputError(where + ": labels must name at least two classes");
  m.forest_ = std::make_unique<Forest>();
  try {
    m.forest_->trees = cv::ml::RTrees::load(m.card_.weights.string());
  } catch (const cv::Exception& e) {
    throw InputError("model '" + folder.string() + "': forest.yml cannot be read: " + e.what());
  }
  if (m.forest_->trees.empty() || !m.forest_->trees->isTrained() ||
      m.forest_->trees->getVarCount() != int(m.features_.size()))
    throw InputError("model '" + folder.string() + "': forest.yml is not a trained forest over the card's " +
                     std::to_string(m.features_.size()) + " features");
  return m;
}

RadiomicsPrediction RadiomicsModel::predict(const std::map<std::string, double>& row) const {
  Eigen::MatrixXd x(1, Eigen::Index(features_.size()));
  for (std::size_t j = 0; j < features_.size(); ++j) {
    const auto it = row.find(features_[j]);
    if (it == row.end())
      throw InputError("the features lack '" + features_[j] +
                       "', which the model uses: compute them with the "
                       "model's feature set");
    if (!std::isfinite(it->second))
      throw InputError("feature '" + features_[j] +
                       "' is undefined for this ROI; the model cannot classify it");
    x(0, Eigen::Index(j)) = it->second;
  }
  RadiomicsPrediction out;
  for (std::size_t j = 0; j < range_lo_.size(); ++j) {
    const double span = range_hi_[j] - range_lo_[j];
    const double v = x(0, Eigen::Index(j));
    if (v < range_lo_[j] - range_margin_ * span || v > range_hi_[j] + range_margin_ * span)
      out.outside_training.push_back(features_[j] + " = " + std::to_string(v) + " (training " +
                                     std::to_string(range_lo_[j]) + " to " + std::to_string(range_hi_[j]) +
                                     ")");
  }
  const Eigen::MatrixXd p = votes(*forest_->trees, scaler_.apply(x), int(classes_.size()));
  Eigen::Index best = 0;
  p.row(0).maxCoeff(&best);
  out.label = classes_[std::size_t(best)];
  for (std::size_t c = 0; c < classes_.size(); ++c) out.probability[classes_[c]] = p(0, Eigen::Index(c));
  return out;
}

}  // namespace ctbmd::radiomics

#include "ctbmd/stages.hpp"

namespace ctbmd::radiomics {

namespace {
ClassifyResult unavailable(const std::string& why, const RadiomicsModel* m) {
  ClassifyResult r;
  r.rule = "radiomics-rf";
  r.category = "unavailable";
  r.details["reason"] = why;
  if (m) r.details["model"] = m->card().provenance();
  return r;
}

ClassifyResult fromRow(const RadiomicsModel& model, const FeatureRow& row) {
  std::map<std::string, double> values;
  for (const auto& f : row.features) values[f.tag] = f.value;
  try {
    const RadiomicsPrediction pr = model.predict(values);
    const std::size_t needed =
        std::min<std::size_t>(std::size_t(std::max(1, model.minFeaturesOutside())), model.features().size());
    if (pr.outside_training.size() >= needed) {
      auto r = unavailable(
          std::to_string(pr.outside_training.size()) + " of the model's " +
              std::to_string(model.features().size()) +
              " features lie outside what it was trained on (first: " + pr.outside_training.front() +
              "): the forest would extrapolate; this scan is not like its training data",
          &model);
      r.flags.push_back("outside_training_range");
      r.details["roi"] = row.roi;
      r.details["outside_training_range"] = pr.outside_training;
      json unused = json::object();
      for (const auto& [c, p] : pr.probability) unused[c] = p;
      r.details["forest_probabilities_not_used"] = unused;
      return r;
    }
    ClassifyResult r;
    r.rule = "radiomics-rf";
    r.category = pr.label;
    for (const auto& [c, p] : pr.probability) r.probabilities[c] = p;
    r.details = {{"roi", row.roi},
                 {"voxels", row.voxels},
                 {"features_used", model.features().size()},
                 {"model", model.card().provenance()}};
    return r;
  } catch (const InputError& e) {
    auto r = unavailable(e.what(), &model);
    r.details["roi"] = row.roi;
    return r;
  }
}
}  // namespace

std::vector<ClassifyResult> classifyFeatureRows(const RadiomicsModel& model,
                                                const std::vector<FeatureRow>& rows) {
  std::vector<ClassifyResult> out;
  for (const auto& r : rows) out.push_back(fromRow(model, r));
  return out;
}

ClassifyResult classifyRadiomics(const Scan& scan, const LabelImage* labels, const ClassifyParams& p) {
  if (p.model.empty())
    throw UsageError("rule radiomics-rf needs --classify-model (a ctbmd-train radiomics model folder)");
  const RadiomicsModel model = RadiomicsModel::load(p.model);
  RoiRequest req = model.roi();
  req.case_id = "";
  // A merged ROI missing one of its labels is another ROI than the model was trained on.
  std::set<int> present;
  const uint8_t* lab = labels->GetBufferPointer();
  for (std::size_t k = 0, n = labels->GetLargestPossibleRegion().GetNumberOfPixels(); k < n; ++k)
    if (lab[k]) present.insert(lab[k]);
  std::string missing;
  for (int l : req.labels)
    if (!present.count(l)) missing += (missing.empty() ? "" : ", ") + std::to_string(l);
  if (!missing.empty())
    return unavailable("the segmentation lacks label(s) " + missing + " of the model's ROI", &model);
  try {
    const auto rows = extractFeatures(scan.image.GetPointer(), labels, req, model.featureConfig());
    if (rows.size() != 1)
      return unavailable("the model's ROI gives " + std::to_string(rows.size()) +
                             " rows; rule radiomics-rf in "
                             "ctbmd-run classifies one ROI per case (train with --merge or one label)",
                         &model);
    return fromRow(model, rows.front());
  } catch (const InputError& e) {
    return unavailable(std::string("radiomics features: ") + e.what(), &model);
  }
}

void registerRadiomicsRule() {
  setRadiomicsClassifier(classifyRadiomics);
  setRadiomicsModelCheck([](const std::string& folder) { RadiomicsModel::load(folder); });
}

}  // namespace ctbmd::radiomics
