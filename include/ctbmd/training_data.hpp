#pragma once
// Training samples for the learned stages, cut from VerSe-layout cases with the same sampling
// code the stages use at inference (so a model sees at run time what it saw in training).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "ctbmd/dataset.hpp"
#include "ctbmd/learned.hpp"

namespace ctbmd::training {

struct Samples {
  std::vector<learned::Tensor> images, targets;
  std::vector<std::string> cases;  // subject key of each sample
};

struct SegmentSampling {
  std::string arch = "unet2d";  // unet2d: axial 2-D patches; dense-unet3d: 3-D patches
  double spacing_mm = 1.25;
  std::vector<int> patch{64, 64};   // (H, W) or (D, H, W)
  double level = 150, width = 700;  // HU window, min-max normalised
  double slice_step_mm = 2.0;       // unet2d: one slice every this many mm
  double jitter_mm = 4.0;           // random offset of the patch centre from the spine centre
  int per_body = 3;                 // dense-unet3d: patches per body and per disc
  uint64_t seed = 1;
};

/// Body-vs-background samples (targets: 0/1 per pixel or voxel) from one case, between the top
/// of T12 and the bottom of L5 (±1 cm), centred on the spine as the bodies' centroids give it.
void addSegmentSamples(const VerseCase& c, const SegmentSampling& s, Samples& out);

struct MipSampling {
  int stage = 1;  // 1: L1 top from the whole scan; 2: L1-L4 centres from a window
  int rows = 128, cols = 64;
  double row_mm = 4.0;
  double window_above_mm = 20;  // stage 2: window starts this far above L1's top
  double jitter_mm = 10;        // stage 2: error of stage 1 simulated in training
  int per_case = 1;             // samples per case (stage 1: other coverages, stage 2: windows)
  double crop_mm = 60;          // stage 1: the scan's top cut by up to this much for the extra samples
  double level = 400, width = 1200;
  uint64_t seed = 1;
};

/// The MIP localizer's samples from one case (targets: stage 1 [1] = mm from the scan's top
/// edge to L1's top; stage 2 [12] = per L1..L4: mm below the window top, then x and y in per cent
/// of the field's width from its right/anterior edge). Cases without L1-L4 add nothing (returns false).
bool addMipSamples(const VerseCase& c, const MipSampling& s, Samples& out);

}  // namespace ctbmd::training
