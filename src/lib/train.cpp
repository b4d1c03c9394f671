// Training a network (ctbmd/train.hpp): samples, configuration, the plugin's training loop, the
// per-epoch log and the model card, as named phases.
#include "ctbmd/train.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "ctbmd/dataset.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/learned.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/training_data.hpp"
#include "internal/net_inputs.hpp"

namespace ctbmd::training {

namespace fs = std::filesystem;
using learned::Tensor;
using nlohmann::json;

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
      throw UsageError(std::string(what) + " must look like 64x64 or 32x32x32");
    }
  }
  return v;
}

// The options with the task's defaults filled in and parsed.
struct Resolved {
  bool classify = false, segment = false, localize = false, from_csv = false;
  std::string arch, loss;
  std::vector<std::string> classes;
  double level = 0, width = 0;  // HU window
  std::vector<int> milestones;
};

Resolved resolve(const TrainOptions& o) {
  Resolved r;
  r.classify = o.task == "classify";
  r.segment = o.task == "segment";
  r.localize = o.task == "localize";
  r.from_csv = o.task == "regress" || r.classify;
  if (r.from_csv && o.csv.empty()) throw UsageError(o.task + " needs --csv");
  if (!r.from_csv && o.dataset.empty()) throw UsageError(o.task + " needs --dataset (a VerSe-layout folder)");
  r.arch = o.arch;
  if (r.arch.empty())
    r.arch = r.classify ? "bccnet" : r.segment ? "unet2d" : r.localize ? "mip-localizer" : "mosaic-cnn";
  r.loss = o.loss;
  if (r.loss.empty()) r.loss = r.classify ? "ce" : r.segment ? "dice" : "l1";
  std::string window = o.hu_window;
  if (window.empty()) window = r.localize ? "400,1200" : "150,700";
  r.classes = splitList(o.classes.empty() ? "normal,osteopenia,osteoporosis" : o.classes);
  if (std::sscanf(window.c_str(), "%lf,%lf", &r.level, &r.width) != 2 || r.width <= 0)
    throw UsageError("--hu-window must be LEVEL,WIDTH with WIDTH > 0");
  for (const auto& m : splitList(o.milestones)) r.milestones.push_back(std::stoi(m));
  return r;
}

// What the data give the card and the plugin.
struct Prepared {
  Samples S;
  json hyper, input, labels, data;
};

