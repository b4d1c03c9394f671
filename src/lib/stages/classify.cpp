// classify: published rules on the BMD result; the rule and its inputs are recorded.
#include <cmath>
#include <cstdio>

#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/contrast.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

using nlohmann::json;

json ClassifyResult::toJson() const {
  json j = {{"rule", rule},
            {"category", category},
            {"inputs", inputs},
            {"details", details},
            {"status", uncalibrated ? "uncalibrated" : "calibrated"}};
  if (!probabilities.empty()) j["probabilities"] = probabilities;
  j["flags"] = flags;
  return j;
}

ClassifyResult ClassifyResult::fromJson(const json& j, const std::string& file) {
  ClassifyResult r;
  try {
    r.rule = j.at("rule").get<std::string>();
    r.category = j.at("category").get<std::string>();
    r.inputs = j.value("inputs", json::object());
    r.details = j.value("details", json::object());
    r.uncalibrated = j.value("status", "") == "uncalibrated";
    r.probabilities = j.value("probabilities", json::object());
    r.flags = j.value("flags", std::vector<std::string>{});
  } catch (const json::exception& e) {
    throw InputError("classification JSON " + quotedFile(file) + "is missing fields or has wrong types (" +
                     jsonProblem(e) + "); was it written by ctbmd-classify?");
  }
  return r;
}

namespace {
// A threshold as the rules table shows it: "120", "-2.5", "90.25".
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
}  // namespace

json classifyRules() {
  using namespace rules;
  const std::string acr_hi = num(kAcrNormalAboveMgCm3), acr_lo = num(kAcrOsteoporosisBelowMgCm3);
  const std::string who_hi = num(kWhoNormalAtLeastT), who_lo = num(kWhoOsteoporosisAtMostT);
  const std::string hu_lo = num(kL1HuOsteoporosisAtMost), hu_hi = num(kL1HuNormalAtLeast);
  return {
      {toString(Rule::AcrQct),
       {{"measure", "trabecular BMD, mean of L1 and L2 (T12 substitutes for an unusable level), mg/cm3"},
        {"classes",
         {{"normal", "> " + acr_hi},
          {"osteopenia", acr_lo + " - " + acr_hi},
          {"osteoporosis", "< " + acr_lo}}},
        {"source",
         "ACR-SPR-SSR Practice Parameter for the Performance of Quantitative Computed Tomography (QCT) Bone "
         "Densitometry (2018); ISCD 2007 official positions"}}},
      {toString(Rule::WhoTscore),
       {{"measure",
         "T = (L1-L2 BMD - reference mean) / reference SD; reference mean and SD of young adults for the "
         "same measure (--ref-mean, --ref-sd), e.g. a DXA-equivalent value"},
        {"classes",
         {{"normal", "T >= " + who_hi},
          {"osteopenia", who_lo + " < T < " + who_hi},
          {"osteoporosis", "T <= " + who_lo}}},
        {"source", "WHO Technical Report Series 843 (1994); Kanis, Osteoporos Int 1994;4:368-381"}}},
      {toString(Rule::L1Hu),
       {{"measure", "mean attenuation of the L1 trabecular ROI, HU (no calibration needed)"},
        {"classes",
         {{"osteoporosis", "<= " + hu_lo + " HU (osteoporosis likely)"},
          {"indeterminate", hu_lo + " - " + hu_hi + " HU"},
          {"normal", ">= " + hu_hi + " HU (normal BMD likely)"}}},
        {"source",
         "Pickhardt et al., Ann Intern Med 2013;158:588-595 (thresholds for 120 kVp, unenhanced or "
         "portal-venous CT)"}}},
      {toString(Rule::BccNet),
       {{"measure",
         "BCC-Net (DenseNet-BC, growth 12, blocks 1/2/4/2) class probabilities on the mosaic-392 images of "
         "the "
         "levels used for L1-L2 (T12 substitutes), averaged; category = most probable class"},
        {"classes",
         {{"normal", "argmax"}, {"osteopenia", "argmax (low bone mass)"}, {"osteoporosis", "argmax"}}},
        {"source", "learned; see the model card (--classify-model) for its training data and metrics"}}},
      {toString(Rule::RadiomicsRf),
       {{"measure",
         "random-forest class probabilities on IBSI radiomics features of the ROI the model names (its "
         "card's "
         "input.roi and feature_set.json), after the model's own selection (RFE, mRMR, LASSO); category = "
         "most "
         "probable class"},
        {"classes", {{"normal", "argmax"}, {"osteopenia", "argmax"}, {"osteoporosis", "argmax"}}},
        {"source",
         "learned (ctbmd-train radiomics); see the model card (--classify-model) for its data and metrics"}}},
      {toString(Rule::TsMedian),
       {{"measure", "median HU of L1 (erode-4mm ROI, the spine-report convention)"},
        {"classes", {{"osteoporosis", "< threshold"}, {"no_osteoporosis", ">= threshold"}}},
        {"thresholds_hu",
         {{"native", *tsMedianThresholdHu("native")},
          {"arterial", *tsMedianThresholdHu("arterial")},
          {"portal-venous", *tsMedianThresholdHu("portal-venous")}}},
        {"source",
         "TotalSegmentator spine report (Wasserthal et al., Radiol Artif Intell 2023;5:e230024; "
         "threshold " +
             num(kTsNativeHu) + " HU native, +" + num(kTsArterialOffsetHu) + " HU arterial, +" +
             num(kTsPortalVenousOffsetHu) + " HU portal-venous)"}}}};
}

