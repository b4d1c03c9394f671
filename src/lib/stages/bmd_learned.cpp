// bmd-estimate --method mosaic-cnn: one BMD per level from its 392x392 mosaic.
#include "bmd_learned.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "ctbmd/errors.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"

namespace ctbmd {

namespace {
struct Loaded {
  ModelCard card;
  std::unique_ptr<learned::Network> net;
};
std::mutex g_mutex;
std::map<std::string, std::shared_ptr<Loaded>> g_models;  // folder|device -> network

std::shared_ptr<Loaded> load(const std::string& folder, const std::string& device) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string key = std::filesystem::weakly_canonical(folder).string() + "|" + device;
  auto it = g_models.find(key);
  if (it != g_models.end()) return it->second;
  auto m = std::make_shared<Loaded>();
  m->card = ModelCard::load(folder, "bmd-regress");
  try {
    m->net = learned::backend().loadModel(m->card.format, m->card.weights, m->card.architecture,
                                          m->card.hyper.dump(), device);
  } catch (const std::runtime_error& e) {
    throw ProcessingError(e.what());
  }
  spdlog::info("model {} ({}) loaded on {}", m->card.name, m->card.architecture, m->net->device());
  g_models[key] = m;
  return m;
}
}  // namespace

std::map<std::string, double> predictMosaicBmd(const RoiResult& roi, const BmdParams& p, nlohmann::json& model_out) {
  if (p.model.empty()) throw UsageError("--bmd-method mosaic-cnn needs --bmd-model FOLDER");
  learned::checkDeviceName(p.device);
  if (roi.mosaics.empty())
    throw UsageError("--bmd-method mosaic-cnn needs the mosaic-392 images: run roi-extract with --protocol mosaic-392");
  auto m = load(p.model, p.device);
  model_out = m->card.provenance();
  model_out["device"] = m->net->device();
  const double level = m->card.hu_window[0], width = m->card.hu_window[1];
  std::map<std::string, double> out;
  for (const auto& [name, img] : roi.mosaics) {
    auto sz = img->GetLargestPossibleRegion().GetSize();
    learned::Tensor t;
    t.shape = {1, 1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
    const float* v = img->GetBufferPointer();
    t.data.assign(v, v + t.numel());
    if (width > 0 && m->card.normalisation == "minmax")
      for (auto& x : t.data) x = static_cast<float>(std::clamp((x - (level - width / 2)) / width, 0.0, 1.0));
    auto y = m->net->forward({t});
    if (y.empty() || y[0].data.empty()) throw ProcessingError("model " + m->card.name + " returned no value");
    out[name] = y[0].data[0];
  }
  return out;
}

}  // namespace ctbmd