// One image of the CSV (2-D mosaic, else a 3-D crop) windowed and scaled as inference does
// (netin::PatchSpec::normalise).
Tensor csvImage(const fs::path& p, const netin::PatchSpec& window) {
  Tensor t;
  const float* v = nullptr;
  Slice2D::Pointer img2;
  FloatImage::Pointer img3;
  try {  // 2-D images (mosaics) first, else a 3-D volume (crops)
    img2 = readSlice2D(p);
    auto sz = img2->GetLargestPossibleRegion().GetSize();
    t.shape = {1, static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
    v = img2->GetBufferPointer();
  } catch (const InputError&) {
    img3 = readFloatImage(p);
    auto sz = img3->GetLargestPossibleRegion().GetSize();
    t.shape = {1, static_cast<int64_t>(sz[2]), static_cast<int64_t>(sz[1]), static_cast<int64_t>(sz[0])};
    v = img3->GetBufferPointer();
  }
  t.data.resize(t.numel());
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = window.normalise(v[i]);
  return t;
}

// regress / classify: images and targets from the CSV.
void csvSamples(const TrainOptions& o, const Resolved& r, Prepared& prep) {
  auto table = readCsv(o.csv);
  int ci = table.column({"image"});
  std::vector<int> tcols;
  std::vector<std::string> tnames = splitList(o.targets);
  if (tnames.empty()) {
    int ct = table.column({"target", "bmd", "class", "category"});
    if (ct >= 0) tcols.push_back(ct), tnames.push_back(table.header[static_cast<size_t>(ct)]);
  } else {
    for (const auto& n : tnames) {
      int ct = table.column({n.c_str()});
      if (ct < 0) throw InputError("'" + o.csv + "' has no column '" + n + "' (--targets)");
      tcols.push_back(ct);
    }
  }
  if (ci < 0 || tcols.empty()) throw InputError("'" + o.csv + "' needs columns image and target");
  if (r.classify && tcols.size() != 1) throw UsageError("classify takes one target column");
  netin::PatchSpec window;
  window.level = r.level;
  window.width = r.width;
  window.normalisation = "minmax";
  auto& S = prep.S;
  for (size_t row = 0; row < table.rows.size(); ++row) {
    fs::path p = table.cell(row, ci);
    if (p.is_relative()) p = fs::path(o.csv).parent_path() / p;
    Tensor t = csvImage(p, window);
    Tensor y;
    for (int ct : tcols) {
      const std::string& s = table.cell(row, ct);
      const std::string line = "'" + o.csv + "' line " + std::to_string(table.line_numbers[row]);
      if (r.classify) {
        auto it = std::find(r.classes.begin(), r.classes.end(), s);
        if (it == r.classes.end()) throw InputError(line + ": class '" + s + "' is not one of --classes");
        y.data.push_back(static_cast<float>(it - r.classes.begin()));
      } else {
        try {
          y.data.push_back(std::stof(s));
        } catch (const std::exception&) {
          throw InputError(line + ": target '" + s + "' is not a number");
        }
      }
    }
    y.shape = {static_cast<int64_t>(y.data.size())};
    S.images.push_back(std::move(t));
    S.targets.push_back(std::move(y));
    S.cases.push_back(p.string());
  }
  json& h = prep.hyper;
  if (r.classify && !h.contains("classes") && r.arch == "bccnet") h["classes"] = r.classes.size();
  if (r.classify && !h.contains("outputs") && r.arch != "bccnet") h["outputs"] = r.classes.size();
  if (!r.classify && !h.contains("outputs")) h["outputs"] = tcols.size();
  prep.labels =
      r.classify ? json(r.classes)
                 : json(tnames.size() == 1 && tnames[0] == "target" ? std::vector<std::string>{"bmd_mg_cm3"}
                                                                    : tnames);
  std::vector<int64_t> spatial(S.images.at(0).shape.begin() + 1, S.images.at(0).shape.end());
  prep.input["spacing_mm"] = nullptr;
  prep.input["patch"] = spatial;
  prep.data = {{"csv", fs::absolute(o.csv).string()}, {"sha256", sha256File(o.csv)}};
}

// segment: the patch sampling, with the architecture's defaults.
SegmentSampling segmentSampling(const TrainOptions& o, const Resolved& r, Prepared& prep) {
  SegmentSampling ss;
  ss.arch = r.arch;
  ss.spacing_mm = o.spacing > 0 ? o.spacing : (r.arch == "dense-unet3d" ? 2.0 : 1.25);
  ss.patch = o.patch.empty()
                 ? (r.arch == "dense-unet3d" ? std::vector<int>{32, 32, 32} : std::vector<int>{64, 64})
                 : parseSize(o.patch, "--patch");
  ss.level = r.level;
  ss.width = r.width;
  ss.slice_step_mm = o.slice_step;
  ss.jitter_mm = o.jitter >= 0 ? o.jitter : (r.arch == "dense-unet3d" ? 6.0 : 4.0);
  ss.per_body = o.per_body;
  ss.seed = o.seed;
  if (!prep.hyper.contains("classes")) prep.hyper["classes"] = 2;
  prep.input["spacing_mm"] = {ss.spacing_mm, ss.spacing_mm, ss.spacing_mm};
  prep.input["patch"] = ss.patch;
  prep.labels = {"background", "vertebral_body"};
  return ss;
}

// localize: the MIP sampling of the stage, with its defaults.
MipSampling mipSampling(const TrainOptions& o, const Resolved& r, Prepared& prep) {
  if (r.arch != "mip-localizer") throw UsageError("localize trains --arch mip-localizer");
  MipSampling ms;
  const int stage = o.stage;
  ms.stage = stage;
  ms.rows = o.mip_rows > 0 ? o.mip_rows : (stage == 1 ? 128 : 96);
  ms.cols = o.mip_cols;
  ms.row_mm = o.row_mm > 0 ? o.row_mm : (stage == 1 ? 4.0 : 2.0);
  ms.window_above_mm = o.above_mm;
  ms.jitter_mm = o.jitter >= 0 ? o.jitter : 10.0;
  ms.per_case = o.per_body;
  ms.level = r.level;
  ms.width = r.width;
  ms.seed = o.seed;
  json& h = prep.hyper;
  if (!h.contains("in_channels")) h["in_channels"] = 2;
  if (!h.contains("outputs")) h["outputs"] = stage == 1 ? 1 : 12;
  prep.input["spacing_mm"] = {nullptr, nullptr, ms.row_mm};
  prep.input["patch"] = {ms.rows, ms.cols};
  prep.input["mip"] = {{"stage", stage},
                       {"rows", ms.rows},
                       {"cols", ms.cols},
                       {"row_mm", ms.row_mm},
                       {"window_above_mm", ms.window_above_mm}};
  prep.labels =
      stage == 1 ? json{"l1_top_mm_below_scan_top"} : json{"L1_z", "L2_z", "L3_z", "L4_z", "L1_x", "L2_x",
                                                           "L3_x", "L4_x", "L1_y", "L2_y", "L3_y", "L4_y"};
  return ms;
}

// segment / localize: samples from every subject of the VerSe-layout dataset.
void verseSamples(const TrainOptions& o, const Resolved& r, Prepared& prep) {
  auto subjects = scanVerseDataset(o.dataset);
  int used = 0, skipped = 0;
  SegmentSampling ss;
  MipSampling ms;
  if (r.segment)
    ss = segmentSampling(o, r, prep);
  else
    ms = mipSampling(o, r, prep);
  auto& S = prep.S;
  json keys = json::array();
  for (const auto& s : subjects) {
    if (s.ct.empty()) {
      spdlog::warn("{}: no CT in rawdata/{} — skipped", s.key, s.subject);
      ++skipped;
      continue;
    }
    auto c = loadVerseCase(s);
    if (!c.bodies_from_subregions)
      spdlog::warn("{}: no sub-region mask; whole vertebrae (posterior elements included) are the target",
                   s.key);
    size_t before = S.images.size();
    if (r.segment)
      addSegmentSamples(c, ss, S);
    else if (!addMipSamples(c, ms, S))
      spdlog::warn("{}: L1-L4 not all labelled — skipped", s.key);
    if (S.images.size() > before) {
      ++used;
      keys.push_back(s.key);
    }
    spdlog::info("{}: {} samples", s.key, S.images.size() - before);
  }
  if (used == 0)
    throw InputError("dataset '" + o.dataset + "': no subject with a CT gave training samples (" +
                     std::to_string(skipped) + " without CT)");
  prep.data = {{"dataset", fs::absolute(o.dataset).string()}, {"subjects", keys}};
}

// The configuration the plugin trains with (recorded on the card).
json trainingConfig(const TrainOptions& o, const Resolved& r, const json& hyper) {
  return {{"architecture", r.arch},
          {"hyper", hyper},
          {"task", r.from_csv  ? o.task
                   : r.segment ? "segment"
                               : "regress"},
          {"loss", r.loss},
          {"optimizer", o.optimizer},
          {"lr", o.lr},
          {"momentum", o.momentum},
          {"weight_decay", o.weight_decay},
          {"milestones", r.milestones},
          {"gamma", o.gamma},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"val_fraction", o.val_fraction},
          {"seed", o.seed},
          {"out", o.out.string()},
          {"resume", o.resume},
          {"augment", {{"rotate_deg", o.rotate}, {"translate", o.translate}, {"scale", o.scale}}}};
}

