// ctbmd-evaluate: statistics of predictions against references (see ctbmd/evaluate.hpp).
#include "ctbmd/evaluate.hpp"

#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stats.hpp"

namespace ctbmd {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The three classes and the ACR thresholds: ctbmd/clinical_rules.hpp, as classify uses them.
const std::vector<std::string>& kClasses = rules::threeClasses();

std::string acrClass(double bmd) { return rules::toString(rules::acrCategory(bmd)); }

std::optional<double> number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool isClass(const std::string& c) {
  return std::find(kClasses.begin(), kClasses.end(), c) != kClasses.end();
}

std::string refClass(const EvalCase& c) {
  if (isClass(c.ref_category)) return c.ref_category;
  return c.ref_bmd ? acrClass(*c.ref_bmd) : "";
}
std::string predClass(const EvalCase& c) {
  if (isClass(c.pred_category)) return c.pred_category;
  return c.pred_bmd ? acrClass(*c.pred_bmd) : "";
}

json propJson(const stats::Proportion& p) {
  return {{"k", p.k},
          {"n", p.n},
          {"value", p.n ? json(p.value) : json(nullptr)},
          {"ci95", p.n ? json(p.ci95) : json(nullptr)}};
}

json nanNull(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

std::vector<EvalCase> loadEvaluationCases(const fs::path& predictions, const fs::path& reference,
                                          std::vector<std::string>& notes) {
  // Predictions.
  fs::path results = predictions, run_dir;
  if (fs::is_directory(predictions)) {
    run_dir = predictions;
    results = predictions / "results.csv";
  } else {
    run_dir = predictions.parent_path();
  }
  if (!fs::exists(results))
    throw InputError("predictions '" + predictions.string() +
                     "': no results.csv (give a ctbmd-run output folder)");
  // Each case's folder (bmd.json, calibration.json, segmentation.nii.gz): beside the table, or,
  // for a ctbmd-merge output, in the shard folders its merge.json names.
  std::vector<fs::path> case_roots = {run_dir.empty() ? fs::path(".") : run_dir};
  {
    std::error_code ec;
    const fs::path merge_json = case_roots.front() / "merge.json";
    if (fs::exists(merge_json, ec)) {
      const json m = readJsonFile(merge_json);
      if (m.contains("folders") && m["folders"].is_array())
        for (const auto& f : m["folders"])
          if (f.is_string()) case_roots.push_back(f.get<std::string>());
    }
  }
  long no_folder = 0;
  std::string no_folder_example;
  auto caseDir = [&](const std::string& id) -> fs::path {
    std::error_code ec;
    for (const auto& r : case_roots)
      if (fs::is_directory(r / id, ec)) return r / id;
    if (no_folder++ == 0) no_folder_example = id;
    return {};
  };
  CsvTable pt = readCsv(results);
  int p_case = pt.column({"case_id", "case"}), p_status = pt.column({"status"}), p_err = pt.column({"error"}),
      p_reason = pt.column({"reason"});
  int p_bmd = pt.column({"bmd_l1l2", "bmd"}), p_cat = pt.column({"category"}),
      p_cal = pt.column({"calibration"});
  if (p_case < 0 || p_bmd < 0)
    throw InputError("predictions '" + results.string() +
                     "' need columns case_id and bmd_l1l2 (a ctbmd-run results.csv)");
  std::map<std::string, EvalCase> by_id;
  for (size_t i = 0; i < pt.rows.size(); ++i)
    if (pt.rows[i].size() != pt.header.size())
      throw InputError("predictions '" + results.string() + "' line " + std::to_string(pt.line_numbers[i]) +
                       " has " + std::to_string(pt.rows[i].size()) + " fields, the header " +
                       std::to_string(pt.header.size()) +
                       ": a results.csv row is complete or the file is damaged");
  for (size_t i = 0; i < pt.rows.size(); ++i) {
    EvalCase c;
    c.case_id = pt.cell(i, p_case);
    c.pred_status = p_status >= 0 ? pt.cell(i, p_status) : "ok";
    c.pred_error = pt.cell(i, p_err);
    c.pred_reason = p_reason >= 0 ? pt.cell(i, p_reason) : "";
    c.pred_ok = c.pred_status == "ok";
    c.pred_bmd = number(pt.cell(i, p_bmd));
    c.pred_category = pt.cell(i, p_cat);
    c.pred_calibration = pt.cell(i, p_cal);
    for (int l : kReportedLevels) {
      auto v = number(pt.cell(i, pt.column({(levelName(l) + "_bmd").c_str()})));
      if (v) c.pred_level_bmd[levelName(l)] = *v;
    }
    // Levels the pipeline itself marked unusable (partial, fractured, ...) are not scored.
    const fs::path dir = c.pred_status == "error" ? fs::path() : caseDir(c.case_id);
    fs::path bmdj = dir.empty() ? fs::path() : dir / "bmd.json";
    if (!bmdj.empty() && fs::exists(bmdj)) {
      json bj = readJsonFile(bmdj);
      if (bj.contains("levels"))
        for (auto it = bj["levels"].begin(); it != bj["levels"].end(); ++it)
          if (!it.value().value("usable", true) && c.pred_level_bmd.erase(it.key())) ++c.pred_levels_unusable;
    }
    fs::path calj = dir.empty() ? fs::path() : dir / "calibration.json";
    if (!calj.empty() && fs::exists(calj)) {
      json cj = readJsonFile(calj);
      c.pred_cal_slope = cj.value("slope", 0.0);
      c.pred_cal_intercept = cj.value("intercept", 0.0);
      c.pred_cal_source = cj.value("source_kind", "");
    }
    fs::path clsj = dir.empty() ? fs::path() : dir / "classification.json";
    if (!clsj.empty() && fs::exists(clsj)) {
      const json cj = readJsonFile(clsj);
      if (cj.contains("probabilities") && cj["probabilities"].is_object())
        for (auto it = cj["probabilities"].begin(); it != cj["probabilities"].end(); ++it)
          if (it.value().is_number()) c.pred_probability[it.key()] = it.value().get<double>();
    }
    fs::path seg = dir.empty() ? fs::path() : dir / "segmentation.nii.gz";
    if (!seg.empty() && fs::exists(seg)) c.pred_labels = seg;
    if (by_id.count(c.case_id))
      throw InputError("case '" + c.case_id + "' appears twice in " + results.string());
    by_id[c.case_id] = c;
  }
  if (no_folder)
    notes.push_back(
        std::to_string(no_folder) + " predicted case(s) have no case folder beside '" + results.string() +
        "' (e.g. '" + no_folder_example +
        "'): their Dice, calibration recovery and unusable-level filtering are left out; give the "
        "ctbmd-run or ctbmd-merge output folder that holds the case folders");
  // References.
  std::map<std::string, EvalCase> refs;
  if (fs::is_directory(reference)) {
    for (const auto& e : fs::directory_iterator(reference)) {
      std::string name = e.path().filename().string();
      const std::string suffix = "_truth.json";
      if (name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      json t = readJsonFile(e.path());
      EvalCase c;
      c.case_id = name.substr(0, name.size() - suffix.size());
      if (t.contains("bmd_l1l2")) c.ref_bmd = t["bmd_l1l2"].get<double>();
      c.ref_category = t.value("category", "");
      if (t.contains("levels"))
        for (auto it = t["levels"].begin(); it != t["levels"].end(); ++it)
          if (it.value().contains("bmd_mg_cm3"))
            c.ref_level_bmd[it.key()] = it.value()["bmd_mg_cm3"].get<double>();
      if (t.contains("calibration") && t["calibration"].contains("slope_hu_per_mg_cm3")) {
        double a = t["calibration"]["intercept_hu"].get<double>(),
               b = t["calibration"]["slope_hu_per_mg_cm3"].get<double>();
        c.ref_cal_slope = 1 / b;  // HU = a + b BMD  ->  BMD = -a/b + HU/b
        c.ref_cal_intercept = -a / b;
      }
      if (t.contains("files") && t["files"].contains("labels"))
        c.ref_labels = reference / t["files"]["labels"].get<std::string>();
      refs[c.case_id] = c;
    }
    if (refs.empty())
      throw InputError("reference folder '" + reference.string() +
                       "' holds no *_truth.json (ctbmd-phantom truth files)");
  } else {
    CsvTable rt = readCsv(reference);
    int r_case = rt.column({"case_id", "case"}), r_bmd = rt.column({"bmd_l1l2", "bmd", "reference_bmd"});
    int r_cat = rt.column({"category", "class"}), r_lab = rt.column({"labels", "label_map"});
    if (r_case < 0 || (r_bmd < 0 && r_cat < 0))
      throw InputError("reference CSV '" + reference.string() +
                       "' needs columns case_id and bmd (or bmd_l1l2) and/or category");
    for (size_t i = 0; i < rt.rows.size(); ++i) {
      EvalCase c;
      c.case_id = rt.cell(i, r_case);
      c.ref_bmd = number(rt.cell(i, r_bmd));
      c.ref_category = rt.cell(i, r_cat);
      if (!c.ref_category.empty() && !isClass(c.ref_category))
        throw InputError(
            "reference CSV '" + reference.string() + "' line " + std::to_string(rt.line_numbers[i]) +
            ": category must be normal, osteopenia or osteoporosis, not '" + c.ref_category + "'");
      for (int l : kReportedLevels) {
        auto v = number(rt.cell(i, rt.column({(levelName(l) + "_bmd").c_str()})));
        if (v) c.ref_level_bmd[levelName(l)] = *v;
      }
      std::string lab = rt.cell(i, r_lab);
      if (!lab.empty())
        c.ref_labels = fs::path(lab).is_absolute() ? fs::path(lab) : reference.parent_path() / lab;
      refs[c.case_id] = c;
    }
  }
  // Join.
  std::vector<EvalCase> out;
  long only_pred = 0, only_ref = 0;
  for (auto& [id, r] : refs) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      ++only_ref;
      continue;
    }
    EvalCase c = it->second;
    c.ref_bmd = r.ref_bmd;
    c.ref_category = r.ref_category;
    c.ref_level_bmd = r.ref_level_bmd;
    c.ref_labels = r.ref_labels;
    c.ref_cal_slope = r.ref_cal_slope;
    c.ref_cal_intercept = r.ref_cal_intercept;
    out.push_back(c);
  }
  for (const auto& [id, c] : by_id)
    if (!refs.count(id)) ++only_pred;
  if (only_ref) notes.push_back(std::to_string(only_ref) + " reference case(s) have no prediction");
  if (only_pred) notes.push_back(std::to_string(only_pred) + " predicted case(s) have no reference");
  if (out.empty())
    throw InputError("no case id is in both '" + results.string() + "' and '" + reference.string() + "'");
  return out;
}

namespace {

// How many cases matched, ran, failed and were calibrated; the failures with their errors.
json caseCounts(const std::vector<EvalCase>& cases) {
  long ok = 0, failed = 0, calibrated = 0;
  for (const auto& c : cases) {
    ok += c.pred_ok;
    failed += !c.pred_ok;
    calibrated += c.pred_calibration == "calibrated";
  }
  json counts = {{"matched", cases.size()}, {"ok", ok}, {"failed", failed}, {"calibrated", calibrated}};
  json failures = json::array();
  for (const auto& c : cases)
    if (!c.pred_ok)  // an error's message, else the status with its reason (a scan with no level named)
      failures.push_back(
          {{"case_id", c.case_id},
           {"status", c.pred_status},
           {"error", !c.pred_error.empty() || c.pred_reason.empty() ? c.pred_error
                                                                    : c.pred_status + ": " + c.pred_reason}});
  counts["failures"] = failures;
  return counts;
}

// Agreement of the L1-L2 BMD with the reference: Bland-Altman, Pearson, OLS (n >= 3).
json bmdAgreement(const std::vector<EvalCase>& cases) {
  std::vector<double> pred, ref;
  for (const auto& c : cases)
    if (c.pred_ok && c.pred_bmd && c.ref_bmd) {
      pred.push_back(*c.pred_bmd);
      ref.push_back(*c.ref_bmd);
    }
  json bmd = {{"n", pred.size()}, {"units", "mg/cm3"}, {"prediction", "bmd_l1l2"}};
  if (pred.size() >= 3) {
    auto a = stats::agreement(pred, ref);
    auto r = stats::pearson(ref, pred);
    auto f = stats::fitOls(ref, pred);  // prediction = intercept + slope * reference
    bmd["agreement"] = {{"mae", a.mae},          {"bias", a.bias}, {"bias_ci95", a.bias_ci95},
                        {"sd_diff", a.sd_diff},  {"rmse", a.rmse}, {"loa_low", a.loa_low},
                        {"loa_high", a.loa_high}};
    bmd["pearson"] = {
        {"r", nanNull(r.r)}, {"p", nanNull(r.p)}, {"ci95", {nanNull(r.ci95[0]), nanNull(r.ci95[1])}}};
    bmd["r2"] = nanNull(r.r * r.r);
    bmd["regression"] = {{"model", "prediction = intercept + slope * reference"},
                         {"slope", f.slope},
                         {"slope_se", f.slope_se},
                         {"slope_ci95", f.slope_ci95},
                         {"intercept", f.intercept},
                         {"intercept_se", f.intercept_se},
                         {"intercept_ci95", f.intercept_ci95},
                         {"residual_sd", f.residual_sd},
                         {"df", f.df}};
  }
  return bmd;
}

// Per-level BMD agreement, and over all levels (within 3 mg/cm3; unusable levels excluded).
json levelBmdAgreement(const std::vector<EvalCase>& cases) {
  json lv = json::object();
  std::vector<double> all_p, all_r;
  for (int l : kReportedLevels) {
    std::string n = levelName(l);
    std::vector<double> p, r;
    for (const auto& c : cases)
      if (c.pred_ok && c.pred_level_bmd.count(n) && c.ref_level_bmd.count(n)) {
        p.push_back(c.pred_level_bmd.at(n));
        r.push_back(c.ref_level_bmd.at(n));
      }
    if (p.empty()) continue;
    auto a = stats::agreement(p, r);
    lv[n] = {{"n", p.size()}, {"mae", a.mae}, {"bias", a.bias}, {"rmse", a.rmse}};
    all_p.insert(all_p.end(), p.begin(), p.end());
    all_r.insert(all_r.end(), r.begin(), r.end());
  }
  if (!all_p.empty()) {
    auto a = stats::agreement(all_p, all_r);
    long within3 = 0;
    for (size_t i = 0; i < all_p.size(); ++i) within3 += std::abs(all_p[i] - all_r[i]) <= 3.0;
    long unusable = 0;
    for (const auto& c : cases) unusable += c.pred_levels_unusable;
    lv["excluded_unusable_levels"] = unusable;
    lv["all"] = {{"n", all_p.size()},
                 {"mae", a.mae},
                 {"bias", a.bias},
                 {"rmse", a.rmse},
                 {"within_3_mg_cm3", propJson(stats::proportion(within3, static_cast<long>(all_p.size())))}};
  }
  return lv;
}

// Diagnosis: ROC on the predicted BMD (lower = more likely positive) and the predicted class,
// for osteoporosis and for low BMD.
json diagnosis(const std::vector<EvalCase>& cases) {
  json diag = json::object();
  for (const std::string target : {"osteoporosis", "low_bmd"}) {
    auto positive = [&](const std::string& cls) {
      return target == "osteoporosis" ? cls == "osteoporosis"
                                      : (cls == "osteoporosis" || cls == "osteopenia");
    };
    std::vector<double> score;
    std::vector<bool> truth;
    long tp = 0, fp = 0, tn = 0, fn = 0;
    for (const auto& c : cases) {
      std::string rc = refClass(c), pc = predClass(c);
      if (!c.pred_ok || rc.empty() || pc.empty()) continue;
      bool t = positive(rc), p = positive(pc);
      if (c.pred_bmd) {
        score.push_back(-*c.pred_bmd);
        truth.push_back(t);
      }
      (t ? (p ? tp : fn) : (p ? fp : tn)) += 1;
    }
    json d = {{"definition", target == "osteoporosis" ? "reference class osteoporosis"
                                                      : "reference class osteoporosis or osteopenia"},
              {"tp", tp},
              {"fp", fp},
              {"tn", tn},
              {"fn", fn},
              {"sensitivity", propJson(stats::proportion(tp, tp + fn))},
              {"specificity", propJson(stats::proportion(tn, tn + fp))},
              {"ppv", propJson(stats::proportion(tp, tp + fp))},
              {"npv", propJson(stats::proportion(tn, tn + fn))}};
    auto roc = stats::roc(score, truth);
    d["roc"] = {{"n_pos", roc.n_pos},
                {"n_neg", roc.n_neg},
                {"auc", nanNull(roc.auc)},
                {"auc_se", nanNull(roc.auc_se)},
                {"auc_ci95", {nanNull(roc.auc_ci95[0]), nanNull(roc.auc_ci95[1])}},
                {"method", "DeLong et al. 1988 (structural components); normal 95 % interval"}};
    json pts = json::array();
    for (const auto& p : roc.points)
      pts.push_back({{"bmd_threshold", std::isfinite(p.threshold) ? json(-p.threshold) : json(nullptr)},
                     {"fpr", p.fpr},
                     {"tpr", p.tpr}});
    d["roc"]["points"] = pts;
    diag[target] = d;
  }
  diag["classes_from"] =
      "predicted class from results.csv when it is normal/osteopenia/osteoporosis, else from the predicted "
      "L1-L2 BMD by the ACR thresholds; reference class from the reference category, else its BMD";
  return diag;
}

// The three-class confusion matrix (rows reference, columns prediction) and accuracy.
json confusion(const std::vector<EvalCase>& cases) {
  std::vector<std::vector<long>> m(3, std::vector<long>(3, 0));
  long agree = 0, total = 0;
  for (const auto& c : cases) {
    std::string rc = refClass(c), pc = predClass(c);
    if (!c.pred_ok || rc.empty() || pc.empty()) continue;
    auto ri = std::find(kClasses.begin(), kClasses.end(), rc) - kClasses.begin();
    auto pi = std::find(kClasses.begin(), kClasses.end(), pc) - kClasses.begin();
    ++m[static_cast<size_t>(ri)][static_cast<size_t>(pi)];
    agree += ri == pi;
    ++total;
  }
  return {{"classes", kClasses},
          {"rows", "reference"},
          {"columns", "prediction"},
          {"matrix", m},
          {"accuracy", propJson(stats::proportion(agree, total))}};
}

// Learned rules' class probabilities: per class one-vs-rest ROC AUC (DeLong 95 % CI) and the
// sensitivity and specificity of the most probable class (Wilson 95 % CI), as the radiomics
// seed reports them; null when no case has probabilities.
json classProbabilities(const std::vector<EvalCase>& cases) {
  std::vector<const EvalCase*> with;
  for (const auto& c : cases)
    if (c.pred_ok && !c.pred_probability.empty() && !refClass(c).empty()) with.push_back(&c);
  if (with.empty()) return nullptr;
  json per = json::object();
  for (const auto& cls : kClasses) {
    std::vector<double> score;
    std::vector<bool> pos;
    long tp = 0, fn = 0, tn = 0, fp = 0;
    for (const auto* c : with) {
      const auto it = c->pred_probability.find(cls);
      const double p = it == c->pred_probability.end() ? 0.0 : it->second;
      std::string best;
      double best_p = -1;
      for (const auto& [k, v] : c->pred_probability)
        if (v > best_p) best_p = v, best = k;
      const bool is = refClass(*c) == cls, said = best == cls;
      score.push_back(p);
      pos.push_back(is);
      if (is)
        (said ? tp : fn) += 1;
      else
        (said ? fp : tn) += 1;
    }
    json e = {{"n_positive", tp + fn}, {"n_negative", tn + fp}};
    if (tp + fn > 0 && tn + fp > 0) {
      const auto r = stats::roc(score, pos);
      e["auc"] = r.auc;
      e["auc_ci95"] = r.auc_ci95;
    }
    e["sensitivity"] = propJson(stats::proportion(tp, tp + fn));
    e["specificity"] = propJson(stats::proportion(tn, tn + fp));
    per[cls] = e;
  }
  return {
      {"cases", with.size()},
      {"per_class", per},
      {"definition",
       "one-vs-rest ROC of each class's probability; sensitivity/specificity of the most probable class"}};
}

// Calibration recovery (phantom references know the scanner's line); null when none has one.
json calibrationRecovery(const std::vector<EvalCase>& cases) {
  std::vector<double> slope_rel, icpt_abs, bmd_err;
  long within2 = 0;
  for (const auto& c : cases)
    if (c.pred_ok && c.pred_cal_slope && c.ref_cal_slope) {
      double rel = (*c.pred_cal_slope - *c.ref_cal_slope) / *c.ref_cal_slope;
      slope_rel.push_back(rel);
      icpt_abs.push_back(*c.pred_cal_intercept - *c.ref_cal_intercept);
      within2 += std::abs(rel) <= 0.02;
      // Error the calibration alone makes over the trabecular range (50-250 mg/cm3).
      for (double bmd : {50.0, 150.0, 250.0}) {
        double hu = (bmd - *c.ref_cal_intercept) / *c.ref_cal_slope;
        bmd_err.push_back(*c.pred_cal_intercept + *c.pred_cal_slope * hu - bmd);
      }
    }
  if (!slope_rel.empty()) {
    auto absmax = [](const std::vector<double>& v) {
      double m = 0;
      for (double x : v) m = std::max(m, std::abs(x));
      return m;
    };
    auto absmean = [](const std::vector<double>& v) {
      double m = 0;
      for (double x : v) m += std::abs(x);
      return m / static_cast<double>(v.size());
    };
    return {
        {"n", slope_rel.size()},
        {"slope_relative_error_mean_abs", absmean(slope_rel)},
        {"slope_relative_error_max_abs", absmax(slope_rel)},
        {"slope_within_2_percent", propJson(stats::proportion(within2, static_cast<long>(slope_rel.size())))},
        {"intercept_error_mean_abs_mg_cm3", absmean(icpt_abs)},
        {"intercept_error_max_abs_mg_cm3", absmax(icpt_abs)},
        {"calibration_bmd_error_mean_abs_mg_cm3", absmean(bmd_err)},
        {"calibration_bmd_error_max_abs_mg_cm3", absmax(bmd_err)},
        {"definition",
         "fitted calibration.json against the phantom's true line; BMD error of the line alone "
         "at 50, 150, 250 mg/cm3"}};
  }
  return nullptr;
}

// Segmentation: Dice per level and labelling accuracy against the reference label maps.
json segmentationScores(const std::vector<EvalCase>& cases) {
  std::map<std::string, std::vector<double>> dice;
  long identified = 0, present = 0, compared = 0;
  for (const auto& c : cases) {
    if (!c.pred_ok || c.pred_labels.empty() || c.ref_labels.empty() || !fs::exists(c.ref_labels)) continue;
    auto a = readLabels(c.pred_labels);
    auto b = readLabels(c.ref_labels);
    if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion()) {
      spdlog::warn("{}: predicted and reference label maps differ in size; Dice skipped", c.case_id);
      continue;
    }
    ++compared;
    const uint8_t* pa = a->GetBufferPointer();
    const uint8_t* pb = b->GetBufferPointer();
    size_t n = a->GetLargestPossibleRegion().GetNumberOfPixels();
    std::map<int, std::array<long, 3>> cnt;  // label -> pred, ref, both
    for (size_t i = 0; i < n; ++i) {
      if (pa[i]) ++cnt[pa[i]][0];
      if (pb[i]) ++cnt[pb[i]][1];
      if (pa[i] && pa[i] == pb[i]) ++cnt[pa[i]][2];
    }
    for (int l : kReportedLevels) {
      auto it = cnt.find(l);
      if (it == cnt.end() || it->second[1] == 0) continue;  // not in the reference
      double d = 2.0 * it->second[2] / static_cast<double>(it->second[0] + it->second[1]);
      dice[levelName(l)].push_back(d);
      ++present;
      identified += d > 0.5;
    }
  }
  json seg = {{"cases", compared}};
  json dj = json::object();
  std::vector<double> all;
  auto summary = [](const std::vector<double>& v) {
    return json{{"n", v.size()},
                {"mean", stats::mean(v)},
                {"median", stats::median(v)},
                {"sd", v.size() > 1 ? json(stats::sd(v)) : json(nullptr)},
                {"min", *std::min_element(v.begin(), v.end())}};
  };
  for (int l : kReportedLevels)
    if (dice.count(levelName(l))) {
      dj[levelName(l)] = summary(dice[levelName(l)]);
      all.insert(all.end(), dice[levelName(l)].begin(), dice[levelName(l)].end());
    }
  if (!all.empty()) dj["all"] = summary(all);
  seg["dice"] = dj;
  seg["labeling"] = propJson(stats::proportion(identified, present));
  seg["labeling"]["definition"] =
      "reference level whose predicted body of the same label overlaps it with Dice > 0.5";
  return seg;
}

}  // namespace

