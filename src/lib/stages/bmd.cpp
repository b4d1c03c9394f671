// bmd-estimate: HU -> BMD through a linear calibration, with uncertainty, and the L1-L2
// average with T12 substituting for an unusable level.
#include <cmath>
#include <map>

#include "bmd_learned.hpp"
#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/methods.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

using nlohmann::json;

Calibration Calibration::defaultUncalibrated() {
  Calibration c;
  c.calibrated = false;
  c.source = "default";
  c.material = "hydroxyapatite";
  c.intercept = 0.0;
  c.slope = rules::kNominalSlopeMgCm3PerHu;
  c.slope_se = rules::kNominalSlopeRelSe * c.slope;
  c.raw = {
      {"note",
       "no calibration given: nominal conversion BMD = 0.8 * HU (rule of thumb for trabecular "
       "bone at 120 kVp). Values are marked uncalibrated and are not comparable across "
       "scanners; fit a calibration with phantom rods, paired QCT data or internal references."},
      {"slope_se_source",
       "9.2 % relative SD of one fixed conversion across eight CT scanners at one tube voltage "
       "(28.2 % across tube voltages): Skornitzke et al., Sci Rep 2022, doi:10.1038/s41598-022-24546-2"}};
  return c;
}

Calibration Calibration::nominalFor(const std::string& kvp) {
  Calibration c = defaultUncalibrated();
  if (rules::kvpOffNominal(kvp)) {
    c.slope_se = rules::kNominalSlopeRelSeOffKvp * c.slope;
    c.raw["note_kvp"] = "a " + kvp + " kVp scan: the 120 kVp conversion's SE across tube voltages is used";
  }
  return c;
}

Calibration Calibration::fromJson(const json& j, const std::string& source) {
  // A calibration ctbmd-calibrate wrote carries its schema; a hand-written one (README) may not.
  if (j.is_object() && j.contains("schema")) checkStageFile(j, source, "ctbmd.calibration", 1, "", "");
  Calibration c;
  try {
    c.calibrated = true;
    c.source = source;
    c.material = j.value("material", "hydroxyapatite");
    c.intercept = j.at("intercept").get<double>();
    c.slope = j.at("slope").get<double>();
    c.intercept_se = j.value("intercept_se", 0.0);
    c.slope_se = j.value("slope_se", 0.0);
    c.cov_is = j.value("covariance_intercept_slope", 0.0);
    c.valid_for = j.value("valid_for", json::object());
    c.raw = j;
  } catch (const json::exception& e) {
    throw InputError(
        "calibration '" + source +
        "' lacks a numeric 'intercept' or 'slope' (BMD = intercept + slope * HU): " + jsonProblem(e));
  }
  if (!(c.slope > 0) || !std::isfinite(c.slope) || !std::isfinite(c.intercept))
    throw InputError("calibration '" + source +
                     "' has a non-positive or invalid slope; BMD must rise with HU");
  if (!(c.intercept_se >= 0) || !(c.slope_se >= 0) || !std::isfinite(c.intercept_se) ||
      !std::isfinite(c.slope_se) || !std::isfinite(c.cov_is) ||
      c.cov_is * c.cov_is > c.intercept_se * c.intercept_se * c.slope_se * c.slope_se * (1 + 1e-9) + 1e-12)
    throw InputError(
        "calibration '" + source +
        "': standard errors must be finite and >= 0, with |covariance| <= the product of the SEs "
        "(intercept_se " +
        std::to_string(c.intercept_se) + ", slope_se " + std::to_string(c.slope_se) +
        "); fit it again with ctbmd-calibrate");
  return c;
}

json Calibration::toJson() const {
  json j = {{"calibrated", calibrated},
            {"source", source},
            {"material", material},
            {"model", "BMD[mg/cm3] = intercept + slope * HU"},
            {"intercept", intercept},
            {"slope", slope},
            {"intercept_se", intercept_se},
            {"slope_se", slope_se},
            {"covariance_intercept_slope", cov_is}};
  if (calibrated) {
    j["valid_for"] = valid_for;
    for (const char* k : {"source_kind", "intercept_ci95", "slope_ci95", "r2", "residual_sd_mg_cm3"})
      if (raw.contains(k)) j[k] = raw[k];
    // every reference point the fit left out, and why (internal: a contrast-enhanced aorta)
    json dropped = json::array();
    if (raw.contains("points") && raw["points"].is_array())
      for (const auto& pt : raw["points"])
        if (!pt.value("used", true))
          dropped.push_back(
              {{"name", pt.value("name", std::string())}, {"why", pt.value("note", std::string())}});
    if (!dropped.empty()) j["dropped_points"] = dropped;
  }
  if (raw.contains("note")) j["note"] = raw["note"];
  return j;
}

