// ctbmd-calibrate: fit BMD = intercept + slope * HU from phantom rods, paired data or the
// patient's own reference tissues; writes the calibration JSON that bmd-estimate reads.
#include "ctbmd/calibrate.hpp"

#include <iostream>

#include "app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-calibrate",
                        "Fit a linear HU -> BMD calibration (Eigen least squares) from phantom rods, paired "
                        "HU/QCT data or internal reference tissues");
  auto& app = tool.app();
  std::string output, input, phantom = "esp-ha", fit_method = "ols", material = "hydroxyapatite", tissues,
                             localize_json, series, print_def;
  double huber_k = 1.345;
  bool print_tissues = false;
  app.add_option(
      "--print-definition", print_def,
      "Print a built-in phantom definition (esp-ha, k2hpo4-5rod) as JSON, to copy and edit, and exit");
  app.add_flag("--print-tissues", print_tissues,
               "Print the built-in reference-tissue table of internal calibration as JSON and exit");
  auto* rods = app.add_subcommand("rods",
                                  "Find the rods of a calibration phantom in a scan (under the patient, "
                                  "or a phantom-only scan for asynchronous calibration)");
  rods->add_option("scan", input, "CT scan (file or DICOM folder)")->required();
  rods->add_option("-p,--phantom", phantom,
                   "Phantom definition: esp-ha (50/100/200 mg/cm3 HA), k2hpo4-5rod, or a JSON file")
      ->capture_default_str();
  rods->add_option("--series", series, "DICOM series UID when the folder has several");
  rods->add_option("-o,--output", output, "calibration.json to write")->required();
  auto* paired = app.add_subcommand("paired", "Fit to a CSV of (case, level, hu, bmd) pairs from QCT");
  paired->add_option("csv", input, "CSV with header: case,level,hu,bmd (case and level optional)")
      ->required();
  paired->add_option("--fit", fit_method, "ols (least squares) | huber (robust)")->capture_default_str();
  paired->add_option("--huber-k", huber_k, "Huber tuning constant, in robust SDs")->capture_default_str();
  paired->add_option("--material", material, "Reference material of the BMD values: hydroxyapatite | K2HPO4")
      ->capture_default_str();
  paired->add_option("-o,--output", output, "calibration.json to write")->required();
  auto* internal = app.add_subcommand(
      "internal", "Phantomless: air, subcutaneous fat, paraspinal muscle and aortic blood of this scan");
  internal->add_option("scan", input, "CT scan (file or DICOM folder)")->required();
  internal->add_option("-l,--localize", localize_json,
                       "localize.json of this scan (else localization runs first)");
  internal->add_option("--tissues", tissues,
                       "Reference-tissue table JSON (default: built-in, --print-tissues)");
  internal->add_option("--series", series, "DICOM series UID when the folder has several");
  internal->add_option("-o,--output", output, "calibration.json to write")->required();
  for (auto* s : {rods, paired, internal}) s->fallthrough();
  app.require_subcommand(0, 1);
  return tool.main(argc, argv, [&] {
    if (!print_def.empty()) {
      std::cout << ctbmd::PhantomDefinition::builtin(print_def).toJson().dump(2) << "\n";
      return 0;
    }
    if (print_tissues) {
      std::cout << ctbmd::TissueTable::builtin().toJson().dump(2) << "\n";
      return 0;
    }
    if (app.get_subcommands().empty())
      throw ctbmd::UsageError("name a source: rods, paired or internal (see --help)");
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    ctbmd::CalibrationFit fit;
    nlohmann::json inputs, params;
    if (rods->parsed() || internal->parsed()) {
      ctbmd::ReadOptions ro;
      ro.series_uid = series;
      ctbmd::Scan scan = ctbmd::readScan(input, ro);
      inputs = ctbmd::scanInputs(scan);
      if (rods->parsed()) {
        auto def = ctbmd::PhantomDefinition::load(phantom);
        params = {{"source", "rods"}, {"phantom", def.name}};
        fit = ctbmd::calibrateRods(scan, def);
      } else {
        ctbmd::checkLooksLikeCt(scan.image.GetPointer(), input);
        ctbmd::LocalizeResult loc;
        if (!localize_json.empty()) {
          {
            const auto lj = ctbmd::readJsonFile(localize_json);
            ctbmd::checkStageFile(lj, localize_json, "ctbmd.localize", 1, "", "");
            loc = ctbmd::LocalizeResult::fromJson(lj, localize_json);
          }
          inputs["localize"] = ctbmd::fileInput(localize_json);
        } else {
          loc = ctbmd::localize(scan);
        }
        auto table = tissues.empty() ? ctbmd::TissueTable::builtin()
                                     : ctbmd::TissueTable::fromJson(ctbmd::readJsonFile(tissues), tissues);
        if (!tissues.empty()) inputs["tissues"] = ctbmd::fileInput(tissues);
        params = {{"source", "internal"}};
        fit = ctbmd::calibrateInternal(scan, loc, table);
      }
    } else {
      auto rows = ctbmd::readPairedCsv(input);
      inputs = {{"paired", ctbmd::fileInput(input)}};
      params = {{"source", "paired"}, {"fit", fit_method}, {"material", material}};
      if (fit_method == "huber") params["huber_k"] = huber_k;
      fit = ctbmd::calibratePaired(rows, fit_method, material, huber_k);
    }
    ctbmd::saveCalibration(output, fit, inputs, params, force);
    const bool few = fit.points.size() <= 12;  // long paired tables go to the debug log
    for (const auto& p : fit.points)
      spdlog::log(few ? spdlog::level::info : spdlog::level::debug, "{:>10}: {:8.1f} HU  {:7.1f} mg/cm3{}",
                  p.name, p.hu, p.density, p.used ? "" : "  not used: " + p.note);
    const auto& f = fit.fit;
    spdlog::info(
        "BMD = {:.3f} (95% CI {:.3f}..{:.3f}) + {:.5f} (95% CI {:.5f}..{:.5f}) x HU  [{}], R2 {:.5f}, "
        "residual SD {:.2f} mg/cm3",
        f.intercept, f.intercept_ci95[0], f.intercept_ci95[1], f.slope, f.slope_ci95[0], f.slope_ci95[1],
        fit.material, f.r2, f.residual_sd);
    for (const auto& w : fit.warnings) spdlog::warn("{}", w);
    return 0;
  });
}