namespace {
// One row per matched case: what it predicted against its reference, largest |error| first.
json perCase(const std::vector<EvalCase>& cases) {
  json rows = json::array();
  std::vector<const EvalCase*> order;
  for (const auto& c : cases) order.push_back(&c);
  auto err = [](const EvalCase* c) {
    return c->pred_ok && c->pred_bmd && c->ref_bmd ? std::abs(*c->pred_bmd - *c->ref_bmd) : -1.0;
  };
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
    return err(a) != err(b) ? err(a) > err(b) : a->case_id < b->case_id;
  });
  for (const auto* c : order) {
    const bool both = c->pred_ok && c->pred_bmd && c->ref_bmd;
    const std::string rc = refClass(*c), pc = c->pred_ok ? predClass(*c) : "";
    rows.push_back({{"case_id", c->case_id},
                    {"status", c->pred_status},
                    {"pred_bmd", c->pred_ok && c->pred_bmd ? json(*c->pred_bmd) : json(nullptr)},
                    {"ref_bmd", c->ref_bmd ? json(*c->ref_bmd) : json(nullptr)},
                    {"error", both ? json(*c->pred_bmd - *c->ref_bmd) : json(nullptr)},
                    {"pred_category", pc},
                    {"ref_category", rc},
                    {"category_agrees", !pc.empty() && !rc.empty() ? json(pc == rc) : json(nullptr)},
                    {"levels_unusable", c->pred_levels_unusable},
                    {"error_message", c->pred_error}});
  }
  return rows;
}
}  // namespace

