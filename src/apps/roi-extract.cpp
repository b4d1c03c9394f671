// ctbmd-roi-extract: trabecular ROI per level by a named protocol.
#include <sstream>

#include "app_common.hpp"

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
  app.add_option("-p,--protocol", p.protocol, "ellipse-s1 | erode-4mm | mosaic-392")
      ->check(ctbmd::cli::oneOf(ctbmd::methods::names(ctbmd::methods::Roi{})))
      ->capture_default_str();
  app.add_option("--min-voxels", p.min_voxels, "Fewer ROI voxels make a level unusable")
      ->capture_default_str();
  std::string crop_size;
  app.add_flag("--crop3d", p.crop3d,
               "Also write a 3-D HU crop around each body's centroid (crop3d_<level>.nii.gz), the input of "
               "bmd-estimate --bmd-method densenet3d");
  app.add_option("--crop3d-spacing", p.crop3d_spacing_mm, "Crop sampling, mm (isotropic)")
      ->capture_default_str();
  app.add_option("--crop3d-size", crop_size, "Crop size DxHxW in voxels (default 32x48x48)");
  bool no_check_inputs = false;
  app.add_flag("--no-check-inputs", no_check_inputs,
               "Use a segmentation.json whose recorded CT (sha256) is not this scan (experts only)");
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    if (!crop_size.empty()) {
      int d = 0, h = 0, w = 0;
      char x1 = 0, x2 = 0;
      std::istringstream in(crop_size);
      in >> d >> x1 >> h >> x2 >> w;
      if (!in || x1 != 'x' || x2 != 'x' || d <= 0 || h <= 0 || w <= 0 || d > 512 || h > 512 || w > 512)
        throw ctbmd::UsageError("--crop3d-size must look like 32x48x48");
      p.crop3d_size = {d, h, w};
    }
    ctbmd::checkWritable(output, force);
    ctbmd::checkWritable(ctbmd::roiJsonPath(output), force);
    if (seg_json.empty()) seg_json = ctbmd::segmentJsonPath(seg_path).string();
    const auto seg_j = ctbmd::readJsonFile(seg_json);
    ctbmd::checkStageFile(seg_j, seg_json, "ctbmd.segment", 1, "", "");  // before the CT is read
    auto scan = ctbmd::readScan(input, {series});
    ctbmd::checkStageFile(seg_j, seg_json, "ctbmd.segment", 1, no_check_inputs ? "" : scan.info.sha256,
                          input);
    auto labels = ctbmd::readLabels(seg_path, scan.image.GetPointer());
    auto seg = ctbmd::SegmentResult::fromJson(seg_j, labels);
    auto res = ctbmd::extractRoi(scan, seg, p);
    ctbmd::saveRoi(output, res, scan, seg_path, p, force);
    for (const auto& l : res.levels)
      spdlog::info("{:>3}: mean {:.1f} HU, median {:.1f} HU, {} voxels{}", l.name, l.stats.mean_hu,
                   l.stats.median_hu, l.stats.voxels, l.usable ? "" : " (not usable)");
    return 0;
  });
}
