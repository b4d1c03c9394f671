#pragma once
// A batch on a Slurm cluster: one job array whose task I runs shard I/N of a case list
// (ctbmd-run --shard I/N --resume), and a merge job that runs after every task has ended
// (--dependency=afterany). Nothing here names a node or a partition unless the user does.
//
// OUT/slurm/ holds what a person needs to see what was queued: cases.tsv (the case list every
// task reads), array.sbatch and merge.sbatch (the scripts), logs/<array>_<task>.log, and
// submission.json (the job ids of every submission).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ctbmd::slurm {

namespace fs = std::filesystem;

struct SubmitOptions {
  std::vector<std::string> inputs;  // CT files and folders, as ctbmd-run takes them
  std::string case_list;            // or a case list
  fs::path out;                     // ctbmd-run's -o: the batch's folder
  int tasks = 1;                    // array tasks (shards); at most one per case
  int max_running = 0;              // --array=...%K: at most K tasks at once (0: no limit of ours)
  // --cpus-per-task: each task's ctbmd-run takes its --threads from SLURM_CPUS_PER_TASK
  int cpus_per_task = 2;
  std::string partition;   // "" : the cluster's default partition
  std::string time_limit;  // --time per task ("" : the partition's default)
  std::string mem;         // --mem per task ("" : the partition's default)
  std::string job_name = "ctbmd";
  std::vector<std::string> sbatch_args;  // further sbatch options, passed on as given
  std::vector<std::string> run_args;     // ctbmd-run options (protocol, calibration, ...)
  fs::path bin_dir;                      // where ctbmd-run and ctbmd-merge are
  bool dry_run = false;                  // write the list and scripts, queue nothing
};

/// The job-array script: #SBATCH lines, then ctbmd-run over shard $SLURM_ARRAY_TASK_ID/tasks.
std::string arrayScript(const SubmitOptions& o, int tasks, const fs::path& case_list);
/// The merge job's script: ctbmd-merge OUT.
std::string mergeScript(const SubmitOptions& o);

struct Submission {
  std::string array_job, merge_job;  // Slurm job ids ("" for a dry run)
  std::string array;                 // the --array value queued ("0-15%4", "2,7")
  int tasks = 0;
  size_t cases = 0;
};

/// Checks the command line through `ctbmd-run --list-cases` (so a wrong option fails here, not
/// after a wait in the queue), writes OUT/slurm/, and queues the array and the merge.
Submission submit(const SubmitOptions& o);

/// Where the batch in `out` stands: cases recorded (ok / failed / not yet, from the records and
/// shard manifests), the scheduler's view of each task and of the merge (squeue; sacct where
/// accounting runs, else scontrol while Slurm still remembers the job), and the tasks whose
/// cases are not all recorded.
nlohmann::json status(const fs::path& out);
/// status() for people, one line per fact.
std::string statusText(const nlohmann::json& st);

/// Queues again the tasks whose cases are not all recorded (with retry_errors also those with
/// failed cases), and a new merge after them. Refused while a task of the batch is queued or
/// running.
Submission resubmit(const fs::path& out, int max_running, bool retry_errors);

}  // namespace ctbmd::slurm
