#pragma once
// The model-folder contract (models/<name>/model.json + weights), read through one typed
// loader. Needs no LibTorch: a card is checked (fields, task, weights sha256) before any
// network is loaded.
#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ctbmd {

struct ModelCard {
  std::filesystem::path folder;
  std::string name;
  std::string task;          // localize | segment | bmd-regress | classify
  std::string architecture;  // e.g. unet2d, dense-unet3d, densenet121bc-3d, mosaic-cnn, bccnet, mip-localizer
  nlohmann::json hyper = nlohmann::json::object();  // the architecture's hyper-parameters
  std::string format;                               // torchscript | ctbmd-state
  std::filesystem::path weights;                    // absolute path of the weights file
  std::string weights_sha256;
  // Input contract.
  std::optional<std::array<double, 3>> spacing_mm;     // resample to (x, y, z) first; NaN: keep that axis
  std::array<double, 2> hu_window{0, 0};               // level, width (0 width: none)
  std::string normalisation;                           // minmax | zscore | none
  std::vector<int> patch;                              // patch size, network order
  std::vector<std::string> labels;                     // output names (classes, levels)
  nlohmann::json training = nlohmann::json::object();  // data, command, seed ...
  nlohmann::json metrics = nlohmann::json::object();
  std::string intended_use;
  nlohmann::json raw;

  /// Reads <folder>/model.json, checks required fields and, unless verify_weights is false,
  /// the weights file's sha256. `task` non-empty: the card must be for this task.
  /// Throws InputError naming the folder and what is wrong.
  static ModelCard load(const std::filesystem::path& folder, const std::string& task = "",
                        bool verify_weights = true);
  /// What provenance records: name, folder, architecture, weights sha256.
  nlohmann::json provenance() const;
};

/// The tasks a card may name, and the architectures each accepts.
const std::vector<std::string>& modelTasks();

}  // namespace ctbmd