std::string classifyRulesMarkdown() {
  const json all = classifyRules();
  std::string t = "| rule | measure | classes | source |\n|---|---|---|---|\n";
  for (const auto& name : rules::ruleNames()) {
    const json& r = all.at(name);
    std::string classes;
    for (auto it = r.at("classes").begin(); it != r.at("classes").end(); ++it)
      classes += (classes.empty() ? "" : "; ") + it.key() + " " + it.value().get<std::string>();
    if (r.contains("thresholds_hu")) {
      std::string th;
      for (auto it = r["thresholds_hu"].begin(); it != r["thresholds_hu"].end(); ++it)
        th += (th.empty() ? "" : ", ") + it.key() + " " + num(it.value().get<double>()) + " HU";
      classes += " (threshold: " + th + ")";
    }
    t += "| `" + name + "`" + (name == ClassifyParams{}.rule ? " (default)" : "") + " | " +
         r.at("measure").get<std::string>() + " | " + classes + " | " + r.at("source").get<std::string>() +
         " |\n";
  }
  return t;
}

namespace {
const LevelBmd* usableLevel(const BmdResult& b, int label) {
  const LevelBmd* l = b.find(label);
  return l && l->usable ? l : nullptr;
}
std::string whyNot(const BmdResult& b, int label) {
  const LevelBmd* l = b.find(label);
  if (!l) return "missing";
  return l->flags.empty() ? "unusable" : l->flags.front();
}
}  // namespace

ClassifyResult classifyLearned(const BmdResult& bmd, const ClassifyParams& p, const RoiResult* roi);
ClassifyResult classifyRule(const BmdResult& bmd, const ClassifyParams& p);

