// ctbmd-radiomics: IBSI 1 radiomics features of the ROIs of a label map.
#include "ctbmd/radiomics.hpp"

#include <cmath>

#include "app_common.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-radiomics",
      "Radiomics features (IBSI 1: morphology, local intensity, statistics, histograms, GLCM, GLRLM, "
      "GLSZM, GLDZM, NGTDM, NGLDM in 2D/2.5D/3D aggregations) of each ROI of a label map on the CT's grid; "
      "one CSV row per ROI, columns named by IBSI feature tags");
  namespace rad = ctbmd::radiomics;
  std::string input, mask, output, series, discretisation = "fixed-bin-size";
  rad::RoiRequest req;
  rad::FeatureConfig cfg;
  rad::Settings& s = cfg.settings;
  std::string config_path;
  double reseg_min = NAN, reseg_max = NAN;
  auto& app = tool.app();
  app.add_option("input", input, "CT: NIfTI, NRRD, MetaImage file or DICOM series folder")->required();
  app.add_option("-m,--labels-image", mask,
                 "Label map on the CT's grid (segmentation.nii.gz, roi.nii.gz, any mask)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("-o,--output", output, "features.csv to write; features.json goes beside it")->required();
  app.add_option("-l,--label", req.labels, "Label value(s) to compute, e.g. -l 20,21 (default: every label)")
      ->delimiter(',')
      ->check(CLI::Range(1, 255));
  app.add_flag("--merge", req.merged, "One ROI of all the labels together instead of one per label");
  app.add_flag("--verse-names", req.verse_names, "Name ROIs by VerSe numbering (20 = L1) in the roi column");
  app.add_option("--case-id", req.case_id,
                 "Case id for the table's first column (default: the CT's file stem)");
  app.add_option("--series", series, "DICOM series UID (folder with several series)");
  app.add_option("--discretisation", discretisation, "Grey-level discretisation (IBSI 2.5)")
      ->check(ctbmd::cli::oneOf({"fixed-bin-size", "fixed-bin-number", "none"}))
      ->capture_default_str();
  app.add_option("--bin-width", s.bin_width, "Bin width for fixed-bin-size, HU")
      ->check(CLI::Range(0.001, 10000.0))
      ->capture_default_str();
  app.add_option("--bin-count", s.bin_count, "Bin count for fixed-bin-number")
      ->check(CLI::Range(2, 4096))
      ->capture_default_str();
  app.add_option("--reseg-min", reseg_min,
                 "Re-segmentation lower bound, HU (voxels below leave the intensity mask)");
  app.add_option("--reseg-max", reseg_max, "Re-segmentation upper bound, HU");
  app.add_option("--outlier-sigma", s.outlier_sigma,
                 "Outlier filter: drop voxels beyond mean +/- n SD after re-segmentation (0 = off)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--config", config_path,
                 "Feature-set file (JSON, schema ctbmd.radiomics-config): images (original, LoG, wavelet "
                 "sub-bands), families, aggregations and processing; replaces the processing options below")
      ->check(CLI::ExistingFile);
  std::vector<double> voxel;
  std::string interpolation = "trilinear", write_roi;
  app.add_option(
         "--voxel-size", voxel,
         "Interpolate to this voxel size first (IBSI 2.3), mm: one value (isotropic) or x,y,z; 0 keeps an "
         "axis (2,2,0: in-plane only, as IBSI's 2-D configurations)")
      ->delimiter(',')
      ->expected(1, 3)
      ->check(CLI::Range(0.0, 50.0));
  app.add_option("--interpolation", interpolation, "Image interpolation for --voxel-size")
      ->check(ctbmd::cli::oneOf({"trilinear", "bspline", "nearest"}))
      ->capture_default_str();
  app.add_option("--mask-threshold", s.resampling.mask_threshold,
                 "Partial-volume threshold of the trilinearly interpolated mask")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  bool no_round = false;
  app.add_flag("--no-round", no_round,
               "Keep interpolated intensities as they are (default: rounded to integer HU)");
  app.add_option(
      "--write-roi-images", write_roi,
      "Also write the preprocessed patch of each ROI: PREFIX<roi>_image.nii.gz and PREFIX<roi>_mask.nii.gz "
      "(1 morphological mask, 2 also intensity mask)");
  return tool.main(argc, argv, [&] {
    if (!config_path.empty()) {
      for (const char* o :
           {"--discretisation", "--bin-width", "--bin-count", "--reseg-min", "--reseg-max", "--outlier-sigma",
            "--voxel-size", "--interpolation", "--mask-threshold", "--no-round"})
        if (app.count(o))
          throw ctbmd::UsageError(std::string(o) + " cannot be combined with --config: set it in the file");
      cfg = rad::loadFeatureConfig(config_path);
    }
    if (voxel.size() == 1) voxel = {voxel[0], voxel[0], voxel[0]};
    if (voxel.size() == 2) throw ctbmd::UsageError("--voxel-size takes one value or three (x,y,z)");
    if (config_path.empty()) {
      if (voxel.size() == 3) s.resampling.voxel_mm = {voxel[0], voxel[1], voxel[2]};
      s.resampling.image = rad::interpolationFromString(interpolation);
      s.resampling.round_intensities = !no_round;
    }
    if (config_path.empty()) {
      s.discretisation = rad::discretisationFromString(discretisation);
      s.reseg_min = reseg_min;
      s.reseg_max = reseg_max;
      cfg.filtered_settings = s;  // response maps: the same discretisation, no re-segmentation range
      cfg.filtered_settings.reseg_min = cfg.filtered_settings.reseg_max = NAN;
      cfg.filtered_settings.outlier_sigma = 0;
    }
    if (!std::isnan(reseg_min) && !std::isnan(reseg_max) && reseg_min >= reseg_max)
      throw ctbmd::UsageError("--reseg-min must be below --reseg-max");
    const bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    ctbmd::checkWritable(rad::featuresJsonPath(output), force);
    auto scan = ctbmd::readScan(input, {series});
    if (req.case_id.empty()) req.case_id = ctbmd::imageStem(scan.info.path);
    auto labels = ctbmd::readLabels(mask, scan.image.GetPointer());
    std::vector<rad::FeatureRow> rows;
    try {
      rows = rad::extractFeatures(scan.image.GetPointer(), labels.GetPointer(), req, cfg);
    } catch (const ctbmd::InputError& e) {
      throw ctbmd::InputError("case '" + req.case_id + "' (CT '" + input + "', labels '" + mask +
                              "'): " + e.what());
    }
    rad::saveFeatures(output, rows, scan, mask, req, cfg, force);
    if (!write_roi.empty())
      for (const auto& r : rows) {
        const std::vector<int> ls = r.label ? std::vector<int>{r.label} : req.labels;
        const auto roi = rad::cropRoi(scan.image.GetPointer(), labels.GetPointer(), ls, s.resampling);
        auto patch = roi;
        rad::resegment(patch, s);
        rad::writeRoiImages(patch, write_roi + r.roi + "_image.nii.gz", write_roi + r.roi + "_mask.nii.gz",
                            force);
      }
    for (const auto& r : rows) spdlog::info("{}: {} voxels, {} features", r.roi, r.voxels, r.features.size());
    return 0;
  });
}