json evaluate(const std::vector<EvalCase>& cases, const EvaluateOptions& opt) {
  json ev;
  ev["per_case"] = perCase(cases);
  ev["cases"] = caseCounts(cases);
  ev["bmd_l1l2"] = bmdAgreement(cases);
  ev["level_bmd"] = levelBmdAgreement(cases);
  ev["diagnosis"] = diagnosis(cases);
  ev["confusion"] = confusion(cases);
  if (json cp = classProbabilities(cases); !cp.is_null()) ev["class_probabilities"] = cp;
  if (json cal = calibrationRecovery(cases); !cal.is_null()) ev["calibration"] = cal;
  if (opt.dice) ev["segmentation"] = segmentationScores(cases);
  return ev;
}

namespace {
std::string f1(const json& v, int prec = 1) {
  if (!v.is_number()) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v.get<double>());
  return b;
}
std::string pct(const json& p) {
  if (!p.contains("value") || !p["value"].is_number()) return "n/a (0/0)";
  char b[128];
  std::snprintf(b, sizeof b, "%.1f %% (%ld/%ld; 95 %% CI %.1f-%.1f)", 100 * p["value"].get<double>(),
                p["k"].get<long>(), p["n"].get<long>(), 100 * p["ci95"][0].get<double>(),
                100 * p["ci95"][1].get<double>());
  return b;
}
std::string pval(const json& v) {
  if (!v.is_number()) return "n/a";
  double p = v.get<double>();
  if (p < 0.001) return "< 0.001";
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", p);
  return b;
}
}  // namespace

