#pragma once
// Radiomics features to the Image Biomarker Standardisation Initiative (IBSI 1, reference
// manual v11, arXiv:1612.07003): morphology, local intensity, intensity statistics, intensity
// histogram, intensity-volume histogram, and the texture matrices GLCM, GLRLM, GLSZM, GLDZM,
// NGTDM and NGLDM with IBSI's 2-D, 2.5-D and 3-D aggregation variants. Feature names are IBSI's
// submission tags (e.g. `cm_joint_max_3D_avg`); docs/radiomics.md lists them with their units.
//
// The feature functions are pure: they take a patch of image already interpolated, re-segmented
// and discretised (preprocess() does that in IBSI's order) and return named values. Slices for
// the 2-D and 2.5-D variants are the patch's z planes (axial for an LPS-ordered CT).
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/image.hpp"

namespace ctbmd::radiomics {

// A box of voxels, x fastest. Spacing in mm.
struct Grid {
  int nx = 0, ny = 0, nz = 0;
  std::array<double, 3> spacing{1.0, 1.0, 1.0};
  std::size_t size() const { return std::size_t(nx) * std::size_t(ny) * std::size_t(nz); }
  std::size_t index(int x, int y, int z) const {
    return (std::size_t(z) * std::size_t(ny) + std::size_t(y)) * std::size_t(nx) + std::size_t(x);
  }
  bool inside(int x, int y, int z) const { return x >= 0 && y >= 0 && z >= 0 && x < nx && y < ny && z < nz; }
};

// The image patch the features are computed on (IBSI 1 section 2: the "ROI intensity mask" may
// be smaller than the "ROI morphological mask" after re-segmentation).
struct RoiImage {
  Grid grid;
  std::vector<double> intensity;    // grid.size() values (HU), also outside the masks
  std::vector<uint8_t> morph_mask;  // 1 = in the morphological mask
  std::vector<uint8_t> int_mask;    // 1 = in the intensity mask (morph mask after re-segmentation)
  // World (LPS, mm) position of voxel (0, 0, 0) and the axes' directions (columns), for writing
  // the patch out; the features use only the grid.
  std::array<double, 3> origin{0.0, 0.0, 0.0};
  std::array<double, 9> direction{1, 0, 0, 0, 1, 0, 0, 0, 1};
};

// Discretised grey levels 1..levels inside the intensity mask, 0 outside it.
struct LevelImage {
  Grid grid;
  std::vector<int> level;
  std::vector<uint8_t> morph_mask;  // for the distance-zone matrix's distance map
  int levels = 0;                   // N_g: the number of grey levels (the matrices' size)
  // Level g stands for intensity lowest + (g - 1) * width (the bin's lower edge): the
  // intensity-volume histogram's intensities.
  double lowest = 1.0, width = 1.0;
};

struct Feature {
  std::string tag;  // IBSI submission tag
  double value = std::numeric_limits<double>::quiet_NaN();
};
using FeatureList = std::vector<Feature>;

// ---- Processing (IBSI 1 chapter 2) -------------------------------------------------------
enum class Interpolation {
  trilinear,  // IBSI configurations B-D
  bspline,    // cubic B-spline with its prefilter ("tricubic spline", IBSI configuration E; the
              // hip seed's "B-spline interpolation")
  nearest,
};
const char* toString(Interpolation i);
Interpolation interpolationFromString(const std::string& s);  // throws std::invalid_argument

// Interpolation to a set voxel size (IBSI 2.3): the new grid's centre on the image's centre
// ("align grid centres"), n_new = ceil(n s / s_new) per axis; the mask interpolated
// trilinearly and kept where >= the partial-volume threshold; values beyond the image edge
// are those of the nearest edge voxel.
struct Resampling {
  // New voxel size, mm; 0 on an axis keeps that axis (0, 0, 0: no interpolation; x, y with z 0:
  // the in-plane interpolation of IBSI's 2-D configurations).
  std::array<double, 3> voxel_mm{0.0, 0.0, 0.0};
  Interpolation image = Interpolation::trilinear;
  double mask_threshold = 0.5;    // IBSI's partial-volume threshold
  bool round_intensities = true;  // CT: interpolated HU rounded to integers (IBSI 2.3)
  bool active() const { return voxel_mm[0] > 0 || voxel_mm[1] > 0 || voxel_mm[2] > 0; }
};

enum class Discretisation {
  none,              // intensities are integer grey levels already (e.g. the IBSI digital phantom)
  fixed_bin_size,    // bins of `bin_width` HU from the lower bound (re-segmentation minimum)
  fixed_bin_number,  // `bin_count` bins spanning the ROI's intensity range
};
const char* toString(Discretisation d);
Discretisation discretisationFromString(const std::string& s);  // throws std::invalid_argument

struct Settings {
  Discretisation discretisation = Discretisation::fixed_bin_size;
  // Bin width, HU. 25 HU is the seed method's setting (issue 19, hip radiomics).
  double bin_width = 25.0;
  // Bin count for fixed_bin_number; IBSI configurations use 16 or 32.
  int bin_count = 32;
  // Re-segmentation range, HU (IBSI 2.4): voxels outside it leave the intensity mask. NaN = open.
  // For bone a lower bound of -1000 HU keeps air out of the bins of a fixed-bin-size scheme.
  double reseg_min = std::numeric_limits<double>::quiet_NaN();
  double reseg_max = std::numeric_limits<double>::quiet_NaN();
  // Outlier filtering (IBSI 2.4): drop intensity-mask voxels beyond mean +/- n sigma. 0 = off.
  double outlier_sigma = 0.0;
  Resampling resampling;
  // The intensity-volume histogram's own discretisation (IBSI's CT configurations name one: the
  // intensities themselves, bins of 2.5 HU, or 1000 bins); off: the texture's levels.
  struct Ivh {
    bool own = false;
    Discretisation method = Discretisation::none;  // none: each integer HU its own level
    double bin_width = 2.5;
    int bin_count = 1000;
  } ivh;
  // Intensity-volume histogram: discretised levels are used (IBSI 4.4 for CT with a fixed bin
  // size: the bins' lower edges) so that IVH features follow the same grid as the texture.
  // Moran's I and Geary's C are O(N^2) in the voxel count; above this many voxels they are
  // computed on a deterministic regular subsample and the output says so.
  std::size_t moran_max_voxels = 20000;
};

// The stride of the regular subsample Moran's I and Geary's C use for `voxels` voxels (1 = all).
std::size_t moranStride(std::size_t voxels, const Settings& s);

// Apply re-segmentation and outlier filtering in IBSI's order; returns the voxel count left.
std::size_t resegment(RoiImage& roi, const Settings& s);
// Discretise the intensity mask's voxels into grey levels 1..N_g (at most `max_levels`).
LevelImage discretise(const RoiImage& roi, const Settings& s, int max_levels = 1024);
// The levels the intensity-volume histogram uses (Settings::ivh), no level cap.
LevelImage ivhLevels(const RoiImage& roi, const Settings& s);

// ---- Feature families -------------------------------------------------------------------
FeatureList morphologyFeatures(const RoiImage& roi, const Settings& s);
FeatureList localIntensityFeatures(const RoiImage& roi);
FeatureList statisticsFeatures(const RoiImage& roi);
// Intensity histogram and intensity-volume histogram, on the discretised levels.
FeatureList histogramFeatures(const LevelImage& img);
FeatureList ivhFeatures(const LevelImage& img);
FeatureList glcmFeatures(const LevelImage& img);   // 6 aggregations x 25 features
FeatureList glrlmFeatures(const LevelImage& img);  // 6 aggregations x 16 features
FeatureList glszmFeatures(const LevelImage& img);  // 2D, 2.5D, 3D x 16 features
FeatureList gldzmFeatures(const LevelImage& img);  // 2D, 2.5D, 3D x 16 features
FeatureList ngtdmFeatures(const LevelImage& img);  // 2D, 2.5D, 3D x 5 features
FeatureList ngldmFeatures(const LevelImage& img);  // 2D, 2.5D, 3D x 17 features

// Every family above in IBSI's order, after resegment() and discretise() on a copy of `roi`.
// `families` (prefixes as FeatureConfig::families; null = all) limits what is computed.
FeatureList computeAll(const RoiImage& roi, const Settings& s,
                       const std::vector<std::string>* families = nullptr);

}  // namespace ctbmd::radiomics

