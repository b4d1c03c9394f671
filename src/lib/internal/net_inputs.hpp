#pragma once
// Network inputs cut from a canonical (LPS-ordered) CT, shared by training (ctbmd-train) and
// inference (the learned stages), so both see exactly the same sampling and normalisation.
// Coordinates are in the canonical frame (spine::Volume: origin + index * spacing, mm).
#include <array>
#include <cstdint>
#include <vector>

#include "ctbmd/model_card.hpp"
#include "internal/spine.hpp"

namespace ctbmd::netin {

struct PatchSpec {
  double spacing_mm = 1.0;      // isotropic sampling of the patch
  std::vector<int> size;        // network order: (H, W) for 2-D, (D, H, W) for 3-D
  double level = 0, width = 0;  // HU window (width 0: none)
  std::string normalisation = "minmax";
  float normalise(float hu) const;
};

/// The card's input contract as a patch spec (spacing: the first finite entry of spacing_mm).
PatchSpec specOf(const ModelCard& card, size_t dims);
/// Only the card's HU window and normalisation (for inputs that are already cut to size).
PatchSpec windowOf(const ModelCard& card);
/// Applies the card's window and normalisation to HU values in place.
void normalise(const ModelCard& card, std::vector<float>& values);

/// Axial 2-D patch of slice k centred at (cx, cy): out[H * W], bilinear, normalised. Outside
/// the image: -1024 HU.
void axialPatch(const spine::Volume& v, int k, double cx, double cy, const PatchSpec& s, float* out);
/// The same sampling of a label map (nearest neighbour), as float labels; `map` turns a label
/// into the training class.
void axialLabels(const uint8_t* lab, const spine::Volume& v, int k, double cx, double cy, const PatchSpec& s,
                 const std::array<uint8_t, 256>& map, float* out);
/// 3-D patch centred at (cx, cy, cz): out[D * H * W] (D along superior), trilinear, normalised.
void volumePatch(const spine::Volume& v, double cx, double cy, double cz, const PatchSpec& s, float* out);
void volumeLabels(const uint8_t* lab, const spine::Volume& v, double cx, double cy, double cz,
                  const PatchSpec& s, const std::array<uint8_t, 256>& map, float* out);

/// Frontal (coronal) and sagittal maximum-intensity projections of the scan, resampled to
/// rows x cols: out[2 * rows * cols]; rows run from the top of the field (z_top mm, canonical
/// frame) downward by row_mm; columns span the whole field width. Normalised by the spec's
/// window.
void mipPair(const spine::Volume& v, double z_top, double row_mm, int rows, int cols, const PatchSpec& s,
             float* out);

/// Label class map for vertebral bodies: every vertebral-body label (1-25, 28) -> 1, else 0.
std::array<uint8_t, 256> bodyClassMap();

}  // namespace ctbmd::netin
