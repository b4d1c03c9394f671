// bmd-estimate --method mosaic-cnn: one BMD per level from its 392x392 mosaic.
#include "bmd_learned.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "ctbmd/errors.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"
#include "internal/model_cache.hpp"
#include "internal/net_inputs.hpp"

namespace ctbmd {

namespace {
std::map<std::string, double> predictCrops(const RoiResult& roi, const BmdParams& p,
                                           nlohmann::json& model_out) {
  if (roi.crops3d.empty())
    throw UsageError("--bmd-method densenet3d needs the 3-D body crops: run roi-extract with --crop3d");
  auto m = loadModelCached(p.model, "bmd-regress", p.device, "--bmd-model");
  model_out = m->card.provenance();
  model_out["device"] = m->net->device();
  std::map<std::string, double> out;
  for (const auto& [name, img] : roi.crops3d) {
    auto sz = img->GetLargestPossibleRegion().GetSize();
    std::vector<int64_t> want(m->card.patch.begin(), m->card.patch.end());
    std::vector<int64_t> have = {static_cast<int64_t>(sz[2]), static_cast<int64_t>(sz[1]),
                                 static_cast<int64_t>(sz[0])};
    if (!want.empty() && want != have)
      throw InputError("the 3-D crops are " + std::to_string(have[0]) + "x" + std::to_string(have[1]) + "x" +
                       std::to_string(have[2]) + " but model " + m->card.name +
                       " expects its card's input.patch; cut them with roi-extract --crop3d-size to match");
    learned::Tensor t;
    t.shape = {1, 1, have[0], have[1], have[2]};
    const float* v = img->GetBufferPointer();
    t.data.assign(v, v + t.numel());
    netin::normalise(m->card, t.data);
    auto y = forwardChunked(*m, t, 1);
    if (y.data.empty()) throw ProcessingError("model " + m->card.name + " returned no value");
    out[name] = y.data[0];
  }
  return out;
}
}  // namespace

std::map<std::string, double> predictLearnedBmd(const RoiResult& roi, const BmdParams& p,
                                                nlohmann::json& model_out) {
  if (p.model.empty()) throw UsageError("--bmd-method " + p.method + " needs --bmd-model FOLDER");
  if (p.method == "densenet3d") return predictCrops(roi, p, model_out);
  if (roi.mosaics.empty())
    throw UsageError(
        "--bmd-method mosaic-cnn needs the mosaic-392 images: run roi-extract with --protocol mosaic-392");
  auto m = loadModelCached(p.model, "bmd-regress", p.device, "--bmd-model");
  model_out = m->card.provenance();
  model_out["device"] = m->net->device();
  std::map<std::string, double> out;
  for (const auto& [name, img] : roi.mosaics) {
    auto sz = img->GetLargestPossibleRegion().GetSize();
    learned::Tensor t;
    t.shape = {1, 1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
    const float* v = img->GetBufferPointer();
    t.data.assign(v, v + t.numel());
    netin::normalise(m->card, t.data);
    auto y = m->net->forward({t});
    if (y.empty() || y[0].data.empty()) throw ProcessingError("model " + m->card.name + " returned no value");
    out[name] = y[0].data[0];
  }
  return out;
}

}  // namespace ctbmd