namespace {
// The published effect of iodinated contrast on what the HU and BMD rules measure.
constexpr const char* kContrastBias =
    "iodinated contrast raises trabecular attenuation: L1 +11.2 HU (SD 19.2) in portal-venous against "
    "unenhanced scans (Pickhardt et al., Osteoporos Int 2016;27:147-152); +13.5 HU arterial, +18.2 HU "
    "portal-venous, with 7-25 % of osteoporosis missed at unenhanced thresholds (Pompe et al., Eur Radiol "
    "2015;25:283-289); calibrated BMD biased by > 6 mg/cm3 in every enhanced phase (Kaesmacher et al., J "
    "Comput Assist Tomogr 2017;41:217-223). A category from an enhanced scan leans towards normal.";

// The rules defined on unenhanced CT: an enhanced scan gets `contrast_enhanced`, never
// silently treated as native.
void flagContrast(ClassifyResult& r, const std::optional<ContrastPhase>& detected) {
  if (!detected) return;
  const ContrastPhase& c = *detected;
  r.inputs["contrast"] = c.toJson();
  if (!c.enhanced) return;
  r.flags.push_back("contrast_enhanced");
  r.details["contrast_note"] = std::string("the scan is contrast-enhanced (") + c.phase + "; " + c.basis +
                               "); the rule's thresholds are for unenhanced CT: " + kContrastBias;
}
}  // namespace

namespace {
RadiomicsClassifier& radiomicsHook() {
  static RadiomicsClassifier h;
  return h;
}
}  // namespace

void setRadiomicsClassifier(RadiomicsClassifier c) { radiomicsHook() = std::move(c); }

namespace {
RadiomicsModelCheck& radiomicsCheckHook() {
  static RadiomicsModelCheck h;
  return h;
}
}  // namespace

void setRadiomicsModelCheck(RadiomicsModelCheck c) { radiomicsCheckHook() = std::move(c); }

void checkRadiomicsModel(const std::string& folder) {
  if (!radiomicsCheckHook())
    throw UsageError(
        "rule radiomics-rf is applied by ctbmd-run and ctbmd-classify (which carry the random "
        "forest); this program does not");
  radiomicsCheckHook()(folder);
}

ClassifyResult classifyRadiomicsRule(const Scan& scan, const LabelImage* labels, const ClassifyParams& p) {
  if (!radiomicsHook())
    throw UsageError(
        "rule radiomics-rf is applied by ctbmd-run and ctbmd-classify (which carry the random "
        "forest); this program does not");
  return radiomicsHook()(scan, labels, p);
}

ClassifyResult classify(const BmdResult& bmd, const ClassifyParams& p, const RoiResult* roi) {
  const auto rule = rules::parseRule(p.rule);
  if (rule == rules::Rule::BccNet) return classifyLearned(bmd, p, roi);
  if (rule == rules::Rule::RadiomicsRf)
    throw UsageError(
        "rule radiomics-rf classifies from the scan's radiomics features, not from bmd.json: "
        "ctbmd-classify --rule radiomics-rf --features features.csv, or ctbmd-run --rule radiomics-rf");
  ClassifyResult r = classifyRule(bmd, p);
  if (rule && rules::ruleAssumesUnenhanced(*rule)) flagContrast(r, p.detected_contrast);
  return r;
}

