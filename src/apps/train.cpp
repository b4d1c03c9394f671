// ctbmd-train: train a ctbmd network on 2-D images (e.g. mosaic-392 NIfTIs) with scalar or
// class targets, and write a model folder (weights, card, per-epoch log).
#include <fstream>
#include <map>
#include <sstream>

#include "ctbmd/app_common.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-train",
      "Train a network (LibTorch plugin) on 2-D images listed in a CSV and write a model folder: "
      "weights.pt (best validation loss), checkpoint.pt (resumable), train_log.csv, model.json");
  auto& app = tool.app();
  std::string task, csv, out, arch = "mosaic-cnn", hyper = "{}", optimizer = "adam", loss, classes_s,
                              window_s = "150,700", milestones_s;
  int epochs = 20, batch = 8;
  double lr = 1e-3, momentum = 0.9, weight_decay = 0, gamma = 0.1, val_fraction = 0.2, rotate = 0,
         translate = 0, scale = 0;
  uint64_t seed = 1;
  bool resume = false;
  app.add_option("task", task, "regress (scalar target, e.g. BMD) | classify (class names)")
      ->required()
      ->check(CLI::IsMember({"regress", "classify"}));
  app.add_option("--csv", csv, "CSV with columns image,target (paths relative to the CSV)")->required();
  app.add_option("-o,--output", out, "Model folder to write")->required();
  app.add_option("--arch", arch, "mosaic-cnn | bccnet | mip-localizer | ...")->capture_default_str();
  app.add_option("--hyper", hyper, "Architecture hyper-parameters (JSON)")->capture_default_str();
  app.add_option("--epochs", epochs)->capture_default_str();
  app.add_option("--batch", batch)->capture_default_str();
  app.add_option("--lr", lr, "Learning rate")->capture_default_str();
  app.add_option("--optimizer", optimizer, "adam | sgd (with --momentum)")->capture_default_str();
  app.add_option("--momentum", momentum)->capture_default_str();
  app.add_option("--weight-decay", weight_decay)->capture_default_str();
  app.add_option("--milestones", milestones_s,
                 "Multi-step decay: epochs (comma-separated) where lr *= --gamma");
  app.add_option("--gamma", gamma)->capture_default_str();
  app.add_option("--loss", loss,
                 "regress: l1 | l2 (default l1); classify: ce | focal (alpha 0.6, gamma 2; default ce)");
  app.add_option("--classes", classes_s,
                 "classify: class names in output order (default normal,osteopenia,osteoporosis)");
  app.add_option("--hu-window", window_s, "Input window level,width in HU, then min-max scaled to [0, 1]")
      ->capture_default_str();
  app.add_option("--val-fraction", val_fraction)->capture_default_str();
  app.add_option("--augment-rotate", rotate, "Random rotation up to this many degrees")
      ->capture_default_str();
  app.add_option("--augment-translate", translate, "Random shift up to this fraction of the size")
      ->capture_default_str();
  app.add_option("--augment-scale", scale, "Random scaling up to this fraction")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the split, initial weights, shuffling and augmentation")
      ->capture_default_str();
  app.add_flag("--resume", resume,
               "Continue from <output>/checkpoint.pt (identical to an uninterrupted run)");
  return tool.main(argc, argv, [&] {
    namespace fs = std::filesystem;
    const bool classify = task == "classify";
    if (loss.empty()) loss = classify ? "ce" : "l1";
    std::vector<std::string> classes;
    {
      std::stringstream ss(classes_s.empty() ? "normal,osteopenia,osteoporosis" : classes_s);
      std::string c;
      while (std::getline(ss, c, ',')) classes.push_back(c);
    }
    double level = 0, width = 0;
    if (std::sscanf(window_s.c_str(), "%lf,%lf", &level, &width) != 2 || width <= 0)
      throw ctbmd::UsageError("--hu-window must be LEVEL,WIDTH with WIDTH > 0");
    std::vector<int> milestones;
    {
      std::stringstream ss(milestones_s);
      std::string m;
      while (std::getline(ss, m, ',')) milestones.push_back(std::stoi(m));
    }
    fs::path dir(out);
    if (!resume) ctbmd::checkWritable(dir / "model.json", tool.common().force);
    fs::create_directories(dir);
    // Data.
    auto table = ctbmd::readCsv(csv);
    int ci = table.column({"image"}), ct = table.column({"target", "bmd", "class", "category"});
    if (ci < 0 || ct < 0) throw ctbmd::InputError("'" + csv + "' needs columns image and target");
    std::vector<ctbmd::learned::Tensor> images;
    std::vector<float> targets;
    const double lo = level - width / 2;
    for (size_t r = 0; r < table.rows.size(); ++r) {
      fs::path p = table.cell(r, ci);
      if (p.is_relative()) p = fs::path(csv).parent_path() / p;
      auto img = ctbmd::readSlice2D(p);
      auto sz = img->GetLargestPossibleRegion().GetSize();
      ctbmd::learned::Tensor t;
      t.shape = {1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
      const float* v = img->GetBufferPointer();
      t.data.resize(t.numel());
      for (size_t i = 0; i < t.data.size(); ++i)
        t.data[i] = static_cast<float>(std::clamp((v[i] - lo) / width, 0.0, 1.0));
      images.push_back(std::move(t));
      const std::string& y = table.cell(r, ct);
      if (classify) {
        auto it = std::find(classes.begin(), classes.end(), y);
        if (it == classes.end())
          throw ctbmd::InputError("'" + csv + "' line " + std::to_string(table.line_numbers[r]) +
                                  ": class '" + y + "' is not one of --classes");
        targets.push_back(static_cast<float>(it - classes.begin()));
      } else {
        try {
          targets.push_back(std::stof(y));
        } catch (const std::exception&) {
          throw ctbmd::InputError("'" + csv + "' line " + std::to_string(table.line_numbers[r]) +
                                  ": target '" + y + "' is not a number");
        }
      }
    }
    nlohmann::json h = nlohmann::json::parse(hyper);
    if (classify && !h.contains("classes") && arch == "bccnet") h["classes"] = classes.size();
    if (classify && !h.contains("outputs") && arch != "bccnet") h["outputs"] = classes.size();
    nlohmann::json cfg = {{"architecture", arch},
                          {"hyper", h},
                          {"task", task},
                          {"loss", loss},
                          {"optimizer", optimizer},
                          {"lr", lr},
                          {"momentum", momentum},
                          {"weight_decay", weight_decay},
                          {"milestones", milestones},
                          {"gamma", gamma},
                          {"epochs", epochs},
                          {"batch", batch},
                          {"val_fraction", val_fraction},
                          {"seed", seed},
                          {"out", dir.string()},
                          {"resume", resume},
                          {"augment", {{"rotate_deg", rotate}, {"translate", translate}, {"scale", scale}}}};
    auto& b = ctbmd::learned::backend();
    fs::path log = dir / "train_log.csv";
    std::ofstream logf(log, resume ? std::ios::app : std::ios::trunc);
    if (!resume)
      logf << "epoch,lr,train_loss,val_loss," << (classify ? "val_accuracy" : "val_mae") << ",best_epoch\n";
    std::string summary;
    try {
      summary = b.train(cfg.dump(), images, targets, [&](const std::string& line) {
        auto e = nlohmann::json::parse(line);
        logf << e["epoch"] << "," << e["lr"] << "," << e["train_loss"] << "," << e["val_loss"] << ","
             << e[classify ? "val_accuracy" : "val_mae"] << "," << e["best_epoch"] << "\n";
        logf.flush();
        spdlog::info("epoch {:3d}  lr {:.2e}  train {:.4f}  val {:.4f}  {} {:.4f}", e["epoch"].get<int>(),
                     e["lr"].get<double>(), e["train_loss"].get<double>(), e["val_loss"].get<double>(),
                     classify ? "accuracy" : "MAE", e[classify ? "val_accuracy" : "val_mae"].get<double>());
      });
    } catch (const std::runtime_error& e) {
      throw ctbmd::ProcessingError(e.what());
    }
    auto s = nlohmann::json::parse(summary);
    nlohmann::json card = {
        {"name", dir.filename().string()},
        {"task", classify ? "classify" : "bmd-regress"},
        {"architecture", {{"name", arch}, {"hyper_parameters", h}}},
        {"weights",
         {{"format", "ctbmd-state"},
          {"file", "weights.pt"},
          {"sha256", ctbmd::sha256File(dir / "weights.pt")}}},
        {"input",
         {{"spacing_mm", nullptr},
          {"hu_window", {level, width}},
          {"normalisation", "minmax"},
          {"patch", {images[0].shape[1], images[0].shape[2]}}}},
        {"labels", classify ? nlohmann::json(classes) : nlohmann::json::array({"bmd_mg_cm3"})},
        {"training",
         {{"data",
           {{"csv", fs::absolute(csv).string()},
            {"sha256", ctbmd::sha256File(csv)},
            {"samples", images.size()}}},
          {"command", ctbmd::makeProvenance({}, {})["command_line"]},
          {"config", cfg},
          {"log", "train_log.csv"}}},
        {"metrics", s},
        {"intended_use", "research; check the training data before any use; not for clinical decisions"}};
    ctbmd::writeJsonFile(dir / "model.json", card, true);
    spdlog::info("best epoch {}: validation loss {:.4f}; model folder {}", s["best_epoch"].get<int>(),
                 s["best_val_loss"].get<double>(), dir.string());
    return 0;
  });
}