json BmdResult::toJson() const {
  json lv = json::object();
  for (const auto& l : levels) {
    json e = {{"label", l.label},
              {"usable", l.usable},
              {"flags", l.flags},
              {"status", l.status},
              {"validity", levelValidity(l)}};
    if (l.hu != 0 || l.usable) {
      e["hu_sd"] = l.hu_sd;
      e["voxels"] = l.voxels;
      e["hu"] = l.hu;
      e["hu_mean"] = l.hu_mean;
      e["hu_median"] = l.hu_median;
      e["bmd_mg_cm3"] = l.bmd;
      e["bmd_se"] = l.bmd_se;
      e["bmd_ci95"] = l.bmd_ci95;
    }
    lv[l.name] = e;
  }
  std::string status =
      method != "calibration" ? "learned" : (calibration.calibrated ? "calibrated" : "uncalibrated");
  json j = {{"method", method},
            {"calibration", calibration.toJson()},
            {"status", status},
            {"statistic", statistic},
            {"protocol", protocol},
            {"levels", lv},
            {"bmd_l1l2", bmd_l1l2 ? json(*bmd_l1l2) : json(nullptr)},
            {"bmd_l1l2_se", bmd_l1l2_se ? json(*bmd_l1l2_se) : json(nullptr)},
            {"levels_used", levels_used},
            {"levels_reason", levels_reason}};
  if (!model.empty()) j["model"] = model;
  return j;
}

BmdResult BmdResult::fromJson(const json& j, const std::string& file) {
  BmdResult r;
  try {
    const json& c = j.at("calibration");
    if (c.at("calibrated").get<bool>())
      r.calibration = Calibration::fromJson(c, c.value("source", ""));
    else
      r.calibration = Calibration::defaultUncalibrated();
    r.calibration.intercept = c.at("intercept").get<double>();
    r.calibration.slope_se = c.value("slope_se", r.calibration.slope_se);
    r.calibration.slope = c.at("slope").get<double>();
    r.statistic = j.at("statistic").get<std::string>();
    r.method = j.value("method", "calibration");
    r.model = j.value("model", json::object());
    r.protocol = j.value("protocol", "");
    for (int label : kReportedLevels) {
      LevelBmd l;
      l.label = label;
      l.name = levelName(label);
      const json& e = j.at("levels").at(l.name);
      l.usable = e.at("usable").get<bool>();
      l.flags = e.value("flags", std::vector<std::string>{});
      l.hu = e.value("hu", 0.0);
      l.hu_mean = e.value("hu_mean", l.hu);
      l.hu_median = e.value("hu_median", l.hu);
      l.hu_sd = e.value("hu_sd", 0.0);
      l.voxels = e.value("voxels", 0L);
      l.status = e.contains("status") ? parseLevelStatus(e.at("status").get<std::string>(), file)
                                      : (l.usable ? LevelStatus::Found : LevelStatus::Missing);
      l.bmd = e.value("bmd_mg_cm3", 0.0);
      l.bmd_se = e.value("bmd_se", 0.0);
      if (e.contains("bmd_ci95")) l.bmd_ci95 = e["bmd_ci95"].get<std::array<double, 2>>();
      r.levels.push_back(l);
    }
    if (!j.at("bmd_l1l2").is_null()) r.bmd_l1l2 = j["bmd_l1l2"].get<double>();
    if (!j.at("bmd_l1l2_se").is_null()) r.bmd_l1l2_se = j["bmd_l1l2_se"].get<double>();
    r.levels_used = j.at("levels_used").get<std::vector<std::string>>();
    r.levels_reason = j.value("levels_reason", "");
  } catch (const json::exception& e) {
    throw InputError("bmd JSON " + quotedFile(file) + "is missing fields or has wrong types (" +
                     jsonProblem(e) +
                     "); was it written by ctbmd-bmd-estimate? Run ctbmd-bmd-estimate again");
  }
  return r;
}

std::string levelValidity(const LevelBmd& l) {
  if (l.status == LevelStatus::Missing) return "missing";
  if (l.usable) return "found";
  std::string why;
  for (const auto& f : l.flags)
    if (f != "uncalibrated" && f != "partial" && f != "missing") why += (why.empty() ? "" : "+") + f;
  if (why.empty()) return l.status == LevelStatus::Partial ? "partial" : "unusable:not_used";
  return "unusable:" + why;
}

