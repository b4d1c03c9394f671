// ctbmd-model: check model folders, show the LibTorch runtime, run a model on raw tensors.
#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "app_common.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"

namespace {
std::vector<int64_t> parseShape(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      long v = std::stol(item);
      if (v <= 0) throw std::invalid_argument("");
      out.push_back(v);
    } catch (const std::exception&) {
      throw ctbmd::UsageError("--shape must be positive integers separated by commas, e.g. 1,1,64,64");
    }
  }
  if (out.empty()) throw ctbmd::UsageError("--shape is empty");
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-model",
      "Model folders (models/<name>/model.json + weights): check a card and its weights, show "
      "the LibTorch runtime, run a model on raw float32 tensors");
  auto& app = tool.app();
  std::string folder, task, input, shape, output, device = "auto";
  int repeat = 1;
  auto* check = app.add_subcommand("check", "Validate a model folder: card fields, task, weights sha256");
  check->add_option("folder", folder, "Model folder")->required();
  check->add_option("--task", task, "Require this task (localize, segment, bmd-regress, classify)");
  auto* runtime = app.add_subcommand("runtime", "Load the LibTorch plugin and print its version and devices");
  std::string arch, hyper = "{}", name;
  uint64_t seed = 1;
  auto* init =
      app.add_subcommand("init",
                         "Create a model folder for a ctbmd architecture with seeded random (untrained) "
                         "weights: the starting point of ctbmd-train");
  init->add_option("architecture", arch,
                   "densenet121bc-3d | bccnet | unet2d | dense-unet3d | mosaic-cnn | mip-localizer")
      ->required();
  init->add_option("-o,--output", folder, "Model folder to create")->required();
  init->add_option("--hyper", hyper, "Hyper-parameters as JSON, e.g. '{\"depth\": 3}'")
      ->capture_default_str();
  init->add_option("--seed", seed, "Random seed of the initial weights")->capture_default_str();
  auto* infer =
      app.add_subcommand("infer", "Run a TorchScript model folder on a raw little-endian float32 tensor");
  infer->add_option("folder", folder, "Model folder")->required();
  infer->add_option("-i,--input", input, "Input tensor: raw float32, C order")->required();
  infer->add_option("--shape", shape, "Input shape, e.g. 1,1,64,64")->required();
  infer
      ->add_option("-o,--output", output, "Output tensor file (raw float32); its shape goes to <output>.json")
      ->required();
  infer->add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  infer
      ->add_option(
          "--repeat", repeat,
          "Run the forward pass N times and report the median time (after 3 warm-up runs when N > 1: "
          "the TorchScript executor optimises the graph on its first runs)")
      ->capture_default_str();
  for (auto* s : {check, runtime, infer, init}) s->fallthrough();
  app.require_subcommand(1);
  return tool.main(argc, argv, [&] {
    if (check->parsed()) {
      auto card = ctbmd::ModelCard::load(folder, task);
      std::cout << card.provenance().dump(2) << "\n";
      spdlog::info("{}: {} model ({}, {}), weights sha256 verified", card.name, card.task, card.architecture,
                   card.format);
      return 0;
    }
    auto& b = ctbmd::learned::backend();
    if (runtime->parsed()) {
      nlohmann::json j = {{"plugin", ctbmd::learned::backendPath()},
                          {"torch_version", b.torchVersion()},
                          {"cuda_available", b.cudaAvailable()},
                          {"threads", ctbmd::cli::effectiveThreads(tool.common().threads)}};
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    if (init->parsed()) {
      static const std::map<std::string, std::string> task_of = {
          {"densenet121bc-3d", "bmd-regress"}, {"bccnet", "classify"},        {"unet2d", "segment"},
          {"dense-unet3d", "segment"},         {"mosaic-cnn", "bmd-regress"}, {"mip-localizer", "localize"}};
      auto it = task_of.find(arch);
      if (it == task_of.end()) throw ctbmd::UsageError("unknown architecture '" + arch + "'");
      namespace fs = std::filesystem;
      fs::path dir(folder);
      ctbmd::checkWritable(dir / "model.json", tool.common().force);
      fs::create_directories(dir);
      nlohmann::json hj;
      try {
        hj = nlohmann::json::parse(hyper);
      } catch (const nlohmann::json::exception&) {
        throw ctbmd::UsageError("--hyper must be a JSON object");
      }
      fs::path weights = dir / "weights.pt";
      int64_t params = 0;
      ctbmd::atomicWrite(weights, tool.common().force, [&](const fs::path& tmp) {
        try {
          params = b.initModel(arch, hj.dump(), seed, tmp);
        } catch (const std::runtime_error& e) {
          throw ctbmd::UsageError(e.what());
        }
      });
      nlohmann::json card = {
          {"name", dir.filename().string()},
          {"task", it->second},
          {"architecture", {{"name", arch}, {"hyper_parameters", hj}}},
          {"weights",
           {{"format", "ctbmd-state"}, {"file", "weights.pt"}, {"sha256", ctbmd::sha256File(weights)}}},
          {"input", {{"spacing_mm", nullptr}, {"hu_window", {0, 0}}, {"normalisation", "none"}}},
          {"labels", nlohmann::json::array()},
          {"training", {{"state", "untrained: seeded random initialisation"}, {"seed", seed}}},
          {"metrics", nlohmann::json::object()},
          {"parameters", params},
          {"intended_use", "starting point for ctbmd-train; untrained weights give meaningless outputs"}};
      ctbmd::writeStageJson(dir / "model.json", card, "ctbmd.model-card", nlohmann::json::object(),
                            {{"architecture", arch}, {"seed", seed}}, tool.common().force);
      spdlog::info("{}: {} ({} parameters), untrained, seed {}", dir.string(), arch, params, seed);
      return 0;
    }
    ctbmd::learned::checkDeviceName(device);
    bool force = tool.common().force;
    ctbmd::checkWritable(output, force);
    auto card = ctbmd::ModelCard::load(folder);
    ctbmd::learned::Tensor x;
    x.shape = parseShape(shape);
    x.data.resize(x.numel());
    {
      std::ifstream f(input, std::ios::binary);
      if (!f) throw ctbmd::InputError("cannot read input tensor '" + input + "'");
      f.read(reinterpret_cast<char*>(x.data.data()),
             static_cast<std::streamsize>(x.data.size() * sizeof(float)));
      if (f.gcount() != static_cast<std::streamsize>(x.data.size() * sizeof(float)) || f.peek() != EOF)
        throw ctbmd::InputError("input tensor '" + input + "' does not hold exactly " +
                                std::to_string(x.numel()) + " float32 values for shape " + shape);
    }
    std::unique_ptr<ctbmd::learned::Network> net;
    try {
      net = b.loadModel(card.format, card.weights, card.architecture, card.hyper.dump(), device);
    } catch (const std::runtime_error& e) {
      throw ctbmd::ProcessingError(e.what());
    }
    std::vector<double> ms;
    std::vector<ctbmd::learned::Tensor> y;
    if (repeat > 1)
      for (int w = 0; w < 3; ++w) net->forward({x});
    for (int r = 0; r < std::max(1, repeat); ++r) {
      auto t0 = std::chrono::steady_clock::now();
      y = net->forward({x});
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    if (y.empty()) throw ctbmd::ProcessingError("the model returned no tensor");
    ctbmd::atomicWrite(output, force, [&](const std::filesystem::path& tmp) {
      std::ofstream f(tmp, std::ios::binary);
      f.write(reinterpret_cast<const char*>(y[0].data.data()),
              static_cast<std::streamsize>(y[0].data.size() * sizeof(float)));
      if (!f) throw ctbmd::ProcessingError("cannot write '" + tmp.string() + "'");
    });
    nlohmann::json meta = {{"shape", y[0].shape},
                           {"device", net->device()},
                           {"median_ms", ms[ms.size() / 2]},
                           {"repeat", ms.size()},
                           {"model", card.provenance()}};
    ctbmd::writeStageJson(output + ".json", meta, "ctbmd.model-output", {{"input", ctbmd::fileInput(input)}},
                          {{"device", device}, {"shape", shape}}, force);
    spdlog::info("{} on {}: output shape {}, median {:.3f} ms over {} run(s)", card.name, net->device(),
                 nlohmann::json(y[0].shape).dump(), ms[ms.size() / 2], ms.size());
    return 0;
  });
}
