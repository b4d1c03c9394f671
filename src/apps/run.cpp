// ctbmd-run: the whole pipeline over files and folders, one process, one read per scan.
#include <cstdio>

#include "app_common.hpp"
#include "ctbmd/batch.hpp"
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
  ctbmd::batch::RunRequest req;
  auto& o = req.pipeline;
  std::string outdir;
  bool no_default_excludes = false;
  auto& app = tool.app();
  app.add_option(
      "inputs", req.inputs,
      "CT files and/or folders (searched recursively for NIfTI/NRRD/MHA and DICOM series); case ids "
      "are their paths relative to the folder given");
  app.add_option("-o,--output", outdir, "Output folder: <case_id>/... per case and results.csv")->required();
  app.add_option("-c,--calibration", req.calibration,
                 "Calibration JSON for bmd-estimate (else uncalibrated)");
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
  app.add_option("--exclude", req.exclude, "Skip files/folders whose name matches this glob (repeatable)");
  app.add_flag(
      "--no-default-excludes", no_default_excludes,
      "Also read files that look like label maps or ctbmd outputs (*_seg*.nii*, *_msk.nii*, "
      "*_mask*.nii*, *_label*.nii*, segmentation.nii*, roi.nii*, mosaic_*); -v lists what was skipped");
  app.add_flag("--table", table, "Print the per-level table of each case on stdout");
  app.add_option("--case-timeout", req.case_timeout_s,
                 "Seconds one case may take before its worker is stopped and it becomes an error row (0: no "
                 "limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option(
         "--case-memory", req.case_memory_gib,
         "GiB of address space one case's worker may use (0: no limit; default 80 % of this "
         "machine's memory over --jobs when no network runs, else none: CUDA reserves far more address "
         "space)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--supervise", req.supervise,
                 "Run each case in its own worker process: on | off | auto (on unless a network runs: a "
                 "worker would load the network once per case, and CUDA does not survive fork)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--case-list", req.case_list,
                 "File with one input per line: PATH or PATH,ID (relative paths from the list's folder); "
                 "instead of or beside the inputs")
      ->check(CLI::ExistingFile);
  app.add_option("--shard", req.shard,
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
  app.add_flag("--resume", req.resume,
               "Keep the cases whose case.json records the same input sha256, parameters and ctbmd version; "
               "run the others (unfinished, changed, new)");
  app.add_flag("--retry-errors", req.retry_errors, "With --resume: also run the cases that failed again");
  app.add_option(
         "--jobs", req.jobs,
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
    req.out = outdir;
    req.force = tool.common().force;
    req.default_excludes = !no_default_excludes;
    auto [cases, b] = ctbmd::batch::prepareRun(req);
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
