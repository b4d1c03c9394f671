// ctbmd-run: the whole pipeline over files and folders, one process, one read per scan.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app_common.hpp"
#include "ctbmd/batch.hpp"
#include "ctbmd/model_card.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/radiomics_model.hpp"

namespace {

bool table = false;

void printTable(const ctbmd::CaseResult& r) {
  if (table && !r.bmd && r.status != ctbmd::CaseStatus::Error) {
    std::printf("%s\n%s: %s\n\n", r.case_id.c_str(), ctbmd::toString(r.status).c_str(), r.reason.c_str());
    std::fflush(stdout);
  }
  if (!table || !r.bmd) return;
  {
    std::printf("%s\n%-4s %-8s %9s %9s %8s  %s\n", r.case_id.c_str(), "lvl", "status", "HU", "BMD", "used",
                "flags");
    for (const auto& l : r.bmd->levels) {
      std::string flags;
      for (const auto& f : l.flags) flags += f + " ";
      bool used =
          std::find(r.bmd->levels_used.begin(), r.bmd->levels_used.end(), l.name) != r.bmd->levels_used.end();
      std::printf("%-4s %-8s %9.1f %9.1f %8s  %s\n", l.name.c_str(), l.usable ? "ok" : "-", l.hu, l.bmd,
                  used ? "yes" : "", flags.c_str());
    }
    std::printf("L1-L2 BMD %s mg/cm3 -> %s%s\n\n",
                r.bmd->bmd_l1l2 ? std::to_string(*r.bmd->bmd_l1l2).substr(0, 6).c_str() : "n/a",
                r.classification->category.c_str(), r.bmd->calibration.calibrated ? "" : " (uncalibrated)");
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  ctbmd::radiomics::registerRadiomicsRule();
  ctbmd::cli::Tool tool("ctbmd-run",
                        "Run localize -> segment -> roi-extract -> bmd-estimate -> classify on CT scans");
  std::vector<std::string> inputs, exclude;
  std::string outdir, calibration;
  bool no_default_excludes = false;
  ctbmd::PipelineOptions o;
  auto& app = tool.app();
  app.add_option(
      "inputs", inputs,
      "CT files and/or folders (searched recursively for NIfTI/NRRD/MHA and DICOM series); case ids "
      "are their paths relative to the folder given");
  app.add_option("-o,--output", outdir, "Output folder: <case_id>/... per case and results.csv")->required();
  app.add_option("-c,--calibration", calibration, "Calibration JSON for bmd-estimate (else uncalibrated)");
  app.add_option("-p,--protocol", o.roi.protocol, "ROI protocol: ellipse-s1 | erode-4mm | mosaic-392")
      ->check(ctbmd::cli::oneOf(ctbmd::methods::names(ctbmd::methods::Roi{})))
      ->capture_default_str();
  app.add_option("--statistic", o.bmd.statistic, "ROI statistic for BMD: mean | median")
      ->check(ctbmd::cli::oneOf(ctbmd::cli::kStatistics))
      ->capture_default_str();
  app.add_option("--localize-method", o.localize.method,
                 "classical (weight-free default) | mip-localizer (learned; needs --localize-model)")
      ->check(CLI::IsMember(ctbmd::methods::names(ctbmd::methods::Localize{})))
      ->capture_default_str();
  app.add_option("--localize-model", o.localize.model,
                 "mip-localizer: model folder with stage1/ and stage2/");
  app.add_option("--level-hint", o.localize.level_hint,
                 "NAME[@Z]: a level you know, for scans showing neither anchor (see ctbmd-localize --help)");
  app.add_option("--segment-method", o.segment.method,
                 "classical (weight-free default) | unet2d | dense-unet3d (learned; need --segment-model)")
      ->check(CLI::IsMember(ctbmd::methods::names(ctbmd::methods::Segment{})))
      ->capture_default_str();
  app.add_option("--segment-model", o.segment.model, "Model folder of a learned segmenter (task segment)");
  app.add_flag("--crop3d", o.roi.crop3d,
               "Also write 3-D body crops (roi-extract --crop3d; implied by --bmd-method densenet3d)");
  ctbmd::cli::addBmdMethodOptions(app, o.bmd);
  ctbmd::cli::addClassifyOptions(app, o.classify);
  app.add_option("--calibrate", o.calibrate,
                 "Calibrate each scan from itself: rods (a phantom under the patient) | internal (air, fat, "
                 "muscle, blood)")
      ->check(CLI::IsMember({"rods", "internal"}));
  app.add_option("--phantom", o.phantom,
                 "--calibrate rods: phantom definition (esp-ha, k2hpo4-5rod, or JSON)")
      ->capture_default_str();
  app.add_option_function<std::string>(
      "--tissues", [&o](const std::string& v) { o.tissues = v; },
      "--calibrate internal: reference-tissue table JSON");
  app.add_option("--series", o.read.series_uid, "DICOM series UID to pick in folders with several series");
  app.add_option("--exclude", exclude, "Skip files/folders whose name matches this glob (repeatable)");
  app.add_flag(
      "--no-default-excludes", no_default_excludes,
      "Also read files that look like label maps or ctbmd outputs (*_seg*.nii*, *_msk.nii*, "
      "*_mask*.nii*, *_label*.nii*, segmentation.nii*, roi.nii*, mosaic_*); -v lists what was skipped");
  app.add_flag("--table", table, "Print the per-level table of each case on stdout");
  double case_timeout = 1800, case_memory_gib = -1;
  app.add_option("--case-timeout", case_timeout,
                 "Seconds one case may take before its worker is stopped and it becomes an error row (0: no "
                 "limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--case-memory", case_memory_gib,
         "GiB of address space one case's worker may use (0: no limit; default 80 % of this "
         "machine's memory over --jobs when no network runs, else none: CUDA reserves far more address "
         "space)")
      ->check(CLI::NonNegativeNumber);
  std::string supervise = "auto";
  app.add_option("--supervise", supervise,
                 "Run each case in its own worker process: on | off | auto (on unless a network runs: a "
                 "worker would load the network once per case, and CUDA does not survive fork)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  std::string case_list, shard_text;
  bool resume = false, retry_errors = false;
  app.add_option("--case-list", case_list,
                 "File with one input per line: PATH or PATH,ID (relative paths from the list's folder); "
                 "instead of or beside the inputs")
      ->check(CLI::ExistingFile);
  app.add_option("--shard", shard_text,
                 "I/N: run only the I-th of N parts of the batch (I from 0, as SLURM_ARRAY_TASK_ID; parts "
                 "balanced by input size); ctbmd-merge OUT then writes results.csv")
      ->check([](const std::string& v) {
        try {
          ctbmd::batch::Shard::parse(v);
        } catch (const ctbmd::Error& e) {
          return std::string(e.what());
        }
        return std::string();
      });
  app.add_flag("--resume", resume,
               "Keep the cases whose case.json records the same input sha256, parameters and ctbmd version; "
               "run the others (unfinished, changed, new)");
  app.add_flag("--retry-errors", retry_errors, "With --resume: also run the cases that failed again");
  int jobs = 0;
  app.add_option(
         "--jobs", jobs,
         "Cases at once, each in its own worker with --threads/JOBS threads (a case is partly serial: "
         "two one-thread cases finish 8 phantoms in 0.67 of the time of one two-thread case). Default "
         "(0): as many as threads, at most one per 4 GiB of memory and one per case; 1 when cases run "
         "in this process")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  std::string list_cases;
  app.add_option(
      "--list-cases", list_cases,
      "Check the command line (options, inputs, model cards), write the cases it would run to this "
      "file as a case list (path<TAB>id) and stop: what ctbmd-slurm submit does before it queues "
      "anything");
  return tool.main(argc, argv, [&] {
    namespace fs = std::filesystem;
    if (inputs.empty() && case_list.empty())
      throw ctbmd::UsageError("give the CT files or folders to run, or --case-list FILE");
    if (retry_errors && !resume) throw ctbmd::UsageError("--retry-errors goes with --resume");
    ctbmd::batch::BatchOptions b;
    b.out = outdir;
    b.force = tool.common().force;
    b.resume = resume;
    b.retry_errors = retry_errors;
    if (!shard_text.empty()) b.shard = ctbmd::batch::Shard::parse(shard_text);
    if (b.resume && b.force)
      throw ctbmd::UsageError(
          "--resume keeps the finished cases and --force runs them all again: give one of them");
    if (!no_default_excludes)
      for (const char* g :
           {"*_seg.nii*", "*_seg_*.nii*", "*_seg-*.nii*", "*_msk.nii*", "*_mask.nii*", "*_mask_*.nii*",
            "*_label.nii*", "*_labels.nii*", "*_label_*.nii*", "segmentation.nii*", "roi.nii*", "mosaic_*"})
        exclude.push_back(g);
    std::vector<ctbmd::batch::CaseInput> cases;
    if (!inputs.empty()) {
      std::vector<fs::path> paths(inputs.begin(), inputs.end());
      cases = ctbmd::batch::discoverCases(paths, exclude, o.read.series_uid);
      if (cases.empty()) {
        std::string list;
        for (const auto& p : paths) list += (list.empty() ? "'" : ", '") + p.string() + "'";
        throw ctbmd::InputError(
            "no CT files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or DICOM series found in " + list +
            (no_default_excludes ? "" : " (label maps and ctbmd outputs are skipped: -v lists them)"));
      }
    }
    if (!case_list.empty()) {
      auto listed = ctbmd::batch::readCaseList(case_list, o.read.series_uid);
      cases.insert(cases.end(), listed.begin(), listed.end());
    }
    ctbmd::batch::checkUniqueIds(cases);
    if (o.bmd.method == "mosaic-cnn" && o.roi.protocol != "mosaic-392")
      throw ctbmd::UsageError(
          "--bmd-method mosaic-cnn reads the mosaic-392 images: add --protocol mosaic-392");
    o.localize.device = o.segment.device = o.classify.device = o.bmd.device;
    if (o.bmd.method == "densenet3d") o.roi.crop3d = true;
    if (o.classify.rule == "bccnet" && o.roi.protocol != "mosaic-392")
      throw ctbmd::UsageError("--rule bccnet reads the mosaic-392 images: add --protocol mosaic-392");
    if (o.localize.method != "classical" && o.localize.model.empty())
      throw ctbmd::UsageError("--localize-method " + o.localize.method + " needs --localize-model FOLDER");
    if (o.segment.method != "classical" && o.segment.model.empty())
      throw ctbmd::UsageError("--segment-method " + o.segment.method + " needs --segment-model FOLDER");
    // Model cards are checked before the batch, so a wrong folder fails once, not per case.
    if (!o.segment.model.empty()) ctbmd::ModelCard::load(o.segment.model, "segment");
    if (!o.bmd.model.empty()) ctbmd::ModelCard::load(o.bmd.model, "bmd-regress");
    const bool radiomics_rule = o.classify.rule == "radiomics-rf";
    if (radiomics_rule && o.classify.model.empty())
      throw ctbmd::UsageError(
          "--rule radiomics-rf needs --classify-model FOLDER (from ctbmd-train radiomics)");
    if (radiomics_rule)
      ctbmd::radiomics::RadiomicsModel::load(o.classify.model);  // card, forest and feature set, once
    else if (!o.classify.model.empty())
      ctbmd::ModelCard::load(o.classify.model, "classify");
    if (!o.localize.model.empty())
      for (const char* st : {"stage1", "stage2"})
        ctbmd::ModelCard::load(std::filesystem::path(o.localize.model) / st, "localize");
    if (o.classify.rule == "bccnet" && o.classify.model.empty())
      throw ctbmd::UsageError("--rule bccnet needs --classify-model FOLDER");
    if (o.bmd.method != "calibration" && o.bmd.model.empty())
      throw ctbmd::UsageError("--bmd-method " + o.bmd.method + " needs --bmd-model FOLDER");
    if (!calibration.empty() && !o.calibrate.empty())
      throw ctbmd::UsageError("give either --calibration FILE or --calibrate rods|internal, not both");
    if (!calibration.empty()) {
      o.calibration = calibration;
      b.calibration = ctbmd::Calibration::fromJson(ctbmd::readJsonFile(calibration), calibration);
    }
    b.limits.timeout_s = case_timeout;
    const bool network = o.localize.method != "classical" || o.segment.method != "classical" ||
                         o.bmd.method != "calibration" || (!o.classify.model.empty() && !radiomics_rule);
    b.supervised = supervise == "on" || (supervise == "auto" && !network);
    if (jobs == 0) {  // auto: the threads, bounded by memory (4 GiB a case) and the cases
      const uint64_t per_case = uint64_t(4) << 30;
      const int by_memory = static_cast<int>(std::max<uint64_t>(1, ctbmd::physicalMemoryBytes() / per_case));
      jobs = b.supervised ? std::max(1, std::min({ctbmd::runContext().threads, by_memory,
                                                  static_cast<int>(std::max<size_t>(1, cases.size()))}))
                          : 1;
    }
    if (case_memory_gib >= 0)
      b.limits.memory_bytes = static_cast<uint64_t>(case_memory_gib * 1024.0 * 1024.0 * 1024.0);
    else if (!network)  // 80 % of the machine, shared by the workers at once
      b.limits.memory_bytes = ctbmd::physicalMemoryBytes() / 5 * 4 / static_cast<uint64_t>(jobs);
    b.jobs = jobs;
    if (jobs > 1 && !b.supervised)
      throw ctbmd::UsageError("--jobs " + std::to_string(jobs) +
                              " runs cases in worker processes: a learned method runs them in this process "
                              "(--supervise auto); add --supervise on, or leave --jobs at 1");
    b.pipeline = o;
    b.on_case = [](const ctbmd::CaseResult& r) {
      ctbmd::logSummary(r);
      printTable(r);
    };
    if (!list_cases.empty()) {
      ctbmd::batch::writeCaseList(list_cases, cases, b.force);
      spdlog::info("{} case(s) listed in {}; nothing run", cases.size(), list_cases);
      return 0;
    }
    const auto s = ctbmd::batch::runBatch(cases, b);
    const size_t ok = s.cases - s.failed - s.unnamed;
    spdlog::info(
        "{} of {} case(s) ok{}{}{}", ok, s.cases,
        s.unnamed ? ", " + std::to_string(s.unnamed) + " with no level named (see status and reason)" : "",
        s.skipped ? "; " + std::to_string(s.skipped) + " kept from before (--resume), " +
                        std::to_string(s.ran) + " run now"
                  : "",
        s.results.empty()
            ? "; merge the shards with: ctbmd-merge " + b.out.string()
            : "; results in " + s.results.string() + " (" + std::to_string(s.in_tables) + " case(s))");
    if (s.cases > 0 && s.failed == s.cases) return static_cast<int>(ctbmd::ExitCode::Input);
    return s.failed ? static_cast<int>(ctbmd::ExitCode::BatchPartial) : 0;
  });
}
