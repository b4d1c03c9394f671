// The feature families in IBSI's order (reference manual chapter 3).
#include "ctbmd/radiomics.hpp"

#include <algorithm>

namespace ctbmd::radiomics {

std::size_t moranStride(std::size_t voxels, const Settings& s) {
  const std::size_t cap = std::max<std::size_t>(2, s.moran_max_voxels);
  return std::max<std::size_t>(1, (voxels + cap - 1) / cap);
}

FeatureList computeAll(const RoiImage& input, const Settings& s) {
  RoiImage roi = input;
  resegment(roi, s);
  const LevelImage levels = discretise(roi, s);  // first: it refuses unusable settings
  FeatureList out = morphologyFeatures(roi, s);
  auto append = [&](FeatureList f) { out.insert(out.end(), f.begin(), f.end()); };
  append(localIntensityFeatures(roi));
  append(statisticsFeatures(roi));
  append(histogramFeatures(levels));
  append(ivhFeatures(levels));
  append(glcmFeatures(levels));
  append(glrlmFeatures(levels));
  append(glszmFeatures(levels));
  append(gldzmFeatures(levels));
  append(ngtdmFeatures(levels));
  append(ngldmFeatures(levels));
  return out;
}

}  // namespace ctbmd::radiomics