namespace ctbmd::radiomics {

// ---- From the chain's images -------------------------------------------------------------
// The patch of `image` around the voxels of `labels` whose value is one of `values` (any
// non-zero value when `values` is empty), in canonical LPS order (z = axial slices), with
// `margin_mm` of surrounding image kept for the local-intensity sphere (IBSI 3.2 uses the
// voxels around the ROI too), interpolated as `r` says (IBSI 2.3) on the whole image's
// aligned grid. Both masks are set from the labels. Throws InputError when the grids differ or
// no voxel carries a requested label.
RoiImage cropRoi(const CtImage* image, const LabelImage* labels, const std::vector<int>& values,
                 const Resampling& r = {}, double margin_mm = 7.0);
RoiImage cropRoi(const FloatImage* image, const LabelImage* labels, const std::vector<int>& values,
                 const Resampling& r = {}, double margin_mm = 7.0);
// Writes the patch's intensities (float) and its masks (label 1 morphological mask voxels,
// 2 where they also are in the intensity mask) as NIfTI, for checking the preprocessing.
void writeRoiImages(const RoiImage& roi, const std::filesystem::path& image_path,
                    const std::filesystem::path& mask_path, bool force);

}  // namespace ctbmd::radiomics

// ---- Convolutional filters (IBSI 2) --------------------------------------------------------
namespace ctbmd::radiomics {

// How a filter sees beyond the volume's edge (IBSI 2 padding names).
enum class Boundary {
  mirror,    // symmetric about the edge, the edge voxel repeated (d c b a | a b c d); scipy "reflect"
  nearest,   // the edge voxel repeated (a a a | a b c d)
  zero,      // zeros
  periodic,  // wrapped (the stationary wavelet transform's own; pywt.swtn)
};
const char* toString(Boundary b);
Boundary boundaryFromString(const std::string& s);  // throws std::invalid_argument

struct Volume {
  Grid grid;
  std::vector<double> v;
};

// Laplacian of Gaussian with sigma in mm, per axis sigma / spacing voxels, each axis' second
// derivative of a sampled Gaussian normalised to unit sum (as scipy.ndimage.gaussian_laplace),
// truncated at `truncate` sigma (IBSI 2: 4), in HU / mm^2.
Volume laplacianOfGaussian(const Volume& in, double sigma_mm, double truncate = 4.0,
                           Boundary b = Boundary::mirror);

// The wavelets offered, by pywt name: haar, db2, db3, db4, sym2, sym3, sym4, coif1, coif2.
const std::vector<std::string>& waveletNames();
// Undecimated separable wavelet decomposition (IBSI 2; pywt.swtn's stationary transform): the
// eight sub-bands of `level` (1 or more, filters dilated a trous), named by the filter along x, y,
// z ("LLH" = low-pass x and y, high-pass z). Sub-band output n = sum_j f[j] x[n + F/2 - j] with F
// the dilated filter's length, as pywt; `level` > 1 decomposes the previous level's LLL.
std::vector<std::pair<std::string, Volume>> waveletSubbands(const Volume& in, const std::string& wavelet,
                                                            int level, Boundary b = Boundary::mirror);
// Voxels of margin a filter needs around a ROI along an axis of `spacing_mm`.
int logSupportVoxels(double sigma_mm, double spacing_mm, double truncate = 4.0);
int waveletSupportVoxels(const std::string& wavelet, int level);

}  // namespace ctbmd::radiomics

