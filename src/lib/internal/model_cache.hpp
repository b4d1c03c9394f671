#pragma once
// Model folders loaded once per process and device (a batch run reuses them).
#include <memory>
#include <string>

#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"

namespace ctbmd {

struct LoadedModel {
  ModelCard card;
  std::unique_ptr<learned::Network> net;
};

/// Loads (once) the model in `folder` for `task` on `device`; throws UsageError when folder
/// is empty (`option` names the option to give), InputError for a bad card, ProcessingError
/// when the network cannot be loaded.
std::shared_ptr<LoadedModel> loadModelCached(const std::string& folder, const std::string& task,
                                             const std::string& device, const std::string& option);

/// Runs the network on a batch [N, ...] split into chunks of at most `chunk` samples; returns
/// the concatenated first output.
learned::Tensor forwardChunked(LoadedModel& m, const learned::Tensor& batch, int chunk);

}  // namespace ctbmd
