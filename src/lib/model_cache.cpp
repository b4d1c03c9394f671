// Model folders loaded once per process (see internal/model_cache.hpp).
#include "internal/model_cache.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

#include "ctbmd/errors.hpp"

namespace ctbmd {

namespace {
std::mutex g_mutex;
std::map<std::string, std::shared_ptr<LoadedModel>> g_models;  // folder|task|device -> network
}  // namespace

std::shared_ptr<LoadedModel> loadModelCached(const std::string& folder, const std::string& task,
                                             const std::string& device, const std::string& option) {
  if (folder.empty())
    throw UsageError("this method needs " + option + " FOLDER (a model folder, see models/)");
  learned::checkDeviceName(device);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string key = std::filesystem::weakly_canonical(folder).string() + "|" + task + "|" + device;
  auto it = g_models.find(key);
  if (it != g_models.end()) return it->second;
  auto m = std::make_shared<LoadedModel>();
  m->card = ModelCard::load(folder, task);
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

learned::Tensor forwardChunked(LoadedModel& m, const learned::Tensor& batch, int chunk) {
  if (batch.shape.empty() || batch.shape[0] == 0) return {};
  const int64_t n = batch.shape[0];
  const size_t per = batch.numel() / static_cast<size_t>(n);
  learned::Tensor out;
  for (int64_t i = 0; i < n; i += chunk) {
    int64_t b = std::min<int64_t>(chunk, n - i);
    learned::Tensor t;
    t.shape = batch.shape;
    t.shape[0] = b;
    t.data.assign(batch.data.begin() + static_cast<long>(i * static_cast<int64_t>(per)),
                  batch.data.begin() + static_cast<long>((i + b) * static_cast<int64_t>(per)));
    std::vector<learned::Tensor> y;
    try {
      y = m.net->forward({t});
    } catch (const std::runtime_error& e) {
      throw ProcessingError("model " + m.card.name + " failed on its input: " + e.what());
    }
    if (y.empty() || y[0].shape.empty() || y[0].shape[0] != b)
      throw ProcessingError("model " + m.card.name + " returned an output without one entry per input");
    if (out.shape.empty()) {
      out.shape = y[0].shape;
      out.shape[0] = n;
      out.data.reserve(static_cast<size_t>(n) * (y[0].numel() / static_cast<size_t>(b)));
    }
    out.data.insert(out.data.end(), y[0].data.begin(), y[0].data.end());
  }
  return out;
}

}  // namespace ctbmd