// ---- Feature tables ------------------------------------------------------------------------
namespace ctbmd::radiomics {

// One ROI's features: the row of features.csv.
struct FeatureRow {
  std::string case_id;
  int label = 0;           // the label value, 0 when several labels form one ROI
  std::string roi;         // e.g. "L1" (VerSe numbering), "20", or "19+20+21"
  std::size_t voxels = 0;  // in the morphological mask
  std::size_t moran_stride = 1;
  FeatureList features;
};

// Which ROIs of a label map to compute.
struct RoiRequest {
  std::vector<int> labels;   // empty: every label present
  bool merged = false;       // their union as one ROI instead of one ROI per label
  bool verse_names = false;  // name labels by VerSe numbering (20 = "L1"), else by number
  std::string case_id;
};

// One image the features are computed on: the (interpolated) image itself or a filter's
// response map of it (IBSI 2: interpolate, filter, then the masks of the original image).
struct ImageSpec {
  enum class Kind { original, log, wavelet } kind = Kind::original;
  double sigma_mm = 0;         // log
  std::string wavelet;         // wavelet: pywt name
  int level = 1;               // wavelet decomposition level
  std::string subband;         // wavelet: "LLH" ...
  std::string prefix() const;  // column prefix: "", "log_s1.5_", "wav_coif1_l1_LLH_"
};

// A feature set: the images, the families and aggregations kept, and the processing. The
// default is the original image with every family (482 features).
struct FeatureConfig {
  std::string name = "default";
  std::vector<ImageSpec> images{ImageSpec{}};
  // Family prefixes kept (morph loc stat ih ivh cm rlm szm dzm ngt ngl); empty = all. Morphology
  // is computed on the original image only.
  std::vector<std::string> families;
  // Texture aggregations kept (2D_avg 2D_comb 2_5D_avg 2_5D_comb 3D_avg 3D_comb 2D 2_5D 3D);
  // empty = all.
  std::vector<std::string> aggregations;
  Settings settings;           // the original image
  Settings filtered_settings;  // response maps: its discretisation (no re-segmentation range)
  Boundary boundary = Boundary::mirror;
  bool keeps(const std::string& tag) const;
  std::size_t marginVoxels(const std::array<double, 3>& spacing_mm, int axis) const;
};
// A feature-set file (JSON, schema "ctbmd.radiomics-config"); every key checked, errors name
// the file and the key.
FeatureConfig loadFeatureConfig(const std::filesystem::path& path);
FeatureConfig featureConfigFromJson(const nlohmann::json& j, const std::string& where);
// The feature set as a file featureConfigFromJson() reads back to the same set (features.json
// records it; a model folder keeps it as feature_set.json).
nlohmann::json toJson(const FeatureConfig& c);

// Features of each requested label as its own ROI (or of their union). Requested labels absent
// from the map are skipped; none present is an InputError.
std::vector<FeatureRow> extractFeatures(const CtImage* image, const LabelImage* labels, const RoiRequest& req,
                                        const FeatureConfig& cfg);

// The settings as recorded in features.json and as CSV columns (IBSI's reporting items).
nlohmann::json settingsJson(const Settings& s);
nlohmann::json interpolationJson(const Resampling& r);
// features.csv: case_id, roi, label, voxels, the settings, then one column per feature tag in
// the order computeAll() gives. Written atomically; rows of different tags are refused.
void writeFeatureCsv(const std::filesystem::path& path, const std::vector<FeatureRow>& rows,
                     const FeatureConfig& cfg, bool force);

}  // namespace ctbmd::radiomics

namespace ctbmd {
struct Scan;
}
namespace ctbmd::radiomics {
// features.csv and features.json (<stem>.json beside it: schema ctbmd.radiomics, provenance of
// the CT and the label map, the feature set, one entry per ROI).
void saveFeatures(const std::filesystem::path& csv_path, const std::vector<FeatureRow>& rows,
                  const Scan& scan, const std::filesystem::path& mask_path, const RoiRequest& req,
                  const FeatureConfig& cfg, bool force);
std::filesystem::path featuresJsonPath(const std::filesystem::path& csv_path);
}  // namespace ctbmd::radiomics

namespace ctbmd::radiomics {
// The canonical (LPS-ordered) voxels of an image as a Volume, and back onto an image's grid.
Volume toVolume(const FloatImage* image);
FloatImage::Pointer fromVolume(const Volume& v, const FloatImage* grid_of);
}  // namespace ctbmd::radiomics

namespace ctbmd::radiomics {
// features.csv back as rows (features: the columns after moran_stride; an empty cell is NaN).
// InputError naming the file when it is not a ctbmd-radiomics table.
std::vector<FeatureRow> readFeatureCsv(const std::filesystem::path& path);
}  // namespace ctbmd::radiomics