ClassifyResult classifyRule(const BmdResult& bmd, const ClassifyParams& p) {
  ClassifyResult r;
  r.rule = p.rule;
  r.uncalibrated = bmd.method == "calibration" && !bmd.calibration.calibrated;
  const json all_rules = classifyRules();
  const auto rule = rules::parseRule(p.rule);
  if (!rule || !all_rules.contains(p.rule)) {
    std::string names;
    for (auto it = all_rules.begin(); it != all_rules.end(); ++it)
      names += (names.empty() ? "" : ", ") + it.key();
    throw UsageError("unknown classification rule '" + p.rule + "' (rules: " + names + ")");
  }
  r.details = all_rules[p.rule];
  if (*rule == rules::Rule::AcrQct || *rule == rules::Rule::WhoTscore) {
    r.inputs = {{"bmd_l1l2", bmd.bmd_l1l2 ? json(*bmd.bmd_l1l2) : json(nullptr)},
                {"levels_used", bmd.levels_used},
                {"levels_reason", bmd.levels_reason}};
    if (*rule == rules::Rule::WhoTscore) {
      if (!p.ref_mean || !p.ref_sd || !(*p.ref_sd > 0))
        throw UsageError(
            "rule who-tscore needs --ref-mean and --ref-sd (> 0): the young-adult reference of the "
            "measure, e.g. --ref-mean 170 --ref-sd 30 for a QCT-based value of your reference");
      r.inputs["ref_mean"] = *p.ref_mean;
      r.inputs["ref_sd"] = *p.ref_sd;
    }
    if (!bmd.bmd_l1l2) {
      r.category = rules::toString(rules::Category::Unavailable);
      r.details["reason"] = "no usable L1/L2 (or T12 substitute) BMD";
      return r;
    }
    double v = *bmd.bmd_l1l2;
    if (*rule == rules::Rule::AcrQct) {
      r.category = rules::toString(rules::acrCategory(v));
    } else {
      double t = (v - *p.ref_mean) / *p.ref_sd;
      r.inputs["t_score"] = t;
      r.category = rules::toString(rules::whoCategory(t));
    }
    return r;
  }
  // HU rules on L1: no calibration involved.
  r.uncalibrated = false;
  const LevelBmd* l1 = usableLevel(bmd, kL1);
  if (!l1) {
    r.category = rules::toString(rules::Category::Unavailable);
    r.details["reason"] = "L1 unusable (" + whyNot(bmd, kL1) + "); the rule is defined on L1 only";
    r.inputs = {{"level", "L1"}};
    return r;
  }
  if (*rule == rules::Rule::L1Hu) {
    double hu = l1->hu_mean;
    r.inputs = {{"level", "L1"}, {"hu_mean", hu}, {"roi_protocol", bmd.protocol}};
    if (bmd.protocol != "ellipse-s1")
      r.details["note"] =
          "published with an oval ROI in the anterior trabecular body; this ROI: " + bmd.protocol;
    r.category = rules::toString(rules::l1HuCategory(hu));
    return r;
  }
  // ts-median: the phase given, else the one estimated from the scan, else native (with a note)
  std::string phase = p.contrast_phase;
  std::string phase_from = "given (--contrast-phase)";
  if (phase.empty() && p.detected_contrast) {
    const ContrastPhase& c = *p.detected_contrast;
    r.inputs["contrast"] = c.toJson();
    if (c.phase == "native" && !c.enhanced) {
      phase = "native";
    } else if (c.phase == "arterial" || c.phase == "portal-venous") {
      phase = c.phase;
    } else if (c.enhanced) {
      // delayed or enhanced of unknown phase: the nearest published threshold, flagged
      phase = "portal-venous";
      r.flags.push_back("contrast_phase_approximated");
      r.details["note_phase"] =
          "estimated phase '" + c.phase + "' has no published threshold: the portal-venous one is used";
    }
    if (!phase.empty()) phase_from = "estimated from the scan (" + c.basis + ")";
  }
  if (phase.empty()) {
    phase = "native";
    phase_from = "not given, not estimated: native assumed";
  }
  const auto threshold = rules::tsMedianThresholdHu(phase);
  if (!threshold) throw UsageError("--contrast-phase must be native, arterial or portal-venous");
  const double thr = *threshold;
  double hu = l1->hu_median;
  r.inputs = {{"level", "L1"},
              {"hu_median", hu},
              {"contrast_phase", phase},
              {"threshold_hu", thr},
              {"roi_protocol", bmd.protocol}};
  r.inputs["contrast_phase_source"] = phase_from;
  if (p.contrast_phase.empty() && !p.detected_contrast)
    r.details["note"] = "contrast phase not given: the native threshold is used (--contrast-phase)";
  if (bmd.protocol != "erode-4mm")
    r.details["note_roi"] = "threshold defined on the erode-4mm ROI; this ROI: " + bmd.protocol;
  r.category = rules::toString(rules::tsMedianCategory(hu, thr));
  return r;
}

}  // namespace ctbmd
