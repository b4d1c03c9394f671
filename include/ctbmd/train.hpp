#pragma once
// Training a ctbmd network (ctbmd-train, callable in-process): the samples (images listed in a
// CSV, or a VerSe-layout dataset), the configuration the LibTorch plugin trains with, the
// per-epoch log and the model card.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace ctbmd::training {

struct TrainOptions {
  std::string task;     // regress | classify | segment | localize
  std::string csv;      // regress/classify: image,target table (paths relative to it)
  std::string dataset;  // segment/localize: VerSe-layout root
  std::filesystem::path out;
  std::string arch;                // empty: the task's default (mosaic-cnn, bccnet, unet2d, mip-localizer)
  std::string hyper = "{}";        // architecture hyper-parameters (JSON text)
  std::string optimizer = "adam";  // adam | sgd
  std::string loss;                // empty: l1 (regress), ce (classify), dice (segment)
  std::string classes;             // classify: comma-separated (default normal,osteopenia,osteoporosis)
  std::string hu_window;           // "LEVEL,WIDTH" HU (default 150,700; localize 400,1200)
  std::string milestones;          // comma-separated epochs where lr *= gamma
  std::string targets;             // regress: target column(s), comma-separated
  std::string patch;               // segment: HxW or DxHxW
  std::string card_task;           // regress: the task written on the card (default bmd-regress)
  int epochs = 20, batch = 8;
  int stage = 1;      // localize: 1 (L1's top) or 2 (L1-L4 centres)
  int per_body = 3;   // segment dense-unet3d: patches per body; localize: samples per case
  int mip_rows = 0;   // localize: MIP rows (0: 128 stage 1, 96 stage 2)
  int mip_cols = 64;  // localize: MIP columns
  double lr = 1e-3, momentum = 0.9, weight_decay = 0, gamma = 0.1, val_fraction = 0.2;
  double rotate = 0, translate = 0, scale = 0;  // augmentation: degrees, fractions
  double spacing = 0;       // segment: patch sampling (mm; 0: unet2d 1.25, dense-unet3d 2)
  double slice_step = 2.0;  // segment unet2d: one training slice every this many mm
  double jitter = -1;       // segment: patch-centre offset (mm; <0: 4 / 6); localize stage 2 (10)
  double row_mm = 0;        // localize: mm per MIP row (0: 4 stage 1, 2 stage 2)
  double above_mm = 20;     // localize stage 2: window starts this far above L1's top (mm)
  uint64_t seed = 1;
  bool resume = false;  // continue from out/checkpoint.pt
  bool force = false;   // overwrite an existing model folder
};

/// Trains in the LibTorch plugin and writes the model folder (weights.pt, checkpoint.pt,
/// train_log.csv, model.json); returns the card written. UsageError / InputError for bad
/// options or data, ProcessingError when training fails.
nlohmann::json trainModel(const TrainOptions& o);

}  // namespace ctbmd::training
