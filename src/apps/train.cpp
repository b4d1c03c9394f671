// ctbmd-train: train a ctbmd network in the LibTorch plugin and write a model folder
// (weights, card, per-epoch log).
//   regress | classify: images (2-D or 3-D NIfTI) listed in a CSV with their targets.
//   segment:            vertebral bodies from a VerSe-layout dataset (unet2d, dense-unet3d).
//   localize:           the two-stage MIP localizer from a VerSe-layout dataset.
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "app_common.hpp"
#include "ctbmd/dataset.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/model_card.hpp"
#include "ctbmd/training_data.hpp"

namespace {
std::vector<std::string> splitList(const std::string& s, char sep = ',') {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, sep))
    if (!t.empty()) v.push_back(t);
  return v;
}
std::vector<int> parseSize(const std::string& s, const char* what) {
  std::vector<int> v;
  for (const auto& t : splitList(s, 'x')) {
    try {
      v.push_back(std::stoi(t));
    } catch (const std::exception&) {
      throw ctbmd::UsageError(std::string(what) + " must look like 64x64 or 32x32x32");
    }
  }
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-train",
      "Train a network (LibTorch plugin) and write a model folder: weights.pt (best validation loss), "
      "checkpoint.pt (resumable), train_log.csv, model.json. Tasks: regress/classify (images in a CSV), "
      "segment (vertebral bodies, VerSe-layout dataset), localize (MIP localizer, VerSe-layout dataset)");
  auto& app = tool.app();
  std::string task, csv, dataset, out, arch, hyper = "{}", optimizer = "adam", loss, classes_s, window_s,
                                             milestones_s, targets_s, patch_s, card_task;
  int epochs = 20, batch = 8, stage = 1, per_body = 3, mip_rows = 0, mip_cols = 64;
  double lr = 1e-3, momentum = 0.9, weight_decay = 0, gamma = 0.1, val_fraction = 0.2, rotate = 0,
         translate = 0, scale = 0, spacing = 0, slice_step = 2.0, jitter = -1, row_mm = 0, above_mm = 20;
  uint64_t seed = 1;
  bool resume = false;
  app.add_option("task", task,
                 "regress (targets, e.g. BMD) | classify (class names) | segment (VerSe dataset) | "
                 "localize (VerSe dataset, MIP localizer)")
      ->required()
      ->check(CLI::IsMember({"regress", "classify", "segment", "localize"}));
  app.add_option("--csv", csv,
                 "regress/classify: CSV with columns image,target (paths relative to the CSV; 2-D or 3-D "
                 "NIfTI)");
  app.add_option(
      "--dataset", dataset,
      "segment/localize: root of a VerSe-layout dataset (rawdata/sub-*/*_ct.nii.gz, "
      "derivatives/sub-*/*_seg-vert_msk.nii.gz, *_ctd.json; ctbmd-phantom --layout verse writes one)");
  app.add_option("-o,--output", out, "Model folder to write")->required();
  app.add_option("--arch", arch,
                 "Architecture (default: regress mosaic-cnn, classify bccnet, segment unet2d, localize "
                 "mip-localizer); see ctbmd-model runtime");
  app.add_option("--hyper", hyper, "Architecture hyper-parameters (JSON)")->capture_default_str();
  app.add_option("--targets", targets_s, "regress: target column(s), comma-separated (one output each)");
  app.add_option("--card-task", card_task, "regress: the task written on the card (default bmd-regress)");
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
                 "regress: l1 | l2 (default l1); classify: ce | focal (alpha 0.6, gamma 2; default ce); "
                 "segment: dice | dice-ce | ce (default dice)");
  app.add_option("--classes", classes_s,
                 "classify: class names in output order (default normal,osteopenia,osteoporosis)");
  app.add_option("--hu-window", window_s,
                 "Input window LEVEL,WIDTH in HU, then min-max scaled to [0, 1] (default: regress/classify "
                 "150,700; segment 150,700; localize 400,1200)");
  app.add_option("--spacing", spacing, "segment: patch sampling in mm (default unet2d 1.25, dense-unet3d 2)");
  app.add_option("--patch", patch_s, "segment: patch size HxW or DxHxW (default 64x64 / 32x32x32)");
  app.add_option("--slice-step", slice_step, "segment unet2d: one training slice every this many mm")
      ->capture_default_str();
  app.add_option("--jitter", jitter,
                 "segment: random offset of patch centres from the spine (mm; default 4 / 6); localize "
                 "stage 2: simulated stage-1 error (default 10)");
  app.add_option("--per-body", per_body,
                 "segment dense-unet3d: patches per body and disc; localize: samples per case (stage 1: "
                 "other coverages, stage 2: windows)")
      ->capture_default_str();
  app.add_option("--stage", stage, "localize: 1 (L1's top from the whole scan) or 2 (L1-L4 centres)")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  app.add_option("--mip-rows", mip_rows, "localize: MIP rows (default 128 stage 1, 96 stage 2)");
  app.add_option("--mip-cols", mip_cols, "localize: MIP columns (the field's width)")->capture_default_str();
  app.add_option("--row-mm", row_mm, "localize: mm per MIP row (default 4 stage 1, 2 stage 2)");
  app.add_option("--window-above", above_mm, "localize stage 2: window starts this far above L1's top (mm)")
      ->capture_default_str();
  app.add_option("--val-fraction", val_fraction)->capture_default_str();
  app.add_option("--augment-rotate", rotate, "Random rotation up to this many degrees")
      ->capture_default_str();
  app.add_option("--augment-translate", translate, "Random shift up to this fraction of the size")
      ->capture_default_str();
  app.add_option("--augment-scale", scale, "Random scaling up to this fraction")->capture_default_str();
  app.add_option("--seed", seed, "Seed of the sampling, split, initial weights, shuffling and augmentation")
      ->capture_default_str();
  app.add_flag("--resume", resume,
               "Continue from <output>/checkpoint.pt (identical to an uninterrupted run)");
  return tool.main(argc, argv, [&] {
    namespace fs = std::filesystem;
    using ctbmd::learned::Tensor;
    const bool classify = task == "classify", segment = task == "segment", localize = task == "localize";
    const bool from_csv = task == "regress" || classify;
    if (from_csv && csv.empty()) throw ctbmd::UsageError(task + " needs --csv");
    if (!from_csv && dataset.empty())
      throw ctbmd::UsageError(task + " needs --dataset (a VerSe-layout folder)");
    if (arch.empty())
      arch = classify ? "bccnet" : segment ? "unet2d" : localize ? "mip-localizer" : "mosaic-cnn";
    if (loss.empty()) loss = classify ? "ce" : segment ? "dice" : "l1";
    if (window_s.empty()) window_s = localize ? "400,1200" : "150,700";
    std::vector<std::string> classes =
        splitList(classes_s.empty() ? "normal,osteopenia,osteoporosis" : classes_s);
    double level = 0, width = 0;
    if (std::sscanf(window_s.c_str(), "%lf,%lf", &level, &width) != 2 || width <= 0)
      throw ctbmd::UsageError("--hu-window must be LEVEL,WIDTH with WIDTH > 0");
    std::vector<int> milestones;
    for (const auto& m : splitList(milestones_s)) milestones.push_back(std::stoi(m));
    fs::path dir(out);
    if (!resume) ctbmd::checkWritable(dir / "model.json", tool.common().force);
    fs::create_directories(dir);
    nlohmann::json h = nlohmann::json::parse(hyper);
    nlohmann::json input = {{"hu_window", {level, width}}, {"normalisation", "minmax"}};
    nlohmann::json labels, data_desc;
    ctbmd::training::Samples S;
    std::string metric_name = classify ? "val_accuracy" : segment ? "val_dice" : "val_mae";
    if (from_csv) {
      auto table = ctbmd::readCsv(csv);
      int ci = table.column({"image"});
      std::vector<int> tcols;
      std::vector<std::string> tnames = splitList(targets_s);
      if (tnames.empty()) {
        int ct = table.column({"target", "bmd", "class", "category"});
        if (ct >= 0) tcols.push_back(ct), tnames.push_back(table.header[static_cast<size_t>(ct)]);
      } else {
        for (const auto& n : tnames) {
          int ct = table.column({n.c_str()});
          if (ct < 0) throw ctbmd::InputError("'" + csv + "' has no column '" + n + "' (--targets)");
          tcols.push_back(ct);
        }
      }
      if (ci < 0 || tcols.empty()) throw ctbmd::InputError("'" + csv + "' needs columns image and target");
      if (classify && tcols.size() != 1) throw ctbmd::UsageError("classify takes one target column");
      const double lo = level - width / 2;
      for (size_t r = 0; r < table.rows.size(); ++r) {
        fs::path p = table.cell(r, ci);
        if (p.is_relative()) p = fs::path(csv).parent_path() / p;
        Tensor t;
        const float* v = nullptr;
        ctbmd::Slice2D::Pointer img2;
        ctbmd::FloatImage::Pointer img3;
        try {  // 2-D images (mosaics) first, else a 3-D volume (crops)
          img2 = ctbmd::readSlice2D(p);
          auto sz = img2->GetLargestPossibleRegion().GetSize();
          t.shape = {1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
          v = img2->GetBufferPointer();
        } catch (const ctbmd::InputError&) {
          img3 = ctbmd::readFloatImage(p);
          auto sz = img3->GetLargestPossibleRegion().GetSize();
          t.shape = {1, static_cast<int64_t>(sz[2]), static_cast<int64_t>(sz[1]),
                     static_cast<int64_t>(sz[0])};
          v = img3->GetBufferPointer();
        }
        t.data.resize(t.numel());
        for (size_t i = 0; i < t.data.size(); ++i)
          t.data[i] = static_cast<float>(std::clamp((v[i] - lo) / width, 0.0, 1.0));
        Tensor y;
        for (int ct : tcols) {
          const std::string& s = table.cell(r, ct);
          if (classify) {
            auto it = std::find(classes.begin(), classes.end(), s);
            if (it == classes.end())
              throw ctbmd::InputError("'" + csv + "' line " + std::to_string(table.line_numbers[r]) +
                                      ": class '" + s + "' is not one of --classes");
            y.data.push_back(static_cast<float>(it - classes.begin()));
          } else {
            try {
              y.data.push_back(std::stof(s));
            } catch (const std::exception&) {
              throw ctbmd::InputError("'" + csv + "' line " + std::to_string(table.line_numbers[r]) +
                                      ": target '" + s + "' is not a number");
            }
          }
        }
        y.shape = {static_cast<int64_t>(y.data.size())};
        S.images.push_back(std::move(t));
        S.targets.push_back(std::move(y));
        S.cases.push_back(p.string());
      }
      if (classify && !h.contains("classes") && arch == "bccnet") h["classes"] = classes.size();
      if (classify && !h.contains("outputs") && arch != "bccnet") h["outputs"] = classes.size();
      if (!classify && !h.contains("outputs")) h["outputs"] = tcols.size();
      labels = classify ? nlohmann::json(classes)
                        : nlohmann::json(tnames.size() == 1 && tnames[0] == "target"
                                             ? std::vector<std::string>{"bmd_mg_cm3"}
                                             : tnames);
      std::vector<int64_t> spatial(S.images.at(0).shape.begin() + 1, S.images.at(0).shape.end());
      input["spacing_mm"] = nullptr;
      input["patch"] = spatial;
      data_desc = {{"csv", fs::absolute(csv).string()}, {"sha256", ctbmd::sha256File(csv)}};
    } else {
      auto subjects = ctbmd::scanVerseDataset(dataset);
      int used = 0, skipped = 0;
      ctbmd::training::SegmentSampling ss;
      ctbmd::training::MipSampling ms;
      if (segment) {
        ss.arch = arch;
        ss.spacing_mm = spacing > 0 ? spacing : (arch == "dense-unet3d" ? 2.0 : 1.25);
        ss.patch = patch_s.empty()
                       ? (arch == "dense-unet3d" ? std::vector<int>{32, 32, 32} : std::vector<int>{64, 64})
                       : parseSize(patch_s, "--patch");
        ss.level = level;
        ss.width = width;
        ss.slice_step_mm = slice_step;
        ss.jitter_mm = jitter >= 0 ? jitter : (arch == "dense-unet3d" ? 6.0 : 4.0);
        ss.per_body = per_body;
        ss.seed = seed;
        if (!h.contains("classes")) h["classes"] = 2;
        input["spacing_mm"] = {ss.spacing_mm, ss.spacing_mm, ss.spacing_mm};
        input["patch"] = ss.patch;
        labels = {"background", "vertebral_body"};
      } else {
        if (arch != "mip-localizer") throw ctbmd::UsageError("localize trains --arch mip-localizer");
        ms.stage = stage;
        ms.rows = mip_rows > 0 ? mip_rows : (stage == 1 ? 128 : 96);
        ms.cols = mip_cols;
        ms.row_mm = row_mm > 0 ? row_mm : (stage == 1 ? 4.0 : 2.0);
        ms.window_above_mm = above_mm;
        ms.jitter_mm = jitter >= 0 ? jitter : 10.0;
        ms.per_case = per_body;
        ms.level = level;
        ms.width = width;
        ms.seed = seed;
        if (!h.contains("in_channels")) h["in_channels"] = 2;
        if (!h.contains("outputs")) h["outputs"] = stage == 1 ? 1 : 12;
        input["spacing_mm"] = {nullptr, nullptr, ms.row_mm};
        input["patch"] = {ms.rows, ms.cols};
        input["mip"] = {{"stage", stage},
                        {"rows", ms.rows},
                        {"cols", ms.cols},
                        {"row_mm", ms.row_mm},
                        {"window_above_mm", ms.window_above_mm}};
        labels = stage == 1 ? nlohmann::json{"l1_top_mm_below_scan_top"}
                            : nlohmann::json{"L1_z", "L2_z", "L3_z", "L4_z", "L1_x", "L2_x",
                                             "L3_x", "L4_x", "L1_y", "L2_y", "L3_y", "L4_y"};
      }
      nlohmann::json keys = nlohmann::json::array();
      for (const auto& s : subjects) {
        if (s.ct.empty()) {
          spdlog::warn("{}: no CT in rawdata/{} — skipped", s.key, s.subject);
          ++skipped;
          continue;
        }
        auto c = ctbmd::loadVerseCase(s);
        if (!c.bodies_from_subregions)
          spdlog::warn("{}: no sub-region mask; whole vertebrae (posterior elements included) are the target",
                       s.key);
        size_t before = S.images.size();
        if (segment)
          ctbmd::training::addSegmentSamples(c, ss, S);
        else if (!ctbmd::training::addMipSamples(c, ms, S))
          spdlog::warn("{}: L1-L4 not all labelled — skipped", s.key);
        if (S.images.size() > before) {
          ++used;
          keys.push_back(s.key);
        }
        spdlog::info("{}: {} samples", s.key, S.images.size() - before);
      }
      if (used == 0)
        throw ctbmd::InputError("dataset '" + dataset + "': no subject with a CT gave training samples (" +
                                std::to_string(skipped) + " without CT)");
      data_desc = {{"dataset", fs::absolute(dataset).string()}, {"subjects", keys}};
    }
    data_desc["samples"] = S.images.size();
    nlohmann::json cfg = {{"architecture", arch},
                          {"hyper", h},
                          {"task", from_csv  ? task
                                   : segment ? "segment"
                                             : "regress"},
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
    if (localize) metric_name = "val_mae";
    auto& b = ctbmd::learned::backend();
    fs::path log = dir / "train_log.csv";
    std::ofstream logf(log, resume ? std::ios::app : std::ios::trunc);
    if (!resume) logf << "epoch,lr,train_loss,val_loss," << metric_name << ",best_epoch\n";
    std::string summary;
    try {
      summary = b.train(cfg.dump(), S.images, S.targets, [&](const std::string& line) {
        auto e = nlohmann::json::parse(line);
        logf << e["epoch"] << "," << e["lr"] << "," << e["train_loss"] << "," << e["val_loss"] << ","
             << e[metric_name] << "," << e["best_epoch"] << "\n";
        logf.flush();
        spdlog::info("epoch {:3d}  lr {:.2e}  train {:.4f}  val {:.4f}  {} {:.4f}", e["epoch"].get<int>(),
                     e["lr"].get<double>(), e["train_loss"].get<double>(), e["val_loss"].get<double>(),
                     metric_name, e[metric_name].get<double>());
      });
    } catch (const std::runtime_error& e) {
      throw ctbmd::ProcessingError(e.what());
    }
    auto s = nlohmann::json::parse(summary);
    std::string written_task = classify   ? "classify"
                               : segment  ? "segment"
                               : localize ? "localize"
                                          : "bmd-regress";
    if (!card_task.empty()) written_task = card_task;
    nlohmann::json card = {
        {"name", dir.filename().string()},
        {"task", written_task},
        {"architecture", {{"name", arch}, {"hyper_parameters", h}}},
        {"weights",
         {{"format", "ctbmd-state"},
          {"file", "weights.pt"},
          {"sha256", ctbmd::sha256File(dir / "weights.pt")}}},
        {"input", input},
        {"labels", labels},
        {"training",
         {{"data", data_desc},
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
