// ctbmd-localize: find and name the vertebral bodies T12-L5.
#include "app_common.hpp"
#include "ctbmd/contrast.hpp"
#include "ctbmd/qc.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-localize", "Find the vertebral bodies T12-L5 in a CT scan and name them");
  std::string input, output, series;
  ctbmd::LocalizeParams p;
  auto& app = tool.app();
  app.add_option("input", input, "CT: NIfTI, NRRD, MetaImage file or DICOM series folder")->required();
  app.add_option("-o,--output", output, "localize.json to write")->required();
  app.add_option("--series", series, "DICOM series UID (folder with several series)");
  app.add_option("--method", p.method,
                 "classical (weight-free default) | mip-localizer (learned; needs --model)")
      ->check(CLI::IsMember(ctbmd::methods::names(ctbmd::methods::Localize{})))
      ->capture_default_str();
  app.add_option("--model", p.model, "mip-localizer: model folder holding stage1/ and stage2/");
  app.add_option("--device", p.device, "auto | cpu | cuda (learned methods)")->capture_default_str();
  app.add_option(
      "--level-hint", p.level_hint,
      "NAME[@Z]: a level you know, for scans showing neither the last rib nor the sacrum (a "
      "cut-out): the complete vertebra nearest world z = Z mm (default: the scan's centre) is NAME. "
      "Flagged, not applied, when anatomy names the levels otherwise");
  std::string qc;
  bool no_qc = false;
  app.add_option("--qc", qc, "QC picture (PNG; default: <output stem>_qc.png beside the JSON)");
  app.add_flag("--no-qc", no_qc, "Write no QC picture");
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    std::filesystem::path out(output);
    if (qc.empty()) qc = (out.parent_path() / (out.stem().string() + "_qc.png")).string();
    if (!no_qc) ctbmd::checkWritable(qc, force);
    auto scan = ctbmd::readScan(input, {series});
    auto res = ctbmd::localize(scan, p);
    if (res.status != ctbmd::SpineStatus::NoSpine) res.contrast = ctbmd::estimateContrastPhase(scan, res);
    ctbmd::saveLocalize(output, res, scan, p, force);
    if (!no_qc) ctbmd::writePngRgb(qc, ctbmd::renderLocalizeQc(scan, res), force);
    for (const auto& l : res.levels) spdlog::info("{:>3}: {}", l.name, ctbmd::toString(l.status));
    for (const auto& w : res.warnings) spdlog::warn("{}", w);
    return 0;
  });
}