// The plugin's training loop, one train_log.csv line and one log line per epoch; the summary.
json runTraining(const json& cfg, const Samples& S, const fs::path& dir, bool resume,
                 const std::string& metric) {
  auto& b = learned::backend();
  fs::path log = dir / "train_log.csv";
  std::ofstream logf(log, resume ? std::ios::app : std::ios::trunc);
  if (!resume) logf << "epoch,lr,train_loss,val_loss," << metric << ",best_epoch\n";
  std::string summary;
  try {
    summary = b.train(cfg.dump(), S.images, S.targets, [&](const std::string& line) {
      auto e = json::parse(line);
      logf << e["epoch"] << "," << e["lr"] << "," << e["train_loss"] << "," << e["val_loss"] << ","
           << e[metric] << "," << e["best_epoch"] << "\n";
      logf.flush();
      spdlog::info("epoch {:3d}  lr {:.2e}  train {:.4f}  val {:.4f}  {} {:.4f}", e["epoch"].get<int>(),
                   e["lr"].get<double>(), e["train_loss"].get<double>(), e["val_loss"].get<double>(), metric,
                   e[metric].get<double>());
    });
  } catch (const std::runtime_error& e) {
    throw ProcessingError(e.what());
  }
  return json::parse(summary);
}

json modelCard(const TrainOptions& o, const Resolved& r, const Prepared& prep, const json& cfg,
               const json& metrics) {
  std::string written_task = r.classify   ? "classify"
                             : r.segment  ? "segment"
                             : r.localize ? "localize"
                                          : "bmd-regress";
  if (!o.card_task.empty()) written_task = o.card_task;
  return {{"name", o.out.filename().string()},
          {"task", written_task},
          {"architecture", {{"name", r.arch}, {"hyper_parameters", prep.hyper}}},
          {"weights",
           {{"format", "ctbmd-state"}, {"file", "weights.pt"}, {"sha256", sha256File(o.out / "weights.pt")}}},
          {"input", prep.input},
          {"labels", prep.labels},
          {"training",
           {{"data", prep.data},
            {"command", makeProvenance({}, {})["command_line"]},
            {"config", cfg},
            {"log", "train_log.csv"}}},
          {"metrics", metrics},
          {"intended_use", "research; check the training data before any use; not for clinical decisions"}};
}

}  // namespace

json trainModel(const TrainOptions& o) {
  const Resolved r = resolve(o);
  if (!o.resume) checkWritable(o.out / "model.json", o.force);
  fs::create_directories(o.out);
  Prepared prep;
  prep.hyper = json::parse(o.hyper);
  prep.input = {{"hu_window", {r.level, r.width}}, {"normalisation", "minmax"}};
  if (r.from_csv)
    csvSamples(o, r, prep);
  else
    verseSamples(o, r, prep);
  prep.data["samples"] = prep.S.images.size();
  const json cfg = trainingConfig(o, r, prep.hyper);
  const std::string metric = r.classify ? "val_accuracy" : r.segment ? "val_dice" : "val_mae";
  const json metrics = runTraining(cfg, prep.S, o.out, o.resume, metric);
  json card = modelCard(o, r, prep, cfg, metrics);
  writeJsonFile(o.out / "model.json", card, true);
  spdlog::info("best epoch {}: validation loss {:.4f}; model folder {}", metrics["best_epoch"].get<int>(),
               metrics["best_val_loss"].get<double>(), o.out.string());
  return card;
}

}  // namespace ctbmd::training
