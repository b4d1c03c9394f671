// ctbmd-classify: category by a published rule.
#include "app_common.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/qc.hpp"
#include "ctbmd/radiomics_model.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-classify", "Classify bone status from bmd.json by a published rule");
  std::string bmd_json, output;
  ctbmd::ClassifyParams p;
  auto& app = tool.app();
  app.add_flag_callback(
      "--list-rules",
      [] {
        std::fputs(ctbmd::classifyRulesMarkdown().c_str(), stdout);
        throw CLI::Success();
      },
      "Print the rules, their thresholds and sources (a Markdown table) and exit");
  app.add_option("bmd", bmd_json, "bmd.json from ctbmd-bmd-estimate (every rule but radiomics-rf)");
  std::string features_csv;
  app.add_option("--features", features_csv,
                 "radiomics-rf: features.csv from ctbmd-radiomics, computed with the model's feature set "
                 "(--config MODEL/feature_set.json); one result per row")
      ->check(CLI::ExistingFile);
  app.add_option("-o,--output", output, "classification.json to write")->required();
  ctbmd::cli::addClassifyOptions(app, p);
  std::string roi_json, qc;
  bool no_qc = false;
  app.add_option("--roi", roi_json, "bccnet: roi.json of the mosaic-392 protocol (its mosaics are read)");
  app.add_option("--device", p.device, "bccnet: auto | cpu | cuda")->capture_default_str();
  app.add_option("--qc", qc,
                 "Pie chart of the class probabilities (PNG; learned rules; default: <output stem>_qc.png)");
  app.add_flag("--no-qc", no_qc, "Write no pie chart");
  std::string localize_json;
  app.add_option("--localize", localize_json,
                 "localize.json of the scan: its estimated contrast phase is used (ts-median without "
                 "--contrast-phase) and an enhanced scan is flagged under acr-qct, l1-hu, who-tscore "
                 "(ctbmd-run does this itself)")
      ->check(CLI::ExistingFile);
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    if (p.rule == "radiomics-rf") {
      if (features_csv.empty() || p.model.empty())
        throw ctbmd::UsageError(
            "--rule radiomics-rf needs --features features.csv and --classify-model FOLDER");
      if (!bmd_json.empty()) throw ctbmd::UsageError("--rule radiomics-rf reads --features, not bmd.json");
      namespace rad = ctbmd::radiomics;
      const auto model = rad::RadiomicsModel::load(p.model);
      const auto side = rad::featuresJsonPath(features_csv);
      if (!std::filesystem::exists(side))
        throw ctbmd::InputError("'" + features_csv + "' has no " + side.filename().string() +
                                " beside it: its feature set cannot be checked against the model's");
      const auto sj = ctbmd::readJsonFile(side);
      ctbmd::checkStageFile(sj, side.string(), "ctbmd.radiomics", 1, "", "");
      if (sj.value("feature_set", nlohmann::json()) != rad::toJson(model.featureConfig()))
        throw ctbmd::InputError("'" + features_csv + "' was computed with another feature set than model '" +
                                p.model + "' was trained on: run ctbmd-radiomics --config " +
                                (std::filesystem::path(p.model) / "feature_set.json").string());
      const auto rows = rad::readFeatureCsv(features_csv);
      const auto results = rad::classifyFeatureRows(model, rows);
      nlohmann::json list = nlohmann::json::array();
      for (std::size_t i = 0; i < rows.size(); ++i) {
        nlohmann::json e = results[i].toJson();
        e["case_id"] = rows[i].case_id;
        e["roi"] = rows[i].roi;
        list.push_back(e);
        spdlog::info("{} {}: {}", rows[i].case_id, rows[i].roi, results[i].category);
      }
      nlohmann::json inputs = {{"features", ctbmd::fileInput(features_csv)}};
      ctbmd::writeStageJson(
          output, {{"rule", "radiomics-rf"}, {"model", model.card().provenance()}, {"rois", list}},
          "ctbmd.radiomics-classification", inputs, {{"rule", p.rule}, {"model", p.model}}, force);
      return 0;
    }
    if (bmd_json.empty()) throw ctbmd::UsageError("bmd.json (from ctbmd-bmd-estimate) is required");
    std::filesystem::path out(output);
    const bool learned = p.rule == "bccnet";
    if (qc.empty()) qc = (out.parent_path() / (out.stem().string() + "_qc.png")).string();
    if (learned && !no_qc) ctbmd::checkWritable(qc, force);
    const auto bmd_j = ctbmd::readJsonFile(bmd_json);
    ctbmd::checkStageFile(bmd_j, bmd_json, "ctbmd.bmd", 1, "", "");
    auto bmd = ctbmd::BmdResult::fromJson(bmd_j, bmd_json);
    if (!localize_json.empty()) {
      const auto lj = ctbmd::readJsonFile(localize_json);
      ctbmd::checkStageFile(lj, localize_json, "ctbmd.localize", 1, "", "");
      p.detected_contrast = ctbmd::LocalizeResult::fromJson(lj, localize_json).contrast;
      if (!p.detected_contrast)
        spdlog::warn("'{}' holds no contrast estimate (written by an older ctbmd?)", localize_json);
    } else if (p.rule != "bccnet") {
      spdlog::info(
          "contrast phase unknown to ctbmd-classify: give --localize localize.json to have an enhanced "
          "scan flagged");
    }
    std::optional<ctbmd::RoiResult> roi;
    if (!roi_json.empty()) roi = ctbmd::loadRoiWithMosaics(roi_json);
    auto res = ctbmd::classify(bmd, p, roi ? &*roi : nullptr);
    ctbmd::saveClassification(output, res, bmd_json, p, force);
    if (!res.probabilities.empty() && !no_qc)
      ctbmd::writePngRgb(qc, ctbmd::renderClassificationQc(res), force);
    spdlog::info("category: {} ({}){}", res.category, res.rule, res.uncalibrated ? " [uncalibrated]" : "");
    return 0;
  });
}
