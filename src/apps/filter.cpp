// ctbmd-filter: IBSI 2 filter response maps (Laplacian of Gaussian, undecimated wavelets) of an
// image, on its own grid, for checking the filters radiomics computes features on.
#include <cmath>

#include "app_common.hpp"
#include "ctbmd/radiomics.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-filter",
      "Filter response maps as IBSI 2 defines them, on the image's own grid (float NIfTI): "
      "Laplacian of Gaussian (sigma in mm) or the eight sub-bands of an undecimated separable "
      "wavelet (axes in LPS order: LLH = low-pass x and y, high-pass z)");
  namespace rad = ctbmd::radiomics;
  std::string input, output, wavelet, subband, boundary = "mirror";
  double sigma = 0, truncate = 4.0;
  int level = 1;
  auto& app = tool.app();
  app.add_option("input", input, "Image: NIfTI, NRRD or MetaImage file")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option(
         "-o,--output", output,
         "Response map to write (.nii.gz); for all eight wavelet sub-bands, the sub-band's name is put "
         "before the extension (out_LLH.nii.gz)")
      ->required();
  auto* log_opt = app.add_option("--log", sigma, "Laplacian of Gaussian with this sigma, mm")
                      ->check(CLI::Range(0.01, 100.0));
  app.add_option("--truncate", truncate, "LoG kernel radius in sigmas (IBSI 2: 4)")
      ->check(CLI::Range(1.0, 10.0))
      ->capture_default_str();
  auto* wav_opt = app.add_option("--wavelet", wavelet, "Undecimated wavelet (pywt names)")
                      ->check(ctbmd::cli::oneOf(rad::waveletNames()));
  app.add_option("--level", level, "Wavelet decomposition level")
      ->check(CLI::Range(1, 4))
      ->capture_default_str();
  app.add_option("--subband", subband, "One sub-band (e.g. LLH; default: all eight)")
      ->check(ctbmd::cli::oneOf({"LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"}));
  app.add_option("--boundary", boundary, "Padding beyond the image edge")
      ->check(ctbmd::cli::oneOf({"mirror", "nearest", "zero", "periodic"}))
      ->capture_default_str();
  log_opt->excludes(wav_opt);
  return tool.main(argc, argv, [&] {
    if (sigma <= 0 && wavelet.empty()) throw ctbmd::UsageError("give --log SIGMA or --wavelet NAME");
    const bool force = tool.common().force;
    const auto b = rad::boundaryFromString(boundary);
    auto bandPath = [&](const std::string& band) {
      if (wavelet.empty() || !subband.empty()) return std::filesystem::path(output);
      const std::filesystem::path p(output);
      const std::string stem = ctbmd::imageStem(p);
      const std::string ext = p.filename().string().substr(stem.size());
      return p.parent_path() / (stem + "_" + band + ext);
    };
    if (wavelet.empty() || !subband.empty()) {
      ctbmd::checkWritable(bandPath(subband), force);
    } else {
      for (const char* band : {"LLL", "LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"})
        ctbmd::checkWritable(bandPath(band), force);
    }
    const auto img = ctbmd::readFloatImage(input);
    const rad::Volume vol = rad::toVolume(img.GetPointer());
    if (!wavelet.empty()) {
      for (const auto& [band, resp] : rad::waveletSubbands(vol, wavelet, level, b)) {
        if (!subband.empty() && band != subband) continue;
        ctbmd::writeImage(rad::fromVolume(resp, img.GetPointer()).GetPointer(), bandPath(band), force);
      }
    } else {
      const auto resp = rad::laplacianOfGaussian(vol, sigma, truncate, b);
      ctbmd::writeImage(rad::fromVolume(resp, img.GetPointer()).GetPointer(), output, force);
    }
    return 0;
  });
}
