// The model-folder contract: a card is read, checked against its weights' sha256 and its task.
#include <fstream>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/model_card.hpp"
#include "test_support.hpp"

namespace ctbmd {
namespace {

void writeFolder(const std::filesystem::path& d, const std::string& weights, nlohmann::json card) {
  std::filesystem::create_directories(d);
  std::ofstream(d / "w.pt") << weights;
  if (card["weights"]["sha256"] == "auto") card["weights"]["sha256"] = sha256Hex(weights);
  std::ofstream(d / "model.json") << card.dump(2);
}

nlohmann::json goodCard() {
  return {{"name", "t"},
          {"task", "segment"},
          {"architecture", {{"name", "unet2d"}, {"hyper_parameters", {{"depth", 4}}}}},
          {"weights", {{"format", "torchscript"}, {"file", "w.pt"}, {"sha256", "auto"}}},
          {"input",
           {{"spacing_mm", {1.0, 1.0, nullptr}}, {"hu_window", {400, 1800}}, {"normalisation", "minmax"}}},
          {"labels", {"T12", "L1"}}};
}

TEST(ModelCard, ReadsAValidFolderAndVerifiesItsWeights) {
  test::TempDir tmp;
  writeFolder(tmp / "m", "weights-bytes", goodCard());
  auto c = ModelCard::load(tmp / "m", "segment");
  EXPECT_EQ(c.architecture, "unet2d");
  EXPECT_EQ(c.hyper["depth"], 4);
  EXPECT_EQ(c.hu_window[1], 1800);
  EXPECT_EQ(c.weights_sha256, sha256Hex("weights-bytes"));
  EXPECT_EQ(c.provenance()["weights_sha256"], c.weights_sha256);
}

TEST(ModelCard, RefusesChangedWeightsWrongTaskAndIncompleteCards) {
  test::TempDir tmp;
  writeFolder(tmp / "m", "weights-bytes", goodCard());
  std::ofstream(tmp / "m" / "w.pt", std::ios::app) << "tampered";
  try {
    ModelCard::load(tmp / "m");
    FAIL() << "changed weights accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
  }
  writeFolder(tmp / "k", "w", goodCard());
  EXPECT_THROW(ModelCard::load(tmp / "k", "classify"), InputError);  // a segment card
  auto bad = goodCard();
  bad.erase("task");
  writeFolder(tmp / "b", "w", bad);
  EXPECT_THROW(ModelCard::load(tmp / "b"), InputError);
  auto fmt = goodCard();
  fmt["weights"]["format"] = "onnx";
  writeFolder(tmp / "f", "w", fmt);
  EXPECT_THROW(ModelCard::load(tmp / "f"), InputError);
  EXPECT_THROW(ModelCard::load(tmp / "none"), InputError);
}

}  // namespace
}  // namespace ctbmd
