// Cropping a ROI patch out of a scan and its label map, in canonical order.
#include <algorithm>
#include <cmath>
#include <string>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/radiomics.hpp"

namespace ctbmd::radiomics {

namespace {
template <class T>
RoiImage crop(const itk::Image<T, 3>* image, const LabelImage* labels, const std::vector<int>& values,
              double margin_mm) {
  if (image->GetLargestPossibleRegion().GetSize() != labels->GetLargestPossibleRegion().GetSize())
    throw InputError("the label map's grid differs from the image's: radiomics needs the ROI on the image's grid");
  const auto img_c = toCanonicalView<T>(image, canonicalAxisMap(image));
  const auto lab_c = toCanonicalView<uint8_t>(labels, canonicalAxisMap(labels));
  const auto size = img_c->GetLargestPossibleRegion().GetSize();
  const int n[3] = {int(size[0]), int(size[1]), int(size[2])};
  const uint8_t* lab = lab_c->GetBufferPointer();
  const T* pix = img_c->GetBufferPointer();
  auto wanted = [&](uint8_t v) {
    if (v == 0) return false;
    return values.empty() || std::find(values.begin(), values.end(), int(v)) != values.end();
  };
  int lo[3] = {n[0], n[1], n[2]}, hi[3] = {-1, -1, -1};
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y)
      for (int x = 0; x < n[0]; ++x)
        if (wanted(lab[(std::size_t(z) * n[1] + y) * n[0] + x])) {
          const int c[3] = {x, y, z};
          for (int a = 0; a < 3; ++a) {
            lo[a] = std::min(lo[a], c[a]);
            hi[a] = std::max(hi[a], c[a]);
          }
        }
  if (hi[0] < 0) throw InputError("no voxel of the label map carries the requested label(s)");
  const auto sp = img_c->GetSpacing();
  RoiImage roi;
  for (int a = 0; a < 3; ++a) {
    const int m = int(std::ceil(margin_mm / sp[unsigned(a)]));
    lo[a] = std::max(0, lo[a] - m);
    hi[a] = std::min(n[a] - 1, hi[a] + m);
    roi.grid.spacing[std::size_t(a)] = sp[unsigned(a)];
  }
  roi.grid.nx = hi[0] - lo[0] + 1;
  roi.grid.ny = hi[1] - lo[1] + 1;
  roi.grid.nz = hi[2] - lo[2] + 1;
  roi.intensity.resize(roi.grid.size());
  roi.morph_mask.resize(roi.grid.size());
  for (int z = 0; z < roi.grid.nz; ++z)
    for (int y = 0; y < roi.grid.ny; ++y)
      for (int x = 0; x < roi.grid.nx; ++x) {
        const std::size_t src = (std::size_t(z + lo[2]) * n[1] + std::size_t(y + lo[1])) * n[0] + std::size_t(x + lo[0]);
        const std::size_t dst = roi.grid.index(x, y, z);
        roi.intensity[dst] = double(pix[src]);
        roi.morph_mask[dst] = wanted(lab[src]) ? 1 : 0;
      }
  roi.int_mask = roi.morph_mask;
  return roi;
}
}  // namespace

RoiImage cropRoi(const CtImage* image, const LabelImage* labels, const std::vector<int>& values, double margin_mm) {
  return crop<int16_t>(image, labels, values, margin_mm);
}
RoiImage cropRoi(const FloatImage* image, const LabelImage* labels, const std::vector<int>& values,
                 double margin_mm) {
  return crop<float>(image, labels, values, margin_mm);
}

}  // namespace ctbmd::radiomics