std::string evaluationMarkdown(const json& ev, const std::string& title) {
  std::ostringstream o;
  o << "# " << title << "\n\n";
  const auto& cs = ev["cases"];
  o << "Cases: " << cs["matched"] << " matched, " << cs["ok"] << " processed, " << cs["failed"] << " failed; "
    << cs["calibrated"] << " with a calibrated BMD.\n\n";
  const auto& b = ev["bmd_l1l2"];
  o << "## BMD agreement (L1-L2 average, mg/cm3, n = " << b["n"] << ")\n\n";
  if (b.contains("agreement")) {
    const auto& a = b["agreement"];
    const auto& r = b["regression"];
    o << "| Measure | Value |\n|---|---|\n";
    o << "| MAE | " << f1(a["mae"], 2) << " |\n";
    o << "| Mean error (bias) | " << f1(a["bias"], 2) << " (95 % CI " << f1(a["bias_ci95"][0], 2) << " to "
      << f1(a["bias_ci95"][1], 2) << ") |\n";
    o << "| RMSE | " << f1(a["rmse"], 2) << " |\n";
    o << "| Bland-Altman 95 % limits of agreement | " << f1(a["loa_low"], 2) << " to " << f1(a["loa_high"], 2)
      << " |\n";
    o << "| Pearson r | " << f1(b["pearson"]["r"], 4) << " (95 % CI " << f1(b["pearson"]["ci95"][0], 4) << "-"
      << f1(b["pearson"]["ci95"][1], 4) << "; p " << pval(b["pearson"]["p"]) << ") |\n";
    o << "| R^2 | " << f1(b["r2"], 4) << " |\n";
    o << "| Regression slope | " << f1(r["slope"], 4) << " (95 % CI " << f1(r["slope_ci95"][0], 4) << "-"
      << f1(r["slope_ci95"][1], 4) << ") |\n";
    o << "| Regression intercept | " << f1(r["intercept"], 2) << " (95 % CI " << f1(r["intercept_ci95"][0], 2)
      << " to " << f1(r["intercept_ci95"][1], 2) << ") |\n\n";
  } else {
    o << "Fewer than three cases with both values.\n\n";
  }
  if (!ev["level_bmd"].empty()) {
    o << "Per level (mg/cm3):\n\n| Level | n | MAE | Bias | RMSE |\n|---|---|---|---|---|\n";
    for (auto it = ev["level_bmd"].begin(); it != ev["level_bmd"].end(); ++it)
      if (it.key() != "all" && it.value().is_object())
        o << "| " << it.key() << " | " << it.value()["n"] << " | " << f1(it.value()["mae"], 2) << " | "
          << f1(it.value()["bias"], 2) << " | " << f1(it.value()["rmse"], 2) << " |\n";
    if (ev["level_bmd"].contains("all")) {
      const auto& a = ev["level_bmd"]["all"];
      o << "| all | " << a["n"] << " | " << f1(a["mae"], 2) << " | " << f1(a["bias"], 2) << " | "
        << f1(a["rmse"], 2) << " |\n\nLevels within 3 mg/cm3: " << pct(a["within_3_mg_cm3"])
        << ". Levels the pipeline marked unusable (partial, fractured, too small) are not scored: "
        << ev["level_bmd"].value("excluded_unusable_levels", 0L) << ".\n";
    }
    o << "\n";
  }
  if (ev.contains("calibration")) {
    const auto& c = ev["calibration"];
    o << "## Calibration recovery (n = " << c["n"] << ")\n\n| Measure | Value |\n|---|---|\n";
    o << "| Slope error, mean / max | " << f1(json(100 * c["slope_relative_error_mean_abs"].get<double>()), 2)
      << " % / " << f1(json(100 * c["slope_relative_error_max_abs"].get<double>()), 2) << " % |\n";
    o << "| Slope within 2 % | " << pct(c["slope_within_2_percent"]) << " |\n";
    o << "| Intercept error, mean / max | " << f1(c["intercept_error_mean_abs_mg_cm3"], 2) << " / "
      << f1(c["intercept_error_max_abs_mg_cm3"], 2) << " mg/cm3 |\n";
    o << "| BMD error of the line (50-250 mg/cm3), mean / max | "
      << f1(c["calibration_bmd_error_mean_abs_mg_cm3"], 2) << " / "
      << f1(c["calibration_bmd_error_max_abs_mg_cm3"], 2) << " mg/cm3 |\n\n";
  }
  o << "## Diagnosis\n\n| Target | AUC (95 % CI, DeLong) | Sensitivity | Specificity | PPV | NPV |\n"
       "|---|---|---|---|---|---|\n";
  for (const char* t : {"osteoporosis", "low_bmd"}) {
    const auto& d = ev["diagnosis"][t];
    o << "| " << (std::string(t) == "low_bmd" ? "Low BMD (osteopenia or osteoporosis)" : "Osteoporosis")
      << " | " << f1(d["roc"]["auc"], 3) << " (" << f1(d["roc"]["auc_ci95"][0], 3) << "-"
      << f1(d["roc"]["auc_ci95"][1], 3) << "; " << d["roc"]["n_pos"] << " pos / " << d["roc"]["n_neg"]
      << " neg) | " << pct(d["sensitivity"]) << " | " << pct(d["specificity"]) << " | " << pct(d["ppv"])
      << " | " << pct(d["npv"]) << " |\n";
  }
  o << "\nConfusion matrix (rows: reference, columns: prediction):\n\n| | normal | osteopenia | osteoporosis "
       "|\n"
       "|---|---|---|---|\n";
  for (size_t i = 0; i < 3; ++i) {
    o << "| " << kClasses[i];
    for (size_t j = 0; j < 3; ++j) o << " | " << ev["confusion"]["matrix"][i][j];
    o << " |\n";
  }
  o << "\nAccuracy (3 classes): " << pct(ev["confusion"]["accuracy"]) << "\n\n";
  if (ev.contains("class_probabilities")) {
    o << "Class probabilities (learned rule, " << ev["class_probabilities"]["cases"]
      << " cases; one-vs-rest):\n\n"
      << "| class | AUC (95 % CI) | sensitivity | specificity |\n|---|---|---|---|\n";
    for (auto it = ev["class_probabilities"]["per_class"].begin();
         it != ev["class_probabilities"]["per_class"].end(); ++it) {
      const json& e = it.value();
      o << "| " << it.key() << " | "
        << (e.contains("auc")
                ? f1(e["auc"], 3) + " (" + f1(e["auc_ci95"][0], 3) + "-" + f1(e["auc_ci95"][1], 3) + ")"
                : std::string("n/a"))
        << " | " << pct(e["sensitivity"]) << " | " << pct(e["specificity"]) << " |\n";
    }
    o << "\n";
  }
  if (ev.contains("segmentation") && ev["segmentation"]["cases"].get<long>() > 0) {
    const auto& s = ev["segmentation"];
    o << "## Segmentation (" << s["cases"]
      << " cases with label maps)\n\n| Level | n | Dice mean | median | SD | min |\n"
         "|---|---|---|---|---|---|\n";
    for (auto it = s["dice"].begin(); it != s["dice"].end(); ++it)
      o << "| " << it.key() << " | " << it.value()["n"] << " | " << f1(it.value()["mean"], 3) << " | "
        << f1(it.value()["median"], 3) << " | " << f1(it.value()["sd"], 3) << " | "
        << f1(it.value()["min"], 3) << " |\n";
    o << "\nLabelling accuracy: " << pct(s["labeling"]) << "\n";
  }
  if (ev.contains("per_case")) {
    std::vector<json> worst;
    for (const auto& r : ev["per_case"])
      if (r["error"].is_number() && worst.size() < 10) worst.push_back(r);
    if (!worst.empty()) {
      o << "\n## Largest BMD errors (" << worst.size() << " of " << ev["per_case"].size()
        << " cases; all in evaluation.json's per_case and evaluation.html)\n\n"
           "| Case | Predicted | Reference | Error | Category (pred / ref) |\n|---|---|---|---|---|\n";
      for (const auto& r : worst)
        o << "| " << r["case_id"].get<std::string>() << " | " << f1(r["pred_bmd"]) << " | "
          << f1(r["ref_bmd"]) << " | " << f1(r["error"]) << " | " << r["pred_category"].get<std::string>()
          << " / " << r["ref_category"].get<std::string>() << " |\n";
    }
  }
  if (ev.contains("plots") && !ev["plots"].empty()) {
    o << "\n## Plots\n\n";
    for (const auto& p : ev["plots"]) {
      const std::string f = p.get<std::string>();
      if (f.size() > 4 && f.substr(f.size() - 4) == ".png")
        o << "![" << f.substr(0, f.size() - 4) << "](" << f << ")\n\n";
    }
  }
  if (!ev["cases"]["failures"].empty()) {
    o << "\n## Failed cases\n\n";
    for (const auto& f : ev["cases"]["failures"])
      o << "- " << f["case_id"].get<std::string>() << ": " << f["error"].get<std::string>() << "\n";
  }
  return o.str();
}

