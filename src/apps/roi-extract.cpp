// ctbmd-roi-extract: trabecular ROI per level by a named protocol.
#include "ctbmd/app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-roi-extract",
                        "Extract the trabecular region of each vertebral body by a named protocol");
  std::string input, seg_path, seg_json, output, series;
  ctbmd::RoiParams p;
  auto& app = tool.app();
  app.add_option("input", input, "CT: NIfTI, NRRD, MetaImage file or DICOM series folder")->required();
  app.add_option("-s,--segmentation", seg_path, "segmentation.nii.gz from ctbmd-segment")->required();
  app.add_option("--segmentation-json", seg_json, "Its JSON (default: beside it, same stem)");
  app.add_option("-o,--output", output, "ROI label map to write (roi.nii.gz); roi.json goes beside it")
      ->required();
  app.add_option("--series", series, "DICOM series UID (folder with several series)");
  app.add_option("-p,--protocol", p.protocol, "ellipse-s1 | erode-4mm | mosaic-392")->capture_default_str();
  app.add_option("--min-voxels", p.min_voxels, "Fewer ROI voxels make a level unusable")
      ->capture_default_str();
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    ctbmd::checkWritable(ctbmd::roiJsonPath(output), force);
    if (seg_json.empty()) seg_json = ctbmd::segmentJsonPath(seg_path).string();
    auto scan = ctbmd::readScan(input, {series});
    auto labels = ctbmd::readLabels(seg_path, scan.image.GetPointer());
    auto seg = ctbmd::SegmentResult::fromJson(ctbmd::readJsonFile(seg_json), labels);
    auto res = ctbmd::extractRoi(scan, seg, p);
    ctbmd::saveRoi(output, res, scan, seg_path, p, force);
    for (const auto& l : res.levels)
      spdlog::info("{:>3}: mean {:.1f} HU, median {:.1f} HU, {} voxels{}", l.name, l.stats.mean_hu,
                   l.stats.median_hu, l.stats.voxels, l.usable ? "" : " (not usable)");
    return 0;
  });
}
