#pragma once
// Digital QCT phantom: a synthetic abdominal CT with exact ground truth (see README).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/image.hpp"

namespace ctbmd {

/// Label numbers in the phantom's truth map (uint8):
///   VerSe number (19 T12, 20 L1, ..., 25 L6, 28 T13) = vertebral body; 26 = sacrum;
///   100 + VerSe number = posterior elements of that vertebra;
///   160 + VerSe number = rib attached to that vertebra;
///   200 + VerSe number = intervertebral disc below that vertebra;
///   230 = ilium; 240 = calibration phantom housing; 241.. = calibration rods; 250 = metal.
namespace phantom_labels {
inline constexpr int kPosteriorOffset = 100, kRibOffset = 160, kDiscOffset = 200, kIlium = 230,
                     kHousing = 240, kRodFirst = 241, kMetal = 250;
}

struct PhantomParams {
  int nx = 512, ny = 512;
  int nz = 0;             // 0: as many slices as the covered levels need
  double pixel_mm = 0.8;  // in-plane spacing, 0.5-1.0
  double slice_mm = 1.0;  // slice thickness = spacing, 0.625-5
  std::string orientation = "LPS";
  std::string top = "T11", bottom = "S1";  // covered levels (with nz: centre of the field)
  uint64_t seed = 1;
  std::string population = "random";  // normal, osteopenia, osteoporosis, cohort, random
  std::map<std::string, double> bmd;  // per level override, mg/cm3 (e.g. {"L1", 95})
  double cal_intercept_hu = -5.0;     // scanner calibration HU = a + b * BMD(HA)
  double cal_slope_hu = 1.25;
  double noise_sd = 15.0;    // HU
  double texture_sd = 20.0;  // HU, trabecular texture amplitude
  // "uniform": one texture for every density. "density": a stylised loss of trabecular
  // microarchitecture with density (thinner, sparser trabeculae: bone loss widens the spacing and
  // raises the marrow-bone contrast): a level of BMD b has its texture's length scale and
  // amplitude times clamp(1 + (150 - b) / 150, 0.6, 2) (1 at 150 mg/cm3, 1.5 at 75, 2 at 0) —
  // for radiomics cohorts whose texture must change with density (issue 19). Not bone.
  std::string texture_model = "uniform";
  int rib_pairs = 12;                  // 11, 12 or 13 (13: an extra rib-bearing T13)
  bool lumbar6 = false;                // lumbosacral transitional vertebra: six lumbar
  double lumbar_rib_mm = 0;            // > 0: a rib pair of this length on L1 (13 pairs, 12 thoracic)
  std::string fracture_level;          // e.g. "L2"
  double fracture_height_loss = 0.35;  // anterior height loss fraction
  std::string metal_level;             // pedicle screws in this level
  std::string contrast = "none";       // none, arterial, portal-venous
  std::vector<double> rods;            // calibration rod densities, mg/cm3 HA
  bool rotations = true;               // small random axial rotations and lordosis jitter
};

struct PhantomResult {
  CtImage::Pointer ct;
  LabelImage::Pointer labels;
  nlohmann::json truth;
};

PhantomResult makePhantom(const PhantomParams& p);

}  // namespace ctbmd