std::vector<fs::path> writeEvaluationPlots(const std::vector<EvalCase>& cases, const json& ev,
                                           const fs::path& dir, const std::string& title, bool force) {
  std::vector<double> pred, ref;
  for (const auto& c : cases)
    if (c.pred_ok && c.pred_bmd && c.ref_bmd) {
      pred.push_back(*c.pred_bmd);
      ref.push_back(*c.ref_bmd);
    }
  if (pred.size() < 3) throw ProcessingError("fewer than three cases with both BMD values: no plots");
  std::vector<fs::path> outs;
  for (const char* n : {"regression", "bland_altman", "roc"})
    for (const char* e : {".png", ".svg"}) {
      outs.push_back(dir / (std::string(n) + e));
      checkWritable(outs.back(), force);
    }
  std::ostringstream g;
  g.precision(10);
  auto esc = [](std::string s) {
    for (auto& ch : s)
      if (ch == '"') ch = '\'';
    return s;
  };
  g << "# gnuplot script written by ctbmd-evaluate; in this folder run: gnuplot plots.gp\n";
  g << "$pts << EOD\n";
  for (size_t i = 0; i < pred.size(); ++i)
    g << ref[i] << " " << pred[i] << " " << 0.5 * (ref[i] + pred[i]) << " " << pred[i] - ref[i] << "\n";
  g << "EOD\n";
  auto fit = stats::fitOls(ref, pred);
  double lo = *std::min_element(ref.begin(), ref.end()), hi = *std::max_element(ref.begin(), ref.end());
  double pad = 0.05 * (hi - lo + 1);
  lo -= pad;
  hi += pad;
  double t = fit.tCrit();
  g << "$band << EOD\n";
  for (int i = 0; i <= 60; ++i) {
    double x = lo + (hi - lo) * i / 60.0, y = fit.predict(x);
    g << x << " " << y << " " << y - t * fit.meanSe(x) << " " << y + t * fit.meanSe(x) << " "
      << y - t * fit.predictionSe(x) << " " << y + t * fit.predictionSe(x) << "\n";
  }
  g << "EOD\n";
  for (const char* target : {"osteoporosis", "low_bmd"}) {
    g << "$roc_" << target << " << EOD\n";
    for (const auto& p : ev["diagnosis"][target]["roc"]["points"])
      g << p["fpr"].get<double>() << " " << p["tpr"].get<double>() << "\n";
    g << "EOD\n";
  }
  const auto& a = ev["bmd_l1l2"]["agreement"];
  char buf[512];
  for (const char* ext : {"png", "svg"}) {
    std::string term = std::string(ext) == "png" ? "pngcairo size 900,700 enhanced font 'Sans,11'"
                                                 : "svg size 900,700 dynamic enhanced font 'Sans,11'";
    std::string tmp_reg = std::string("regression.") + ext, tmp_ba = std::string("bland_altman.") + ext,
                tmp_roc = std::string("roc.") + ext;
    g << "reset\nset terminal " << term << "\nset grid\nset key top left box opaque\n";
    g << "set output '" << tmp_reg << "'\n";
    std::snprintf(
        buf, sizeof buf,
        "%s: predicted vs reference BMD (n = %zu)\\ny = %.2f + %.3f x,  r = %.3f,  MAE = %.2f mg/cm^3",
        esc(title).c_str(), pred.size(), fit.intercept, fit.slope,
        ev["bmd_l1l2"]["pearson"]["r"].is_number() ? ev["bmd_l1l2"]["pearson"]["r"].get<double>() : 0.0,
        a["mae"].get<double>());
    g << "set title \"" << buf << "\"\n";
    g << "set xlabel 'Reference BMD (mg/cm^3)'\nset ylabel 'Predicted BMD (mg/cm^3)'\n";
    g << "set xrange [" << lo << ":" << hi << "]\n";
    g << "plot $band using 1:5:6 with filledcurves fc rgb '#dde8f5' title '95% prediction interval', \\\n"
         "     $band using 1:3:4 with filledcurves fc rgb '#9fc0e6' title '95% confidence band', \\\n"
         "     $band using 1:2 with lines lw 2 lc rgb '#1f4e9a' title 'regression', \\\n"
         "     x with lines dt 2 lc rgb '#555555' title 'identity', \\\n"
         "     $pts using 1:2 with points pt 7 ps 0.8 lc rgb '#c0392b' title 'cases'\n";
    g << "unset output\n";
    g << "reset\nset terminal " << term << "\nset grid\nset key top right box opaque\n";
    g << "set output '" << tmp_ba << "'\n";
    std::snprintf(buf, sizeof buf, "%s: Bland-Altman (n = %zu)\\nbias %.2f, 95%% limits %.2f to %.2f mg/cm^3",
                  esc(title).c_str(), pred.size(), a["bias"].get<double>(), a["loa_low"].get<double>(),
                  a["loa_high"].get<double>());
    g << "set title \"" << buf << "\"\n";
    g << "set xlabel 'Mean of predicted and reference BMD (mg/cm^3)'\nset ylabel 'Predicted - reference "
         "(mg/cm^3)'\n";
    g << "plot $pts using 3:4 with points pt 7 ps 0.8 lc rgb '#c0392b' title 'cases', \\\n"
      << "     " << a["bias"].get<double>() << " with lines lw 2 lc rgb '#1f4e9a' title 'bias', \\\n"
      << "     " << a["loa_low"].get<double>()
      << " with lines dt 2 lw 2 lc rgb '#555555' title '95% limits of agreement', \\\n"
      << "     " << a["loa_high"].get<double>() << " with lines dt 2 lw 2 lc rgb '#555555' notitle\n";
    g << "unset output\n";
    g << "reset\nset terminal " << term << "\nset grid\nset key bottom right box opaque\nset size ratio -1\n";
    g << "set output '" << tmp_roc << "'\n";
    g << "set title \"" << esc(title) << ": ROC of the predicted BMD\"\n";
    g << "set xlabel '1 - specificity'\nset ylabel 'Sensitivity'\nset xrange [-0.02:1.02]\nset yrange "
         "[-0.02:1.02]\n";
    const auto& d1 = ev["diagnosis"]["osteoporosis"]["roc"];
    const auto& d2 = ev["diagnosis"]["low_bmd"]["roc"];
    std::snprintf(buf, sizeof buf, "osteoporosis: AUC %s (%s-%s)", f1(d1["auc"], 3).c_str(),
                  f1(d1["auc_ci95"][0], 3).c_str(), f1(d1["auc_ci95"][1], 3).c_str());
    std::string t1 = buf;
    std::snprintf(buf, sizeof buf, "low BMD: AUC %s (%s-%s)", f1(d2["auc"], 3).c_str(),
                  f1(d2["auc_ci95"][0], 3).c_str(), f1(d2["auc_ci95"][1], 3).c_str());
    std::string t2 = buf;
    g << "plot $roc_osteoporosis using 1:2 with steps lw 2 lc rgb '#c0392b' title '" << t1 << "', \\\n"
      << "     $roc_low_bmd using 1:2 with steps lw 2 lc rgb '#1f4e9a' title '" << t2 << "', \\\n"
      << "     x with lines dt 2 lc rgb '#888888' notitle\n";
    g << "unset output\n";
  }
  // Plot in a private folder beside the outputs (relative names), then move the files in:
  // a failure leaves no partial plot behind.
  fs::path work = temporarySibling(dir / "plots");
  fs::create_directories(work);
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove_all(work, ec);
  };
  std::string text = g.str();
  std::string msg;
  int st = 0;
  try {
    writeTextFile(work / "plots.gp", text, true);
    std::string cmd = "cd '" + work.string() + "' && gnuplot plots.gp 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) throw ProcessingError("cannot start gnuplot");
    char line[512];
    while (fgets(line, sizeof line, pipe)) msg += line;
    st = pclose(pipe);
  } catch (...) {
    cleanup();
    throw;
  }
  if (st != 0) {
    cleanup();
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
      throw ProcessingError(
          "gnuplot not found: install it (apt-get install gnuplot-nox; tools/install-deps.sh does) "
          "or pass --no-plots");
    throw ProcessingError("gnuplot failed:\n" + msg);
  }
  outs.push_back(dir / "plots.gp");
  for (const auto& o : outs) fs::rename(work / o.filename(), o);
  cleanup();
  return outs;
}

