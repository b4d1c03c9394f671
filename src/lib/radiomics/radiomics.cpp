// The feature families in IBSI's order (reference manual chapter 3).
#include "ctbmd/radiomics.hpp"

#include <algorithm>

namespace ctbmd::radiomics {

std::size_t moranStride(std::size_t voxels, const Settings& s) {
  const std::size_t cap = std::max<std::size_t>(2, s.moran_max_voxels);
  return std::max<std::size_t>(1, (voxels + cap - 1) / cap);
}

FeatureList computeAll(const RoiImage& input, const Settings& s, const std::vector<std::string>* families) {
  auto on = [&](const char* f) {
    return families == nullptr || std::find(families->begin(), families->end(), f) != families->end();
  };
  RoiImage roi = input;
  resegment(roi, s);
  const LevelImage levels = discretise(roi, s);  // first: it refuses unusable settings
  FeatureList out;
  auto append = [&](FeatureList f) { out.insert(out.end(), f.begin(), f.end()); };
  if (on("morph")) append(morphologyFeatures(roi, s));
  if (on("loc")) append(localIntensityFeatures(roi));
  if (on("stat")) append(statisticsFeatures(roi));
  if (on("ih")) append(histogramFeatures(levels));
  if (on("ivh")) append(ivhFeatures(s.ivh.own ? ivhLevels(roi, s) : levels));
  if (on("cm")) append(glcmFeatures(levels));
  if (on("rlm")) append(glrlmFeatures(levels));
  if (on("szm")) append(glszmFeatures(levels));
  if (on("dzm")) append(gldzmFeatures(levels));
  if (on("ngt")) append(ngtdmFeatures(levels));
  if (on("ngl")) append(ngldmFeatures(levels));
  return out;
}

}  // namespace ctbmd::radiomics
