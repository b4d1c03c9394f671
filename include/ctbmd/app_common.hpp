#pragma once
// What the thin command front ends share.
#include <spdlog/spdlog.h>

#include "ctbmd/cli.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/pipeline.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd::cli {
/// --rule, --ref-mean, --ref-sd, --contrast-phase (classify and run).
inline void addClassifyOptions(CLI::App& app, ClassifyParams& p) {
  app.add_option("-r,--rule", p.rule,
                 "Rule: acr-qct (L1-L2 BMD: normal > 120, osteopenia 80-120, osteoporosis < 80 mg/cm3) | "
                 "who-tscore (needs --ref-mean/--ref-sd) | l1-hu (L1 mean HU <= 110 / >= 160) | ts-median "
                 "(L1 median HU < 90.25 native, +20 arterial, +14.75 portal-venous) | bccnet (learned class "
                 "probabilities on the mosaic-392 images; needs --classify-model)")
      ->check(oneOf(kRules))
      ->capture_default_str();
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
      ->check(CLI::IsMember({"calibration", "mosaic-cnn", "densenet3d"}))
      ->capture_default_str();
  app.add_option("--bmd-model", p.model, "Model folder of a learned BMD method (task bmd-regress)");
  app.add_option("--device", p.device, "Learned methods: auto | cpu | cuda")->capture_default_str();
}
}  // namespace ctbmd::cli
