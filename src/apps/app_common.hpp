#pragma once
// What the thin command front ends share (private to src/apps: not an installed header).
#include <spdlog/spdlog.h>

#include <cstdio>

#include "ctbmd/cli.hpp"
#include "ctbmd/clinical_rules.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/methods.hpp"
#include "ctbmd/pipeline.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd::cli {
/// --rule, --ref-mean, --ref-sd, --contrast-phase (classify and run).
/// The --rule help, its thresholds read from ctbmd/clinical_rules.hpp.
inline std::string ruleHelp() {
  using namespace rules;
  auto g = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  return "Rule: acr-qct (L1-L2 BMD: normal > " + g(kAcrNormalAboveMgCm3) + ", osteopenia " +
         g(kAcrOsteoporosisBelowMgCm3) + "-" + g(kAcrNormalAboveMgCm3) + ", osteoporosis < " +
         g(kAcrOsteoporosisBelowMgCm3) +
         " mg/cm3) | who-tscore (needs --ref-mean/--ref-sd) | l1-hu (L1 mean HU <= " +
         g(kL1HuOsteoporosisAtMost) + " / >= " + g(kL1HuNormalAtLeast) + ") | ts-median (L1 median HU < " +
         g(kTsNativeHu) + " native, +" + g(kTsArterialOffsetHu) + " arterial, +" +
         g(kTsPortalVenousOffsetHu) +
         " portal-venous) | bccnet (learned class probabilities on the mosaic-392 images; needs "
         "--classify-model)";
}

inline void addClassifyOptions(CLI::App& app, ClassifyParams& p) {
  app.add_option("-r,--rule", p.rule, ruleHelp())->check(oneOf(rules::ruleNames()))->capture_default_str();
  app.add_option_function<double>(
      "--ref-mean", [&p](double v) { p.ref_mean = v; },
      "who-tscore: young-adult reference mean of the measure");
  app.add_option_function<double>(
      "--ref-sd", [&p](double v) { p.ref_sd = v; }, "who-tscore: young-adult reference SD of the measure");
  app.add_option("--contrast-phase", p.contrast_phase, "ts-median: native | arterial | portal-venous")
      ->check(oneOf(kContrastPhases));
  app.add_option("--classify-model", p.model,
                 "bccnet: model folder (task classify), e.g. models/bccnet-phantom");
}
}  // namespace ctbmd::cli

namespace ctbmd::cli {
/// --bmd-method, --bmd-model, --device (bmd-estimate and run).
inline void addBmdMethodOptions(CLI::App& app, BmdParams& p) {
  app.add_option(
         "--bmd-method", p.method,
         "calibration (HU -> BMD by the calibration) | mosaic-cnn (regressor on the mosaic-392 images; "
         "needs --protocol mosaic-392 and --bmd-model) | densenet3d (3-D DenseNet-BC regressor on the "
         "3-D body crops of roi-extract --crop3d; needs --bmd-model)")
      ->check(CLI::IsMember(methods::names(methods::Bmd{})))
      ->capture_default_str();
  app.add_option("--bmd-model", p.model, "Model folder of a learned BMD method (task bmd-regress)");
  app.add_option("--device", p.device, "Learned methods: auto | cpu | cuda")->capture_default_str();
}
}  // namespace ctbmd::cli
