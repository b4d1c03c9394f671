// Model cards (see ctbmd/model_card.hpp).
#include "ctbmd/model_card.hpp"

#include <algorithm>
#include <cmath>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"

namespace ctbmd {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<std::string>& modelTasks() {
  static const std::vector<std::string> t = {"localize", "segment", "bmd-regress", "classify",
                                             "radiomics-classify"};
  return t;
}

ModelCard ModelCard::load(const fs::path& folder, const std::string& task, bool verify_weights) {
  const std::string where = folder.string();
  fs::path card_path = folder / "model.json";
  if (!fs::is_directory(folder))
    throw InputError("model folder '" + where +
                     "' does not exist (a model is a folder with model.json and weights)");
  if (!fs::exists(card_path))
    throw InputError("model folder '" + where + "' has no model.json (its model card)");
  json j = readJsonFile(card_path);
  ModelCard c;
  c.folder = fs::absolute(folder);
  c.raw = j;
  try {
    c.name = j.value("name", folder.filename().string());
    c.task = j.at("task").get<std::string>();
    const json& a = j.at("architecture");
    if (a.is_string()) {
      c.architecture = a.get<std::string>();
    } else {
      c.architecture = a.at("name").get<std::string>();
      c.hyper = a.value("hyper_parameters", json::object());
    }
    const json& w = j.at("weights");
    c.format = w.at("format").get<std::string>();
    c.weights = c.folder / w.at("file").get<std::string>();
    c.weights_sha256 = w.at("sha256").get<std::string>();
    const json& in = j.at("input");
    if (in.contains("spacing_mm") && !in["spacing_mm"].is_null()) {
      const json& sp = in["spacing_mm"];
      if (!sp.is_array() || sp.size() != 3)
        throw InputError("model card '" + card_path.string() +
                         "': input.spacing_mm must be [x, y, z] (null: keep)");
      std::array<double, 3> v{};
      for (size_t a = 0; a < 3; ++a) v[a] = sp[a].is_null() ? std::nan("") : sp[a].get<double>();
      c.spacing_mm = v;
    }
    if (in.contains("hu_window")) c.hu_window = in["hu_window"].get<std::array<double, 2>>();
    c.normalisation = in.value("normalisation", "none");
    c.patch = in.value("patch", std::vector<int>{});
    c.labels = j.value("labels", std::vector<std::string>{});
    c.training = j.value("training", json::object());
    c.metrics = j.value("metrics", json::object());
    c.intended_use = j.value("intended_use", "");
  } catch (const json::exception& e) {
    throw InputError("model card '" + card_path.string() + "' lacks a required field (" + jsonProblem(e) +
                     "); see models/README.md for the contract");
  }
  const auto& tasks = modelTasks();
  if (std::find(tasks.begin(), tasks.end(), c.task) == tasks.end())
    throw InputError("model card '" + card_path.string() + "': unknown task '" + c.task +
                     "' (localize, segment, bmd-regress, classify, radiomics-classify)");
  if (!task.empty() && c.task != task)
    throw InputError("model '" + where + "' is a " + c.task + " model; this stage needs a " + task +
                     " model");
  const bool forest = c.task == "radiomics-classify";
  if (forest ? c.format != "opencv-yml" : (c.format != "torchscript" && c.format != "ctbmd-state"))
    throw InputError("model card '" + card_path.string() + "': weights.format must be " +
                     (forest ? "opencv-yml for a radiomics-classify model" : "torchscript or ctbmd-state"));
  if (c.normalisation != "none" && c.normalisation != "minmax" && c.normalisation != "zscore")
    throw InputError("model card '" + card_path.string() +
                     "': input.normalisation must be none, minmax or zscore");
  if (c.weights_sha256.size() != 64)
    throw InputError("model card '" + card_path.string() + "': weights.sha256 must be 64 hex digits");
  if (!fs::exists(c.weights))
    throw InputError("model '" + where + "': weights file '" + c.weights.filename().string() +
                     "' is missing");
  if (verify_weights) {
    std::string got = sha256File(c.weights);
    std::string want = c.weights_sha256;
    std::transform(want.begin(), want.end(), want.begin(), ::tolower);
    if (got != want)
      throw InputError("model '" + where + "': weights file '" + c.weights.filename().string() +
                       "' has sha256 " + got + " but the card says " + want +
                       ": the weights were changed or belong to another card. Refusing to run them.");
  }
  return c;
}

json ModelCard::provenance() const {
  return {{"name", name},     {"folder", folder.string()},
          {"task", task},     {"architecture", architecture},
          {"format", format}, {"weights_sha256", weights_sha256}};
}

}  // namespace ctbmd
