#pragma once
// Small, fast 2-D raster helpers on row-major buffers (internal to the library):
// exact Euclidean distance transform with anisotropic pixels, disk morphology built on
// it, hole filling, connected components and binomial smoothing.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ctbmd::r2 {

struct Grid2 {
  int nx = 0, ny = 0;
  double sx = 1, sy = 1;  // mm per pixel
  std::size_t size() const { return static_cast<size_t>(nx) * ny; }
};

/// Squared distance (mm^2) from each pixel to the nearest pixel where mask == 0
/// (i.e. inside distances for a foreground mask). Pixels with mask == 0 get 0.
std::vector<float> edtSquared(const Grid2& g, const std::vector<uint8_t>& mask);

std::vector<uint8_t> erode(const Grid2& g, const std::vector<uint8_t>& m, double r_mm);
std::vector<uint8_t> dilate(const Grid2& g, const std::vector<uint8_t>& m, double r_mm);
inline std::vector<uint8_t> open(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  return dilate(g, erode(g, m, r), r);
}
inline std::vector<uint8_t> close(const Grid2& g, const std::vector<uint8_t>& m, double r) {
  return erode(g, dilate(g, m, r), r);
}

/// Labels 4-connected components of mask != 0; returns label per pixel (0 = background)
/// and fills `areas` (pixel counts, index = label).
std::vector<int> components(const Grid2& g, const std::vector<uint8_t>& mask, std::vector<long>& areas);

/// Background regions not touching the border whose area (mm^2) lies in
/// [min_area_mm2, max_area_mm2] are set to 1 (max_area_mm2 < 0: no upper bound).
std::vector<uint8_t> fillHoles(const Grid2& g, const std::vector<uint8_t>& mask, double max_area_mm2 = -1,
                               double min_area_mm2 = 0);

/// In-place [1 2 1]/4 separable blur, `passes` times.
void binomialBlur(const Grid2& g, std::vector<float>& v, int passes);

}  // namespace ctbmd::r2
