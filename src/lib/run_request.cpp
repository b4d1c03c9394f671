// ctbmd-run's request checked and resolved into a batch (ctbmd/batch.hpp prepareRun): the
// option combinations, model cards, cases, calibration, supervision, jobs and limits.
#include <algorithm>
#include <string>
#include <vector>

#include "ctbmd/batch.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/model_card.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"

namespace ctbmd::batch {

namespace {
// Memory one supervised case is given when jobs are chosen automatically (GiB): the largest
// pipeline peak measured here is ~2.5 x a 512 x 512 x 1000 int16 volume (~1.3 GiB), with room.
constexpr uint64_t kAutoJobMemoryBytes = uint64_t(4) << 30;
// Share of the machine's memory the workers of a batch may map together when no network runs.
constexpr uint64_t kWorkerMemoryNumerator = 4, kWorkerMemoryDenominator = 5;

std::vector<CaseInput> casesOf(const RunRequest& r) {
  std::vector<std::string> exclude = r.exclude;
  if (r.default_excludes) exclude.insert(exclude.end(), defaultExcludes().begin(), defaultExcludes().end());
  std::vector<CaseInput> cases;
  if (!r.inputs.empty()) {
    std::vector<fs::path> paths(r.inputs.begin(), r.inputs.end());
    cases = discoverCases(paths, exclude, r.pipeline.read.series_uid);
    if (cases.empty()) {
      std::string list;
      for (const auto& p : paths) list += (list.empty() ? "'" : ", '") + p.string() + "'";
      throw InputError(
          "no CT files (.nii, .nii.gz, .nrrd, .nhdr, .mha, .mhd) or DICOM series found in " + list +
          (r.default_excludes ? " (label maps and ctbmd outputs are skipped: -v lists them)" : ""));
    }
  }
  if (!r.case_list.empty()) {
    auto listed = readCaseList(r.case_list, r.pipeline.read.series_uid);
    cases.insert(cases.end(), listed.begin(), listed.end());
  }
  checkUniqueIds(cases);
  return cases;
}
}  // namespace

const std::vector<std::string>& defaultExcludes() {
  static const std::vector<std::string> globs = {
      "*_seg.nii*",   "*_seg_*.nii*",  "*_seg-*.nii*",   "*_msk.nii*",        "*_mask.nii*", "*_mask_*.nii*",
      "*_label.nii*", "*_labels.nii*", "*_label_*.nii*", "segmentation.nii*", "roi.nii*",    "mosaic_*"};
  return globs;
}

bool runsNetwork(const PipelineOptions& o) {
  return o.localize.method != "classical" || o.segment.method != "classical" ||
         o.bmd.method != "calibration" || (!o.classify.model.empty() && o.classify.rule != "radiomics-rf");
}

void checkPipelineOptions(PipelineOptions& o) {
  if (o.bmd.method == "mosaic-cnn" && o.roi.protocol != "mosaic-392")
    throw UsageError("--bmd-method mosaic-cnn reads the mosaic-392 images: add --protocol mosaic-392");
  o.localize.device = o.segment.device = o.classify.device = o.bmd.device;
  if (o.bmd.method == "densenet3d") o.roi.crop3d = true;
  if (o.classify.rule == "bccnet" && o.roi.protocol != "mosaic-392")
    throw UsageError("--rule bccnet reads the mosaic-392 images: add --protocol mosaic-392");
  if (o.localize.method != "classical" && o.localize.model.empty())
    throw UsageError("--localize-method " + o.localize.method + " needs --localize-model FOLDER");
  if (o.segment.method != "classical" && o.segment.model.empty())
    throw UsageError("--segment-method " + o.segment.method + " needs --segment-model FOLDER");
  // Model cards are checked before the batch, so a wrong folder fails once, not per case.
  if (!o.segment.model.empty()) ModelCard::load(o.segment.model, "segment");
  if (!o.bmd.model.empty()) ModelCard::load(o.bmd.model, "bmd-regress");
  const bool radiomics_rule = o.classify.rule == "radiomics-rf";
  if (radiomics_rule && o.classify.model.empty())
    throw UsageError("--rule radiomics-rf needs --classify-model FOLDER (from ctbmd-train radiomics)");
  if (radiomics_rule)
    checkRadiomicsModel(o.classify.model);  // card, forest and feature set, once
  else if (!o.classify.model.empty())
    ModelCard::load(o.classify.model, "classify");
  if (!o.localize.model.empty())
    for (const char* st : {"stage1", "stage2"}) ModelCard::load(fs::path(o.localize.model) / st, "localize");
  if (o.classify.rule == "bccnet" && o.classify.model.empty())
    throw UsageError("--rule bccnet needs --classify-model FOLDER");
  if (o.bmd.method != "calibration" && o.bmd.model.empty())
    throw UsageError("--bmd-method " + o.bmd.method + " needs --bmd-model FOLDER");
}

PreparedRun prepareRun(RunRequest r) {
  if (r.inputs.empty() && r.case_list.empty())
    throw UsageError("give the CT files or folders to run, or --case-list FILE");
  if (r.retry_errors && !r.resume) throw UsageError("--retry-errors goes with --resume");
  PreparedRun run;
  BatchOptions& b = run.options;
  b.out = r.out;
  b.force = r.force;
  b.resume = r.resume;
  b.retry_errors = r.retry_errors;
  if (!r.shard.empty()) b.shard = Shard::parse(r.shard);
  if (b.resume && b.force)
    throw UsageError("--resume keeps the finished cases and --force runs them all again: give one of them");
  run.cases = casesOf(r);
  checkPipelineOptions(r.pipeline);
  if (!r.calibration.empty() && !r.pipeline.calibrate.empty())
    throw UsageError("give either --calibration FILE or --calibrate rods|internal, not both");
  if (!r.calibration.empty()) {
    r.pipeline.calibration = r.calibration;
    b.calibration = Calibration::fromJson(readJsonFile(r.calibration), r.calibration);
  }
  b.limits.timeout_s = r.case_timeout_s;
  const bool network = runsNetwork(r.pipeline);
  b.supervised = r.supervise == "on" || (r.supervise == "auto" && !network);
  int jobs = r.jobs;
  if (jobs == 0) {  // auto: the threads, bounded by memory and the cases
    const int by_memory =
        static_cast<int>(std::max<uint64_t>(1, physicalMemoryBytes() / kAutoJobMemoryBytes));
    jobs = b.supervised ? std::max(1, std::min({runContext().threads, by_memory,
                                                static_cast<int>(std::max<size_t>(1, run.cases.size()))}))
                        : 1;
  }
  if (r.case_memory_gib >= 0)
    b.limits.memory_bytes = static_cast<uint64_t>(r.case_memory_gib * 1024.0 * 1024.0 * 1024.0);
  else if (!network)  // shared by the workers at once
    b.limits.memory_bytes = physicalMemoryBytes() / kWorkerMemoryDenominator * kWorkerMemoryNumerator /
                            static_cast<uint64_t>(jobs);
  b.jobs = jobs;
  if (jobs > 1 && !b.supervised)
    throw UsageError("--jobs " + std::to_string(jobs) +
                     " runs cases in worker processes: a learned method runs them in this process "
                     "(--supervise auto); add --supervise on, or leave --jobs at 1");
  b.pipeline = r.pipeline;
  return run;
}

}  // namespace ctbmd::batch
