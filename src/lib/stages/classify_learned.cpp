// classify --rule bccnet: BCC-Net (a small DenseNet) on the mosaic-392 images of the levels the
// L1-L2 average uses; softmax probabilities averaged over those levels, category = the most
// probable class.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "ctbmd/errors.hpp"
#include "ctbmd/stages.hpp"
#include "internal/model_cache.hpp"
#include "internal/net_inputs.hpp"

namespace ctbmd {

ClassifyResult classifyLearned(const BmdResult& bmd, const ClassifyParams& p, const RoiResult* roi) {
  if (p.model.empty()) throw UsageError("rule bccnet needs --classify-model FOLDER (task classify)");
  if (!roi || roi->mosaics.empty())
    throw UsageError(
        "rule bccnet reads the mosaic-392 images: run roi-extract with --protocol mosaic-392 and give "
        "its roi.json (--roi)");
  auto m = loadModelCached(p.model, "classify", p.device, "--classify-model");
  ClassifyResult r;
  r.rule = "bccnet";
  r.uncalibrated = false;  // works on HU images, no calibration involved
  r.details = classifyRules()["bccnet"];
  r.details["model"] = m->card.provenance();
  r.details["model"]["device"] = m->net->device();
  const auto& names = m->card.labels;
  if (names.size() < 2)
    throw InputError("model " + m->card.name + ": its card lists fewer than two class labels");
  std::vector<std::string> used;
  std::vector<double> mean(names.size(), 0.0);
  nlohmann::json per_level = nlohmann::json::object();
  for (const auto& name : bmd.levels_used) {
    auto it = std::find_if(roi->mosaics.begin(), roi->mosaics.end(),
                           [&](const auto& mm) { return mm.first == name; });
    if (it == roi->mosaics.end()) continue;
    auto sz = it->second->GetLargestPossibleRegion().GetSize();
    learned::Tensor t;
    t.shape = {1, 1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
    const float* v = it->second->GetBufferPointer();
    t.data.assign(v, v + t.numel());
    netin::normalise(m->card, t.data);
    auto y = forwardChunked(*m, t, 1);
    if (y.data.size() != names.size())
      throw ProcessingError("model " + m->card.name + " gave " + std::to_string(y.data.size()) +
                            " outputs for " + std::to_string(names.size()) + " class labels");
    double mx = *std::max_element(y.data.begin(), y.data.end()), den = 0;
    std::vector<double> pr(names.size());
    for (size_t i = 0; i < pr.size(); ++i) den += pr[i] = std::exp(y.data[i] - mx);
    nlohmann::json pl = nlohmann::json::object();
    for (size_t i = 0; i < pr.size(); ++i) {
      pr[i] /= den;
      mean[i] += pr[i];
      pl[names[i]] = pr[i];
    }
    per_level[name] = pl;
    used.push_back(name);
  }
  r.inputs = {{"levels_used", used}, {"levels_reason", bmd.levels_reason}, {"per_level", per_level}};
  if (used.empty()) {
    r.category = "unavailable";
    r.details["reason"] = "no usable L1/L2 (or T12 substitute) level with a mosaic";
    return r;
  }
  size_t best = 0;
  for (size_t i = 0; i < mean.size(); ++i) {
    mean[i] /= static_cast<double>(used.size());
    r.probabilities[names[i]] = mean[i];
    if (mean[i] > mean[best]) best = i;
  }
  r.category = names[best];
  return r;
}

}  // namespace ctbmd