namespace {
std::string esc(const std::string& t) {
  std::string o;
  for (char c : t)
    o += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&quot;" : std::string(1, c);
  return o;
}
// **bold** and `code` of our own Markdown
std::string inlineMd(const std::string& t) {
  std::string o, e = esc(t);
  bool b = false, c = false;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.compare(i, 2, "**") == 0) {
      o += b ? "</b>" : "<b>";
      b = !b;
      ++i;
    } else if (e[i] == '`') {
      o += c ? "</code>" : "<code>";
      c = !c;
    } else {
      o += e[i];
    }
  }
  if (b) o += "</b>";
  if (c) o += "</code>";
  return o;
}
std::vector<std::string> mdCells(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|') {
      size_t a = cur.find_first_not_of(' '), z = cur.find_last_not_of(' ');
      cells.push_back(a == std::string::npos ? "" : cur.substr(a, z - a + 1));
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return cells;
}
}  // namespace

std::string evaluationHtml(const json& ev, const std::string& markdown, const fs::path& dir,
                           const std::string& title) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << esc(title)
    << "</title>\n<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;max-width:1200px;color:#1d2430}"
       "table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #dde1e7;padding:3px "
       "8px;text-align:left}"
       "th{background:#f0f2f5;cursor:pointer}td.num{text-align:right;font-variant-numeric:tabular-nums}"
       "tr.bad td{background:#fde7e7}.plots{display:flex;flex-wrap:wrap;gap:16px}.plots "
       "svg{max-width:560px;height:auto}"
       "</style></head>\n<body data-render=\"pending\">\n";
  // The Markdown report, converted (headings, tables, lists, paragraphs; plots inline as SVG).
  std::istringstream in(markdown);
  std::string line;
  bool in_table = false, header_row = false, in_list = false;
  std::vector<std::string> plots;
  auto closeBlocks = [&]() {
    if (in_table) o << "</table>\n";
    if (in_list) o << "</ul>\n";
    in_table = in_list = false;
  };
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) == 0) {
      if (line.find("|---") == 0) continue;
      if (!in_table) {
        closeBlocks();
        o << "<table>\n";
        in_table = header_row = true;
      }
      o << "<tr>";
      for (const auto& c : mdCells(line))
        o << (header_row ? "<th>" : "<td>") << inlineMd(c) << (header_row ? "</th>" : "</td>");
      o << "</tr>\n";
      header_row = false;
      continue;
    }
    if (line.rfind("![", 0) == 0) {  // a plot: its SVG inline, gathered into one row
      const size_t a = line.find("](") + 2, z = line.rfind(')');
      plots.push_back(line.substr(a, z - a));
      continue;
    }
    if (line.rfind("- ", 0) == 0) {
      if (!in_list) {
        closeBlocks();
        o << "<ul>\n";
        in_list = true;
      }
      o << "<li>" << inlineMd(line.substr(2)) << "</li>\n";
      continue;
    }
    closeBlocks();
    if (line.empty()) continue;
    if (line.rfind("## ", 0) == 0) {
      if (line.rfind("## Plots", 0) == 0) continue;  // drawn below, inline
      o << "<h2>" << inlineMd(line.substr(3)) << "</h2>\n";
    } else if (line.rfind("# ", 0) == 0) {
      o << "<h1>" << inlineMd(line.substr(2)) << "</h1>\n";
    } else {
      o << "<p>" << inlineMd(line) << "</p>\n";
    }
  }
  closeBlocks();
  if (!plots.empty()) {
    o << "<h2>Plots</h2>\n<div class=\"plots\">\n";
    for (const auto& png : plots) {
      const fs::path svg = dir / (png.substr(0, png.size() - 4) + ".svg");
      std::ifstream f(svg);
      std::stringstream ss;
      ss << f.rdbuf();
      std::string text = ss.str();
      const size_t at = text.find("<svg");
      if (f && at != std::string::npos)
        o << text.substr(at) << "\n";
      else
        o << "<img src=\"" << esc(png) << "\" alt=\"" << esc(png) << "\">\n";
    }
    o << "</div>\n";
  }
  // Every case: sortable, to find the outliers.
  o << "<h2>Per case (click a column to sort; red: category disagrees or failed)</h2>\n<table "
       "id=\"cases\"><thead><tr>"
       "<th>case</th><th>status</th><th>predicted BMD</th><th>reference "
       "BMD</th><th>error</th><th>|error|</th>"
       "<th>predicted category</th><th>reference category</th><th>unusable levels</th><th>error "
       "message</th></tr></thead><tbody>\n";
  auto num = [](const json& v) {
    if (!v.is_number()) return std::string();
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", v.get<double>());
    return std::string(b);
  };
  for (const auto& r : ev.value("per_case", json::array())) {
    const bool bad =
        r["status"] != "ok" || (r["category_agrees"].is_boolean() && !r["category_agrees"].get<bool>());
    o << "<tr" << (bad ? " class=\"bad\"" : "") << "><td>" << esc(r["case_id"].get<std::string>())
      << "</td><td>" << esc(r["status"].get<std::string>()) << "</td><td class=\"num\">" << num(r["pred_bmd"])
      << "</td><td class=\"num\">" << num(r["ref_bmd"]) << "</td><td class=\"num\">" << num(r["error"])
      << "</td><td class=\"num\">" << (r["error"].is_number() ? num(std::abs(r["error"].get<double>())) : "")
      << "</td><td>" << esc(r["pred_category"].get<std::string>()) << "</td><td>"
      << esc(r["ref_category"].get<std::string>()) << "</td><td class=\"num\">"
      << r["levels_unusable"].get<long>() << "</td><td>" << esc(r["error_message"].get<std::string>())
      << "</td></tr>\n";
  }
  o << "</tbody></table>\n<script>\n\"use strict\";\n"
       "window.addEventListener(\"error\", e => { document.body.dataset.errors = "
       "(document.body.dataset.errors || \"\") + e.message + \";\"; });\n"
       "const tb = document.querySelector(\"#cases tbody\");\n"
       "document.querySelectorAll(\"#cases th\").forEach((th, k) => { let dir = 1; "
       "th.addEventListener(\"click\", () => {\n"
       "  const rows = [...tb.rows], v = r => { const t = r.cells[k].textContent; const x = parseFloat(t); "
       "return t === \"\" ? null : isNaN(x) ? t : x; };\n"
       "  rows.sort((a, b) => { const x = v(a), y = v(b); if (x === null) return 1; if (y === null) return "
       "-1; return (x < y ? -1 : x > y ? 1 : 0) * dir; });\n"
       "  dir = -dir; tb.replaceChildren(...rows); }); });\n"
       "document.body.dataset.rows = String(tb.rows.length);\ndocument.body.dataset.render = "
       "\"ok\";\n</script>\n</body></html>\n";
  return o.str();
}

}  // namespace ctbmd
