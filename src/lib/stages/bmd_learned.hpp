#pragma once
// Learned BMD regression on the mosaic-392 images (mosaic-cnn) or the 3-D body crops
// (densenet3d), through the LibTorch plugin.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "ctbmd/stages.hpp"

namespace ctbmd {
/// BMD per level name from the model in p.model; `model_out` gets the model's provenance.
/// Each model folder is loaded once per process (batch runs reuse it).
std::map<std::string, double> predictLearnedBmd(const RoiResult& roi, const BmdParams& p,
                                                nlohmann::json& model_out);
}  // namespace ctbmd
