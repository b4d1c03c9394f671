// ctbmd-classify: category by a published rule.
#include "ctbmd/app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-classify", "Classify bone status from bmd.json by a published rule");
  std::string bmd_json, output;
  ctbmd::ClassifyParams p;
  auto& app = tool.app();
  app.add_option("bmd", bmd_json, "bmd.json from ctbmd-bmd-estimate")->required();
  app.add_option("-o,--output", output, "classification.json to write")->required();
  ctbmd::cli::addClassifyOptions(app, p);
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    auto bmd = ctbmd::BmdResult::fromJson(ctbmd::readJsonFile(bmd_json));
    auto res = ctbmd::classify(bmd, p);
    ctbmd::saveClassification(output, res, bmd_json, p, force);
    spdlog::info("category: {} ({}){}", res.category, res.rule, res.uncalibrated ? " [uncalibrated]" : "");
    return 0;
  });
}
