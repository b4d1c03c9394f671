// classify: published rules on the BMD result; the rule and its inputs are recorded.
#include "ctbmd/errors.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd {

using nlohmann::json;

json ClassifyResult::toJson() const {
  return {{"rule", rule},
          {"category", category},
          {"inputs", inputs},
          {"details", details},
          {"status", uncalibrated ? "uncalibrated" : "calibrated"}};
}

ClassifyResult ClassifyResult::fromJson(const json& j) {
  ClassifyResult r;
  try {
    r.rule = j.at("rule").get<std::string>();
    r.category = j.at("category").get<std::string>();
    r.inputs = j.value("inputs", json::object());
    r.details = j.value("details", json::object());
    r.uncalibrated = j.value("status", "") == "uncalibrated";
  } catch (const json::exception& e) {
    throw InputError(std::string("classification JSON is missing fields (") + e.what() + ")");
  }
  return r;
}

ClassifyResult classify(const BmdResult& bmd, const ClassifyParams& p) {
  ClassifyResult r;
  r.rule = p.rule;
  r.uncalibrated = !bmd.calibration.calibrated;
  if (p.rule == "acr-qct") {
    r.details = {
        {"source",
         "ACR-SPR-SSR practice parameter for QCT / ISCD: trabecular spine BMD, "
         "mean of L1-L2"},
        {"thresholds_mg_cm3", {{"normal", "> 120"}, {"osteopenia", "80 - 120"}, {"osteoporosis", "< 80"}}}};
    r.inputs = {{"bmd_l1l2", bmd.bmd_l1l2 ? json(*bmd.bmd_l1l2) : json(nullptr)},
                {"levels_used", bmd.levels_used},
                {"levels_reason", bmd.levels_reason}};
    if (!bmd.bmd_l1l2) {
      r.category = "unavailable";
      r.details["reason"] = "no usable L1/L2 (or T12 substitute) BMD";
    } else {
      double v = *bmd.bmd_l1l2;
      r.category = v > 120 ? "normal" : (v >= 80 ? "osteopenia" : "osteoporosis");
    }
    return r;
  }
  throw UsageError("unknown classification rule '" + p.rule + "' (rules: acr-qct)");
}

}  // namespace ctbmd
