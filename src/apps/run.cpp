// ctbmd-run: the whole pipeline over files and folders, one process, one read per scan.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app_common.hpp"
#include "ctbmd/model_card.hpp"
#include "ctbmd/progress.hpp"
#include "ctbmd/supervise.hpp"

namespace {

bool table = false;

void printTable(const ctbmd::CaseResult& r) {
  if (table && !r.bmd && r.status != "error") {
    std::printf("%s\n%s: %s\n\n", r.case_id.c_str(), r.status.c_str(), r.reason.c_str());
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

// Temporary files a killed worker may have left in its case folder.
void removeTemporaries(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp-") != std::string::npos)
      std::filesystem::remove(e.path(), ec);
}

}  // namespace

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool("ctbmd-run",
                        "Run localize -> segment -> roi-extract -> bmd-estimate -> classify on CT scans");
  std::vector<std::string> inputs, exclude;
  std::string outdir, calibration;
  bool no_default_excludes = false;
  ctbmd::PipelineOptions o;
  auto& app = tool.app();
  app.add_option("inputs", inputs,
                 "CT files and/or folders (searched recursively for NIfTI/NRRD/MHA and DICOM series)")
      ->required();
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
  app.add_option("--case-memory", case_memory_gib,
                 "GiB of address space one case's worker may use (0: no limit; default 80 % of this "
                 "machine's memory when no network runs, else none: CUDA reserves far more address space)")
      ->check(CLI::NonNegativeNumber);
  std::string supervise = "auto";
  app.add_option("--supervise", supervise,
                 "Run each case in its own worker process: on | off | auto (on unless a network runs: a "
                 "worker would load the network once per case, and CUDA does not survive fork)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  return tool.main(argc, argv, [&] {
    bool force = tool.common().force;
    namespace fs = std::filesystem;
    fs::path out(outdir);
    fs::path csv = out / "results.csv";
    ctbmd::checkWritable(csv, force);
    ctbmd::checkWritable(out / "levels.csv", force);
    if (!no_default_excludes)
      for (const char* g :
           {"*_seg.nii*", "*_seg_*.nii*", "*_seg-*.nii*", "*_msk.nii*", "*_mask.nii*", "*_mask_*.nii*",
            "*_label.nii*", "*_labels.nii*", "*_label_*.nii*", "segmentation.nii*", "roi.nii*", "mosaic_*"})
        exclude.push_back(g);
    std::vector<fs::path> paths(inputs.begin(), inputs.end());
    auto cases = ctbmd::discoverInputs(paths, exclude);
    if (cases.empty()) {
      std::string list;
      for (const auto& p : paths) list += (list.empty() ? "'" : ", '") + p.string() + "'";
      throw ctbmd::InputError(
          "no CT files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or DICOM series found in " + list +
          (no_default_excludes ? "" : " (label maps and ctbmd outputs are skipped: -v lists them)"));
    }
    auto ids = ctbmd::caseIds(cases);
    ctbmd::Calibration cal = ctbmd::Calibration::defaultUncalibrated();
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
    if (!o.classify.model.empty()) ctbmd::ModelCard::load(o.classify.model, "classify");
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
      cal = ctbmd::Calibration::fromJson(ctbmd::readJsonFile(calibration), calibration);
    }
    ctbmd::SuperviseLimits limits;
    limits.timeout_s = case_timeout;
    const bool network = o.localize.method != "classical" || o.segment.method != "classical" ||
                         o.bmd.method != "calibration" || !o.classify.model.empty();
    if (case_memory_gib >= 0)
      limits.memory_bytes = static_cast<uint64_t>(case_memory_gib * 1024.0 * 1024.0 * 1024.0);
    else if (!network)
      limits.memory_bytes = ctbmd::physicalMemoryBytes() / 5 * 4;
    const bool supervised = supervise == "on" || (supervise == "auto" && !network);
    spdlog::info("{} case(s) -> {}{}", cases.size(), out.string(),
                 supervised ? "" : " (cases run in this process: --supervise on isolates them)");
    std::string text = ctbmd::resultsCsvHeader() + "\n", levels_text = ctbmd::levelsCsvHeader() + "\n";
    int failed = 0, unnamed = 0;
    // Rows are also appended, as each case ends, to results.partial.csv and
    // levels.partial.csv: a batch killed by the scheduler (a Slurm time limit) keeps what it
    // finished. At the end the complete tables are written atomically and the partial ones go.
    std::filesystem::create_directories(out);
    const fs::path partial = out / "results.partial.csv", levels_partial = out / "levels.partial.csv";
    std::ofstream part(partial, std::ios::trunc), lpart(levels_partial, std::ios::trunc);
    if (!part || !lpart)
      throw ctbmd::ProcessingError("cannot write '" + partial.string() +
                                   "' (is the output folder writable? disk full?)");
    part << text << std::flush;
    lpart << levels_text << std::flush;
    ctbmd::Progress prog("cases", static_cast<long>(cases.size()));
    for (size_t i = 0; i < cases.size(); ++i) {
      // with --force, temporaries a killed earlier run left in this case's folder go first
      if (force) removeTemporaries(out / ids[i]);
      // Each case in its own worker process: a signal in a library, a runaway allocation or
      // a hang becomes this case's error row, and the batch goes on.
      auto work = [&, i]() {
        auto r = ctbmd::runCase(cases[i], ids[i], out / ids[i], o, cal, force);
        ctbmd::logSummary(r);
        printTable(r);
        // status, the results.csv row, then the levels.csv rows: one line each
        return r.status + "\n" + ctbmd::resultsCsvRow(r) + "\n" + ctbmd::levelsCsvRows(r);
      };
      std::string status, row, level_rows;
      auto unpack = [&](const std::string& a) {
        const size_t e1 = a.find('\n'), e2 = a.find('\n', e1 + 1);
        status = a.substr(0, e1);
        row = a.substr(e1 + 1, e2 - e1 - 1);
        level_rows = e2 == std::string::npos ? std::string() : a.substr(e2 + 1);
      };
      if (!supervised) {
        unpack(work());
      } else {
        auto child = ctbmd::runSupervised(work, limits);
        if (child.ok) {
          unpack(child.answer);
        } else {
          ctbmd::CaseResult r;
          r.case_id = ids[i];
          r.input = cases[i];
          r.status = status = "error";
          r.error = "'" + cases[i].string() + "': the case's worker " + child.failure;
          r.exit_code = static_cast<int>(ctbmd::ExitCode::Processing);
          r.seconds = child.seconds;
          ctbmd::logSummary(r);
          row = ctbmd::resultsCsvRow(r);
          level_rows = ctbmd::levelsCsvRows(r);
          removeTemporaries(out / ids[i]);
        }
      }
      if (status == "error") ++failed;
      if (status == "no_spine" || status == "levels_not_named") ++unnamed;
      text += row + "\n";
      levels_text += level_rows;
      part << row << "\n" << std::flush;
      lpart << level_rows << std::flush;
      prog.set(static_cast<long>(i + 1));
    }
    prog.finish();
    ctbmd::writeTextFile(csv, text, force);
    ctbmd::writeTextFile(out / "levels.csv", levels_text, force);
    part.close();
    lpart.close();
    std::error_code ec;
    std::filesystem::remove(partial, ec);
    std::filesystem::remove(levels_partial, ec);
    spdlog::info(
        "{} of {} case(s) ok{}; results in {}", cases.size() - failed - unnamed, cases.size(),
        unnamed ? ", " + std::to_string(unnamed) + " with no level named (see status and reason)" : "",
        csv.string());
    if (failed == static_cast<int>(cases.size())) return static_cast<int>(ctbmd::ExitCode::Input);
    return failed ? static_cast<int>(ctbmd::ExitCode::BatchPartial) : 0;
  });
}