const LevelBmd* BmdResult::find(int label) const {
  for (const auto& l : levels)
    if (l.label == label) return &l;
  return nullptr;
}

BmdResult estimateBmd(const RoiResult& roi, const Calibration& cal, const BmdParams& p) {
  if (p.statistic != "mean" && p.statistic != "median")
    throw UsageError("--statistic must be mean or median");
  BmdResult r;
  r.calibration = cal;
  r.statistic = p.statistic;
  r.protocol = roi.protocol;
  r.method = p.method;
  std::map<std::string, double> learned_bmd;
  const auto method = methods::parseBmd(p.method);
  if (!method) throw UsageError("--bmd-method must be calibration, mosaic-cnn or densenet3d");
  if (*method != methods::Bmd::Calibration) learned_bmd = predictLearnedBmd(roi, p, r.model);
  for (const auto& lr : roi.levels) {
    LevelBmd l;
    l.label = lr.label;
    l.name = lr.name;
    l.usable = lr.usable;
    l.flags = lr.flags;
    l.status = lr.status;
    l.hu_sd = lr.stats.sd_hu;
    l.voxels = lr.stats.voxels;
    if (!cal.calibrated && p.method == "calibration") l.flags.push_back("uncalibrated");
    if (p.method != "calibration") {
      l.hu = lr.stats.mean_hu;
      l.hu_mean = lr.stats.mean_hu;
      l.hu_median = lr.stats.median_hu;
      auto it = learned_bmd.find(lr.name);
      if (it != learned_bmd.end()) {
        l.bmd = it->second;
        l.bmd_ci95 = {l.bmd, l.bmd};  // a regressor gives no uncertainty
      } else {
        l.usable = false;
        l.flags.push_back(p.method == "densenet3d" ? "no_crop3d" : "no_mosaic");
      }
    } else if (lr.stats.voxels > 0) {
      double hu = p.statistic == "mean" ? lr.stats.mean_hu : lr.stats.median_hu;
      double se_hu = lr.stats.sd_hu / std::sqrt(static_cast<double>(lr.stats.voxels));
      if (p.statistic == "median") se_hu *= 1.2533;  // asymptotic SE of a normal median
      l.hu = hu;
      l.hu_mean = lr.stats.mean_hu;
      l.hu_median = lr.stats.median_hu;
      l.bmd = cal.intercept + cal.slope * hu;
      double var = cal.slope * cal.slope * se_hu * se_hu + cal.intercept_se * cal.intercept_se +
                   hu * hu * cal.slope_se * cal.slope_se + 2 * hu * cal.cov_is;
      l.bmd_se = std::sqrt(std::max(0.0, var));
      l.bmd_ci95 = {l.bmd - 1.96 * l.bmd_se, l.bmd + 1.96 * l.bmd_se};
    }
    r.levels.push_back(l);
  }
  const LevelBmd* t12 = r.find(kT12);
  const LevelBmd* l1 = r.find(kL1);
  const LevelBmd* l2 = r.find(kL2);
  std::vector<const LevelBmd*> use;
  std::vector<std::string> reasons;
  bool t12_free = t12 && t12->usable;
  for (const LevelBmd* l : {l1, l2}) {
    if (l && l->usable) {
      use.push_back(l);
    } else if (t12_free) {
      use.push_back(t12);
      t12_free = false;
      std::string why = l && !l->flags.empty() ? l->flags.front() : "missing";
      reasons.push_back("T12 substitutes for " + (l ? l->name : std::string("?")) + " (" + why + ")");
    } else if (l) {
      std::string why = !l->flags.empty() ? l->flags.front() : "missing";
      reasons.push_back(l->name + " unusable (" + why + ") and no substitute");
    }
  }
  if (!use.empty()) {
    double sum = 0, var = 0;
    for (const LevelBmd* l : use) {
      sum += l->bmd;
      var += l->bmd_se * l->bmd_se;
      r.levels_used.push_back(l->name);
    }
    r.bmd_l1l2 = sum / use.size();
    // the calibration error is shared by the levels: treat it as fully correlated
    double cal_var = cal.intercept_se * cal.intercept_se;
    r.bmd_l1l2_se = std::sqrt(var / (use.size() * use.size()) + cal_var * (1.0 - 1.0 / use.size()));
  }
  if (reasons.empty())
    r.levels_reason = use.size() == 2 ? "L1 and L2 usable" : "no usable level";
  else {
    for (size_t i = 0; i < reasons.size(); ++i) r.levels_reason += (i ? "; " : "") + reasons[i];
    if (use.size() == 1) r.levels_reason += "; average rests on a single level";
  }
  return r;
}

}  // namespace ctbmd
