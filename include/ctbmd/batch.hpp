#pragma once
// Batches at cohort scale: stable case ids, case lists, shards, one completion record per case
// (what --resume reads) and the cohort tables built from the records (what ctbmd-merge writes).
//
// A case folder OUT/<case_id>/ is complete when its record, case.json, is in place: it is the
// case's last file, written atomically after every other, so a batch killed at any moment
// leaves each case either complete or without a record (and is run again by --resume).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ctbmd/pipeline.hpp"
#include "ctbmd/supervise.hpp"

namespace ctbmd::batch {

namespace fs = std::filesystem;

struct CaseInput {
  fs::path path;       // a CT file or a DICOM series folder
  std::string id;      // stable: see caseId()
  uint64_t bytes = 0;  // size on disk (a folder: its files), for balancing shards
};

/// The id of `input` found under `root` (an input as given on the command line): the path
/// relative to the root with the image extension dropped and its folders joined by "__"
/// ("p01/ct.nii.gz" -> "p01__ct"); a root that is the input itself gives its own stem. A name
/// that had to change on the way (a character outside A-Z a-z 0-9 . _ -, or "__" already in a
/// name) gets "-" and 8 hex digits of the relative path's sha256 appended, so two different
/// paths never share an id. `series_uid` (--series) appends "-s" and 8 hex digits of its sha256.
/// The id depends on nothing else in the batch: the same input has it in every shard and run.
std::string caseId(const fs::path& input, const fs::path& root, const std::string& series_uid = "");

/// The inputs under `roots` (files and folders searched as discoverInputs does), with ids.
std::vector<CaseInput> discoverCases(const std::vector<fs::path>& roots,
                                     const std::vector<std::string>& exclude,
                                     const std::string& series_uid = "");

/// A case list: one input per line, "PATH" or "PATH,ID" (a tab may stand for the comma: a line
/// with a tab is split at its last tab, else at its last comma, so a path may hold commas); blank
/// lines, lines starting with '#' and a first line "path" / "path,id" are skipped; a relative
/// PATH is taken from the list's folder. Without an ID, caseId() of the path relative to the
/// list's folder (or, outside it, of its absolute path). An ID must be 1-200 characters of
/// A-Z a-z 0-9 . _ - (InputError naming the line otherwise).
std::vector<CaseInput> readCaseList(const fs::path& list, const std::string& series_uid = "");

/// Writes `cases` as a case list (tab-separated "path<TAB>id", absolute paths) that readCaseList
/// reads back to the same cases: what ctbmd-run --list-cases writes for a cluster's tasks.
void writeCaseList(const fs::path& list, const std::vector<CaseInput>& cases, bool force);

/// Throws UsageError naming both inputs when two cases share an id.
void checkUniqueIds(const std::vector<CaseInput>& cases);

/// --shard I/N: the I-th (0-based, as SLURM_ARRAY_TASK_ID) of N parts of a batch.
struct Shard {
  int index = 0, count = 1;
  /// "I/N" with 0 <= I < N <= 100000 (UsageError otherwise).
  static Shard parse(const std::string& text);
  bool whole() const { return count == 1; }
  std::string tag() const;  // "I-of-N"
};

/// The cases of `shard`: every case goes, largest first (ties by id), to the part with the
/// fewest bytes so far (ties: the lower index), so parts are balanced by input size; the
/// assignment depends only on the ids and sizes, and the parts cover every case exactly once.
/// Returned sorted by id.
std::vector<CaseInput> selectShard(std::vector<CaseInput> cases, const Shard& shard);

/// sha256 of a file; of a folder (a DICOM series), sha256 over its files in name order, each as
/// "<name>\0<sha256 of the file>\n". What a case record keeps to tell an input changed.
std::string inputSha256(const fs::path& input);

/// Every option of the pipeline that can change a result (methods, protocol, statistic, rule,
/// calibration with the sha256 of its file, model cards' weights sha256 ...), as JSON.
nlohmann::json pipelineParameters(const PipelineOptions& o);
/// sha256 of the compact dump of `params` (nlohmann's keys are sorted: the dump is canonical).
std::string parametersSha256(const nlohmann::json& params);

/// The completion record of one case: OUT/<case_id>/case.json (schema ctbmd.case).
struct CaseRecord {
  std::string case_id;
  fs::path input;
  std::string input_sha256;   // inputSha256() of the input ("" when it could not be read)
  std::string params_sha256;  // parametersSha256(pipelineParameters(...))
  std::string version;        // ctbmd version that wrote it
  CaseStatus status = CaseStatus::Ok;
  int exit_code = 0;
  nlohmann::json results = nlohmann::json::object();  // results.csv column -> value
  nlohmann::json levels = nlohmann::json::array();    // levels.csv rows, column -> value
  double seconds = 0;                                 // wall time of the case
  nlohmann::json stage_seconds = nlohmann::json::object();
  nlohmann::json parameters = nlohmann::json::object();
  int threads = 0;  // worker threads the case ran with (provenance.threads)
  fs::path dir;     // the case folder it was read from (collectRecords, readRecord); not written

