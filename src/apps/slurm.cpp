// ctbmd-slurm: a batch as a Slurm job array (one shard per task) and a merge job after it.
#include "ctbmd/slurm.hpp"

#include <unistd.h>

#include <cstring>

#include "app_common.hpp"

int main(int argc, char** argv) {
  // Everything after "--" is ctbmd-run's: its options go to every task unchanged.
  std::vector<std::string> run_args;
  int own = argc;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      own = i;
      for (int k = i + 1; k < argc; ++k) run_args.push_back(argv[k]);
      break;
    }
  ctbmd::cli::Tool tool(
      "ctbmd-slurm",
      "Run a batch on Slurm: submit queues a job array (task I runs ctbmd-run --shard I/N "
      "--resume) and a merge job after it; status reads the queue and the case records; resume "
      "queues the tasks whose cases are not all recorded. ctbmd-run options go after '--'.");
  auto& app = tool.app();
  app.fallthrough();
  app.require_subcommand(1);
  ctbmd::slurm::SubmitOptions o;
  std::string out;
  auto* sub = app.add_subcommand("submit", "Queue a batch: INPUT... -o OUT --tasks N [-- ctbmd-run options]");
  sub->add_option("inputs", o.inputs, "CT files and/or folders, as ctbmd-run takes them");
  sub->add_option("--case-list", o.case_list, "A case list instead of (or beside) the inputs")
      ->check(CLI::ExistingFile);
  sub->add_option("-o,--output", out, "The batch's folder (ctbmd-run's -o); a new one per batch")->required();
  sub->add_option("--tasks", o.tasks, "Array tasks (shards), at most one per case")
      ->required()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--max-running", o.max_running,
                  "At most this many tasks at once (--array=...%K; 0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--cpus-per-task", o.cpus_per_task,
                  "CPUs per task; each task's ctbmd-run uses them (SLURM_CPUS_PER_TASK)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--partition", o.partition, "Partition (default: the cluster's default)");
  sub->add_option("--time", o.time_limit, "Time limit per task (sbatch --time, e.g. 02:00:00)");
  sub->add_option("--mem", o.mem, "Memory per task (sbatch --mem, e.g. 8G)");
  sub->add_option("--job-name", o.job_name, "Job name")->capture_default_str();
  sub->add_option("--sbatch-arg", o.sbatch_args,
                  "A further sbatch option, e.g. --sbatch-arg=--account=proj (repeatable)");
  bool dry_run = false;
  sub->add_flag("--dry-run", dry_run,
                "Check the command line and write OUT/slurm/ (list, scripts); queue nothing");
  auto* st =
      app.add_subcommand("status", "Where a batch stands: cases recorded, tasks in the queue, the merge");
  st->add_option("folder", out, "The batch's folder")->required()->check(CLI::ExistingDirectory);
  bool as_json = false;
  st->add_flag("--json", as_json, "Print the status as JSON");
  auto* re =
      app.add_subcommand("resume", "Queue again the tasks whose cases are not all recorded, and a merge");
  re->add_option("folder", out, "The batch's folder")->required()->check(CLI::ExistingDirectory);
  int max_running = -1;
  re->add_option("--max-running", max_running, "At most this many tasks at once (default: as submitted)")
      ->check(CLI::NonNegativeNumber);
  bool retry_errors = false;
  re->add_flag("--retry-errors", retry_errors, "Also queue the tasks with failed cases, and run those again");
  return tool.main(own, argv, [&] {
    namespace fs = std::filesystem;
    if (sub->parsed()) {
      o.out = out;
      o.dry_run = dry_run;
      o.run_args = run_args;
      o.bin_dir = fs::read_symlink("/proc/self/exe").parent_path();
      const auto s = ctbmd::slurm::submit(o);
      if (dry_run)
        spdlog::info("{} case(s) in {} task(s) (--array={}): scripts in {}; nothing queued", s.cases, s.tasks,
                     s.array, (fs::path(out) / "slurm").string());
      else
        spdlog::info(
            "{} case(s) in {} task(s): job array {} (--array={}), merge job {} after it; "
            "ctbmd-slurm status {} shows progress",
            s.cases, s.tasks, s.array_job, s.array, s.merge_job, out);
      if (!tool.common().quiet && !dry_run) std::printf("%s %s\n", s.array_job.c_str(), s.merge_job.c_str());
      return 0;
    }
    if (!run_args.empty()) throw ctbmd::UsageError("options after '--' go with submit only");
    if (st->parsed()) {
      const auto j = ctbmd::slurm::status(out);
      std::fputs(as_json ? (j.dump(2) + "\n").c_str() : ctbmd::slurm::statusText(j).c_str(), stdout);
      return 0;
    }
    const auto s = ctbmd::slurm::resubmit(out, max_running, retry_errors);
    if (!s.array_job.empty()) {
      spdlog::info("queued again: job array {} (--array={}), merge job {} after it", s.array_job, s.array,
                   s.merge_job);
      if (!tool.common().quiet) std::printf("%s %s\n", s.array_job.c_str(), s.merge_job.c_str());
    }
    return 0;
  });
}
