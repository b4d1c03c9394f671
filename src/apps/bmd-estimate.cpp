// ctbmd-bmd-estimate: BMD per level (mg/cm3) from an ROI JSON and a calibration.
#include "app_common.hpp"
#include "ctbmd/calibrate.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-bmd-estimate", "Convert ROI HU to BMD with a calibration; L1-L2 average");
  std::string roi_json, output, calibration;
  ctbmd::BmdParams p;
  auto& app = tool.app();
  app.add_option("roi", roi_json, "roi.json from ctbmd-roi-extract")->required();
  app.add_option("-o,--output", output, "bmd.json to write")->required();
  app.add_option("-c,--calibration", calibration,
                 "Calibration JSON (BMD = intercept + slope * HU); without it "
                 "results are marked uncalibrated");
  app.add_option("--statistic", p.statistic, "ROI statistic: mean | median")
      ->check(ctbmd::cli::oneOf(ctbmd::cli::kStatistics))
      ->capture_default_str();
  ctbmd::cli::addBmdMethodOptions(app, p);
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    auto roi_j = ctbmd::readJsonFile(roi_json);
    ctbmd::checkStageFile(roi_j, roi_json, "ctbmd.roi", 1, "", "");
    auto roi = p.method != "calibration" ? ctbmd::loadRoiWithMosaics(roi_json)
                                         : ctbmd::RoiResult::fromJson(roi_j, roi_json);
    std::optional<std::filesystem::path> cal_path;
    ctbmd::Calibration cal = ctbmd::Calibration::defaultUncalibrated();
    if (!calibration.empty()) {
      cal_path = calibration;
      cal = ctbmd::Calibration::fromJson(ctbmd::readJsonFile(calibration), calibration);
    } else if (p.method == "calibration") {
      spdlog::warn("no --calibration: BMD uses the nominal conversion and is marked uncalibrated");
      // off 120 kVp the nominal conversion is less certain (its SE, rules::kNominalSlopeRelSeOffKvp)
      const auto ct = roi_j.value("/provenance/inputs/ct"_json_pointer, nlohmann::json::object());
      if (ct.is_object() && ct.contains("kvp") && ct["kvp"].is_string())
        cal = ctbmd::Calibration::nominalFor(ct["kvp"].get<std::string>());
    }
    if (roi_j.contains("provenance") && roi_j["provenance"].contains("inputs") &&
        roi_j["provenance"]["inputs"].contains("ct"))
      for (const auto& w : ctbmd::calibrationMismatch(cal, roi_j["provenance"]["inputs"]["ct"]))
        spdlog::warn("{}", w);
    auto res = ctbmd::estimateBmd(roi, cal, p);
    ctbmd::saveBmd(output, res, roi_json, cal_path, p, force);
    for (const auto& l : res.levels)
      if (l.hu != 0)
        spdlog::info("{:>3}: {:.1f} mg/cm3 (+-{:.1f}){}", l.name, l.bmd, 1.96 * l.bmd_se,
                     l.usable ? "" : " not used");
    return 0;
  });
}