  /// From a case's result (its CSV rows split into columns).
  static CaseRecord fromResult(const CaseResult& r, const std::string& input_sha256,
                               const nlohmann::json& parameters);
  nlohmann::json toJson() const;  // with schema and provenance
  static CaseRecord fromJson(const nlohmann::json& j, const std::string& file);
};

fs::path recordPath(const fs::path& case_dir);
/// Writes the record atomically (the case's last file).
void writeRecord(const fs::path& case_dir, const CaseRecord& rec);
/// The record of a case folder; nullopt when there is none (an incomplete case) or it cannot
/// be read (then `why`, when given, says why).
std::optional<CaseRecord> readRecord(const fs::path& case_dir, std::string* why = nullptr);

/// Why a recorded case must run again, or "" when its record stands: the input's sha256, the
/// parameters or the ctbmd version differ from the record's, or (retry_errors) it failed.
std::string staleReason(const CaseRecord& rec, const std::string& input_sha256,
                        const std::string& params_sha256, bool retry_errors);

/// Removes what ctbmd writes into a case folder (stage files, label maps, pictures, the record,
/// temporaries a killed run left) and nothing else.
void clearCaseOutputs(const fs::path& case_dir);

/// results.csv and levels.csv of `records`, rows in case-id order, in this build's columns (a
/// column an older record lacks stays empty).
struct Tables {
  std::string results, levels;
};
Tables buildTables(std::vector<CaseRecord> records);

/// The records of every case folder directly under each of `dirs` (in parallel). A case id in
/// two folders is a UsageError naming both; an unreadable record is skipped with a warning
/// and counted in `unreadable`.
std::vector<CaseRecord> collectRecords(const std::vector<fs::path>& dirs, size_t* unreadable = nullptr);

/// What a shard run writes first: OUT/shards/<I>-of-<N>.json, the cases it owns (schema
/// ctbmd.shard) - how ctbmd-merge tells a case that never finished from one never assigned.
fs::path manifestPath(const fs::path& out, const Shard& shard);
void writeManifest(const fs::path& out, const Shard& shard, const std::vector<CaseInput>& cases,
                   size_t cases_total, const std::string& params_sha256);

struct BatchOptions {
  PipelineOptions pipeline;
  Calibration calibration = Calibration::defaultUncalibrated();
  fs::path out;
  bool force = false;         // run every case again, replacing its outputs
  bool resume = false;        // keep the cases whose records stand, run the rest
  bool retry_errors = false;  // with resume: also run the cases that failed again
  Shard shard;
  bool supervised = true;  // each case in its own worker process
  // Cases run at once (supervised only), each worker with --threads / jobs threads: a case's
  // reading, rib search and QC rendering are serial, so two one-thread cases keep two cores
  // busier than one two-thread case.
  int jobs = 1;
  SuperviseLimits limits;
  std::function<void(const CaseResult&)> on_case;  // called where the case ran, after it
};

struct BatchSummary {
  size_t cases = 0;      // in this run's part (shard) of the list
  size_t ran = 0;        // run now
  size_t skipped = 0;    // kept: their records stand (--resume)
  size_t failed = 0;     // status error (ran or kept)
  size_t unnamed = 0;    // no_spine or levels_not_named
  size_t in_tables = 0;  // rows in the results.csv written (0 for a shard)
  fs::path results;      // the results.csv written ("" for a shard: ctbmd-merge writes it)
};

/// Checks the output folder before any work (UsageError when cases of this run already have
/// outputs and neither --resume nor --force is given), runs the cases, writes each case's
/// record as it ends and appends its rows to the partial tables, then (a whole batch) rebuilds
/// results.csv and levels.csv from every record in OUT, so rows of cases run earlier stay.
BatchSummary runBatch(const std::vector<CaseInput>& all_cases, const BatchOptions& o);

/// What ctbmd-run was asked, before it is checked and resolved into a batch.
struct RunRequest {
  std::vector<std::string> inputs;   // files and folders
  fs::path out;                      // -o: the output folder
  std::string case_list;             // --case-list FILE
  std::vector<std::string> exclude;  // globs
  bool default_excludes = true;      // skip label maps and ctbmd outputs
  std::string calibration;           // --calibration FILE
  std::string shard;                 // "I/N" or ""
  bool force = false, resume = false, retry_errors = false;
  std::string supervise = "auto";  // on | off | auto (on unless a network runs)
  int jobs = 0;                    // 0: as many as threads, memory (4 GiB a case) and cases allow
  double case_timeout_s = 1800;
  double case_memory_gib = -1;  // < 0: 80 % of memory over the jobs when no network runs
  PipelineOptions pipeline;
};

/// The globs skipped unless --no-default-excludes: label maps and ctbmd's own outputs.
const std::vector<std::string>& defaultExcludes();

/// Whether the pipeline's options run a network (a learned method or model).
bool runsNetwork(const PipelineOptions& o);

/// Checks that the pipeline's options go together (a learned method has its model, the
/// mosaic readers their protocol) and loads every model card once, so a wrong folder fails
/// before the batch rather than in every case (UsageError / InputError).
void checkPipelineOptions(PipelineOptions& o);

struct PreparedRun {
  std::vector<CaseInput> cases;
  BatchOptions options;  // on_case left empty
};

/// ctbmd-run's request checked and resolved: the cases (discovered, listed, ids unique), the
/// calibration read, supervision, jobs and per-case limits decided.
PreparedRun prepareRun(RunRequest r);

/// ctbmd-merge: the records under `dirs` as one results.csv / levels.csv in `out` (and
/// merge.json: counts, the cases missing from the shard manifests found, per folder figures).
struct MergeSummary {
  size_t cases = 0, expected = 0, unreadable = 0;
  std::vector<std::string> missing;  // in a manifest, without a record
  size_t failed = 0;
};
MergeSummary mergeOutputs(const std::vector<fs::path>& dirs, const fs::path& out, bool force);

}  // namespace ctbmd::batch
