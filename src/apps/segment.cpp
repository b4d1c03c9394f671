// ctbmd-segment: label map of the vertebral bodies (VerSe numbering) on the input grid.
#include "app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-segment", "Segment the vertebral bodies localized by ctbmd-localize");
  std::string input, loc_json, output, series;
  ctbmd::SegmentParams p;
  auto& app = tool.app();
  app.add_option("input", input, "CT: NIfTI, NRRD, MetaImage file or DICOM series folder")->required();
  app.add_option("-l,--localize", loc_json, "localize.json from ctbmd-localize")->required();
  app.add_option("-o,--output", output, "Label map to write (segmentation.nii.gz); its JSON goes beside it")
      ->required();
  app.add_option("--series", series, "DICOM series UID (folder with several series)");
  app.add_option("--method", p.method,
                 "classical (weight-free default) | unet2d | dense-unet3d (learned; need --model)")
      ->check(CLI::IsMember(ctbmd::methods::names(ctbmd::methods::Segment{})))
      ->capture_default_str();
  app.add_option("--model", p.model,
                 "Model folder for a learned method (task segment, e.g. models/unet2d-phantom)");
  app.add_option("--device", p.device, "auto | cpu | cuda (learned methods)")->capture_default_str();
  app.add_option("--fracture-ratio", p.fracture_ratio,
                 "Flag bodies lower than this fraction of their reference height")
      ->capture_default_str();
  bool no_check_inputs = false;
  app.add_flag("--no-check-inputs", no_check_inputs,
               "Use a localize.json whose recorded CT (sha256) is not this scan (experts only)");
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    ctbmd::checkWritable(ctbmd::segmentJsonPath(output), force);
    const auto loc_j = ctbmd::readJsonFile(loc_json);
    ctbmd::checkStageFile(loc_j, loc_json, "ctbmd.localize", 1, "", "");  // before the CT is read
    auto scan = ctbmd::readScan(input, {series});
    ctbmd::checkStageFile(loc_j, loc_json, "ctbmd.localize", 1, no_check_inputs ? "" : scan.info.sha256,
                          input);
    auto loc = ctbmd::LocalizeResult::fromJson(loc_j, loc_json);
    ctbmd::checkLocalizeFitsScan(scan, loc, loc_json);
    auto res = ctbmd::segment(scan, loc, p);
    ctbmd::saveSegment(output, res, scan, loc_json, p, force);
    for (const auto& l : res.levels)
      spdlog::info("{:>3}: {} {:.1f} ml{}", l.name, ctbmd::toString(l.status), l.volume_mm3 / 1000.0,
                   l.suspected_fracture ? " (possible fracture)" : "");
    return 0;
  });
}
