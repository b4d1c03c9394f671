// ctbmd-train: train a ctbmd network in the LibTorch plugin and write a model folder
// (weights, card, per-epoch log).
//   regress | classify: images (2-D or 3-D NIfTI) listed in a CSV with their targets.
//   segment:            vertebral bodies from a VerSe-layout dataset (unet2d, dense-unet3d).
//   localize:           the two-stage MIP localizer from a VerSe-layout dataset.
//   radiomics:          feature selection (RFE, mRMR, LASSO) and a random forest on features.csv.
#include "ctbmd/train.hpp"

#include <sstream>

#include "app_common.hpp"
#include "ctbmd/radiomics_model.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-train",
      "Train a network (LibTorch plugin) and write a model folder: weights.pt (best validation loss), "
      "checkpoint.pt (resumable), train_log.csv, model.json. Tasks: regress/classify (images in a CSV), "
      "segment (vertebral bodies, VerSe-layout dataset), localize (MIP localizer, VerSe-layout dataset), "
      "radiomics (RFE, mRMR, LASSO and a random forest on ctbmd-radiomics features; forest.yml + "
      "model.json)");
  auto& app = tool.app();
  ctbmd::training::TrainOptions o;
  std::string out;
  app.add_option("task", o.task,
                 "regress (targets, e.g. BMD) | classify (class names) | segment (VerSe dataset) | "
                 "localize (VerSe dataset, MIP localizer) | radiomics (features.csv, random forest)")
      ->required()
      ->check(CLI::IsMember({"regress", "classify", "segment", "localize", "radiomics"}));
  ctbmd::radiomics::TrainRadiomicsParams rp;
  std::vector<std::string> rad_features;
  std::string rad_reference;
  auto* rg = app.add_option_group("radiomics", "ctbmd-train radiomics");
  rg->add_option("--features", rad_features,
                 "radiomics: features.csv file(s) from ctbmd-radiomics (one feature set)")
      ->check(CLI::ExistingFile);
  rg->add_option("--reference", rad_reference,
                 "radiomics: CSV with case_id, optional roi, and the class column")
      ->check(CLI::ExistingFile);
  rg->add_option("--label-column", rp.label_column, "radiomics: the reference's class column")
      ->capture_default_str();
  rg->add_option("--test-fraction", rp.test_fraction, "radiomics: fraction of the cases held out")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  rg->add_option("--rfe-keep", rp.rfe_keep, "radiomics: features left by RFE")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  rg->add_option("--rfe-step", rp.rfe_step, "radiomics: features dropped per RFE round")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  rg->add_option("--mrmr-keep", rp.mrmr_keep, "radiomics: features left by mRMR")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  rg->add_option("--lasso-folds", rp.lasso_folds, "radiomics: LassoCV folds")
      ->check(CLI::Range(2, 50))
      ->capture_default_str();
  rg->add_option("--trees", rp.trees, "radiomics: trees in the forest")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  rg->add_option("--max-depth", rp.max_depth, "radiomics: depth of each tree")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--csv", o.csv,
                 "regress/classify: CSV with columns image,target (paths relative to the CSV; 2-D or 3-D "
                 "NIfTI)");
  app.add_option(
      "--dataset", o.dataset,
      "segment/localize: root of a VerSe-layout dataset (rawdata/sub-*/*_ct.nii.gz, "
      "derivatives/sub-*/*_seg-vert_msk.nii.gz, *_ctd.json; ctbmd-phantom --layout verse writes one)");
  app.add_option("-o,--output", out, "Model folder to write")->required();
  app.add_option("--arch", o.arch,
                 "Architecture (default: regress mosaic-cnn, classify bccnet, segment unet2d, localize "
                 "mip-localizer); see ctbmd-model runtime");
  app.add_option("--hyper", o.hyper, "Architecture hyper-parameters (JSON)")->capture_default_str();
  app.add_option("--targets", o.targets, "regress: target column(s), comma-separated (one output each)");
  app.add_option("--card-task", o.card_task, "regress: the task written on the card (default bmd-regress)");
  app.add_option("--epochs", o.epochs)->capture_default_str();
  app.add_option("--batch", o.batch)->capture_default_str();
  app.add_option("--lr", o.lr, "Learning rate")->capture_default_str();
  app.add_option("--optimizer", o.optimizer, "adam | sgd (with --momentum)")->capture_default_str();
  app.add_option("--momentum", o.momentum)->capture_default_str();
  app.add_option("--weight-decay", o.weight_decay)->capture_default_str();
  app.add_option("--milestones", o.milestones,
                 "Multi-step decay: epochs (comma-separated) where lr *= --gamma");
  app.add_option("--gamma", o.gamma)->capture_default_str();
  app.add_option("--loss", o.loss,
                 "regress: l1 | l2 (default l1); classify: ce | focal (alpha 0.6, gamma 2; default ce); "
                 "segment: dice | dice-ce | ce (default dice)");
  app.add_option("--classes", o.classes,
                 "classify: class names in output order (default normal,osteopenia,osteoporosis)");
  app.add_option("--hu-window", o.hu_window,
                 "Input window LEVEL,WIDTH in HU, then min-max scaled to [0, 1] (default: regress/classify "
                 "150,700; segment 150,700; localize 400,1200)");
  app.add_option("--spacing", o.spacing,
                 "segment: patch sampling in mm (default unet2d 1.25, dense-unet3d 2)");
  app.add_option("--patch", o.patch, "segment: patch size HxW or DxHxW (default 64x64 / 32x32x32)");
  app.add_option("--slice-step", o.slice_step, "segment unet2d: one training slice every this many mm")
      ->capture_default_str();
  app.add_option("--jitter", o.jitter,
                 "segment: random offset of patch centres from the spine (mm; default 4 / 6); localize "
                 "stage 2: simulated stage-1 error (default 10)");
  app.add_option("--per-body", o.per_body,
                 "segment dense-unet3d: patches per body and disc; localize: samples per case (stage 1: "
                 "other coverages, stage 2: windows)")
      ->capture_default_str();
  app.add_option("--stage", o.stage, "localize: 1 (L1's top from the whole scan) or 2 (L1-L4 centres)")
      ->check(CLI::IsMember({1, 2}))
      ->capture_default_str();
  app.add_option("--mip-rows", o.mip_rows, "localize: MIP rows (default 128 stage 1, 96 stage 2)");
  app.add_option("--mip-cols", o.mip_cols, "localize: MIP columns (the field's width)")
      ->capture_default_str();
  app.add_option("--row-mm", o.row_mm, "localize: mm per MIP row (default 4 stage 1, 2 stage 2)");
  app.add_option("--window-above", o.above_mm, "localize stage 2: window starts this far above L1's top (mm)")
      ->capture_default_str();
  app.add_option("--val-fraction", o.val_fraction)->capture_default_str();
  app.add_option("--augment-rotate", o.rotate, "Random rotation up to this many degrees")
      ->capture_default_str();
  app.add_option("--augment-translate", o.translate, "Random shift up to this fraction of the size")
      ->capture_default_str();
  app.add_option("--augment-scale", o.scale, "Random scaling up to this fraction")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the sampling, split, initial weights, shuffling and augmentation")
      ->capture_default_str();
  app.add_flag("--resume", o.resume,
               "Continue from <output>/checkpoint.pt (identical to an uninterrupted run)");
  return tool.main(argc, argv, [&] {
    if (o.task == "radiomics") {
      if (rad_features.empty() || rad_reference.empty())
        throw ctbmd::UsageError("ctbmd-train radiomics needs --features and --reference");
      rp.seed = uint64_t(o.seed);
      if (!o.classes.empty()) {
        std::stringstream in(o.classes);
        for (std::string c; std::getline(in, c, ',');)
          if (!c.empty()) rp.classes.push_back(c);
      }
      std::vector<std::filesystem::path> files(rad_features.begin(), rad_features.end());
      const auto res = ctbmd::radiomics::trainRadiomics(files, rad_reference, rp, out, tool.common().force);
      const auto& kept = res.card["input"]["features"];
      spdlog::info(
          "{} features kept of {}; test accuracy {}", kept.size(),
          res.card["selection"]["candidates"].get<int>(),
          res.card["metrics"].contains("test") ? res.card["metrics"]["test"]["accuracy"].dump() : "n/a");
      return 0;
    }
    o.out = out;
    o.force = tool.common().force;
    ctbmd::training::trainModel(o);
    return 0;
  });
}
