#include "ctbmd/slurm.hpp"

#include <poll.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

#include "ctbmd/batch.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/provenance.hpp"

extern char** environ;

namespace ctbmd::slurm {

using nlohmann::json;

namespace {

constexpr const char* kSubmissionSchema = "ctbmd.slurm";

struct ProcessResult {
  int rc = -1;  // exit status; -1 when it could not start or was killed
  std::string out, err;
};

// Runs argv (looked up in PATH) without a shell and collects what it prints.
ProcessResult runProcess(const std::vector<std::string>& argv) {
  ProcessResult r;
  int po[2], pe[2];
  if (pipe(po) != 0) return r;
  if (pipe(pe) != 0) {
    close(po[0]);
    close(po[1]);
    return r;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, po[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, pe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&fa, po[0]);
  posix_spawn_file_actions_addclose(&fa, pe[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int e = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(po[1]);
  close(pe[1]);
  if (e != 0) {
    close(po[0]);
    close(pe[0]);
    r.err = "cannot start '" + argv[0] + "': " + std::strerror(e);
    return r;
  }
  pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || !(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[k].fd, buf, sizeof buf);
      if (n > 0) {
        (k == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[k].fd);
        fds[k].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t a = 0;
  while (a < s.size() && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  return s.substr(a);
}

fs::path absolutePath(const fs::path& p) { return fs::absolute(p).lexically_normal(); }

fs::path slurmDir(const fs::path& out) { return out / "slurm"; }

// "1234" or "1234;cluster" (sbatch --parsable) -> "1234"
std::string parseJobId(const ProcessResult& r, const std::string& what) {
  if (r.rc != 0)
    throw ProcessingError("sbatch refused the " + what + ": " + trimmed(r.err.empty() ? r.out : r.err) +
                          (r.rc == -1 ? " (is Slurm installed, and sbatch on the PATH?)" : ""));
  std::string id = trimmed(r.out);
  id = id.substr(0, id.find(';'));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw ProcessingError("sbatch answered '" + trimmed(r.out) + "' for the " + what + ", not a job id");
  return id;
}

std::string sbatch(const std::vector<std::string>& args, const fs::path& script, const std::string& what) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(script.string());
  return parseJobId(runProcess(argv), what);
}

std::string arraySpec(const std::vector<int>& tasks, int max_running) {
  std::string s;
  // runs of consecutive indices as a-b
  for (size_t i = 0; i < tasks.size();) {
    size_t j = i;
    while (j + 1 < tasks.size() && tasks[j + 1] == tasks[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(tasks[i]) + (j > i ? "-" + std::to_string(tasks[j]) : "");
    i = j + 1;
  }
  if (max_running > 0) s += "%" + std::to_string(max_running);
  return s;
}

json readSubmission(const fs::path& out) {
  const fs::path p = slurmDir(out) / "submission.json";
  std::error_code ec;
  if (!fs::exists(p, ec))
    throw InputError("'" + out.string() +
                     "' holds no Slurm batch (no slurm/submission.json): submit one with "
                     "ctbmd-slurm submit");
  json j = readJsonFile(p);
  checkStageFile(j, p.string(), kSubmissionSchema, 1, "", "");
  return j;
}

void writeSubmission(const fs::path& out, json j) {
  stamp(j, kSubmissionSchema, 1, makeProvenance(json::object(), json::object()));
  writeJsonFile(slurmDir(out) / "submission.json", j, true);
}

// The tasks of `job` that squeue still holds: task index -> state (PENDING, RUNNING ...).
std::map<int, std::string> queuedTasks(const std::string& job, bool* reachable) {
  std::map<int, std::string> q;
  const auto r = runProcess({"squeue", "-h", "-r", "-j", job, "-o", "%i|%T"});
  if (reachable) *reachable = r.rc == 0;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const size_t bar = line.find('|'), us = line.find('_');
    if (bar == std::string::npos) continue;
    int task = -1;
    if (us != std::string::npos && us < bar) {
      try {
        task = std::stoi(line.substr(us + 1, bar - us - 1));
      } catch (const std::logic_error&) {
        continue;
      }
    }
    q[task] = trimmed(line.substr(bar + 1));
  }
  return q;
}

// Finished tasks of `job`: task index -> {state, exit code}, from sacct where accounting runs,
// else from scontrol while Slurm still remembers them (MinJobAge). `source` says which.
std::map<int, std::pair<std::string, std::string>> finishedTasks(const std::string& job,
                                                                 std::string* source) {
  std::map<int, std::pair<std::string, std::string>> f;
  auto r = runProcess({"sacct", "-n", "-P", "-X", "-j", job, "--format=JobID,State,ExitCode"});
  if (r.rc == 0 && r.err.find("disabled") == std::string::npos) {
    *source = "sacct";
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> c;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, '|');) c.push_back(x);
      if (c.size() < 3) continue;
      const size_t us = c[0].find('_');
      int task = -1;
      if (us != std::string::npos) {
        try {
          task = std::stoi(c[0].substr(us + 1));
        } catch (const std::logic_error&) {
          continue;
        }
      }
      f[task] = {c[1].substr(0, c[1].find(' ')), c[2]};
    }
    return f;
  }
  r = runProcess({"scontrol", "-o", "show", "job", job});
  *source = r.rc == 0 ? "scontrol" : "none";
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::map<std::string, std::string> kv;
    std::istringstream ws(line);
    for (std::string w; ws >> w;) {
      const size_t eq = w.find('=');
      if (eq != std::string::npos) kv[w.substr(0, eq)] = w.substr(eq + 1);
    }
    int task = -1;
    if (kv.count("ArrayTaskId")) {
      const std::string& t = kv["ArrayTaskId"];
      // a pending range "3-5%2": squeue -r reports those one by one
      if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos) continue;
      task = std::stoi(t);
    }
    f[task] = {kv["JobState"], kv["ExitCode"]};
  }
  return f;
}

}  // namespace

std::string arrayScript(const SubmitOptions& o, int tasks, const fs::path& case_list) {
  const fs::path out = absolutePath(o.out), logs = slurmDir(out) / "logs";
  std::string s = "#!/bin/bash\n";
  s += "# Written by ctbmd-slurm submit: task I of this array runs shard I/" + std::to_string(tasks) +
       " of the case list below. Resubmitting a task (ctbmd-slurm resume) runs only its unfinished cases.\n";
  s += "#SBATCH --job-name=" + o.job_name + "\n";
  std::vector<int> all(static_cast<size_t>(tasks));
  for (int i = 0; i < tasks; ++i) all[static_cast<size_t>(i)] = i;
  s += "#SBATCH --array=" + arraySpec(all, o.max_running) + "\n";
  s += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
  s += "#SBATCH --output=" + (logs / "%A_%a.log").string() + "\n";
  if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.time_limit.empty()) s += "#SBATCH --time=" + o.time_limit + "\n";
  if (!o.mem.empty()) s += "#SBATCH --mem=" + o.mem + "\n";
  if (!o.sbatch_args.empty()) {
    s += "# further sbatch options, given on sbatch's command line:";
    for (const auto& a : o.sbatch_args) s += " " + shellQuote(a);
    s += "\n";
  }
  s += "set -eu\n";
  s += "extra=()\n";
  s += "if [ \"${CTBMD_RETRY_ERRORS:-0}\" = 1 ]; then extra+=(--retry-errors); fi\n";
  s += "exec " + shellQuote((o.bin_dir / "ctbmd-run").string()) + " --case-list " +
       shellQuote(case_list.string()) + " --shard \"${SLURM_ARRAY_TASK_ID}/" + std::to_string(tasks) +
       "\" --resume -o " + shellQuote(out.string());
  for (const auto& a : o.run_args) s += " " + shellQuote(a);
  s += " \"${extra[@]}\"\n";
  return s;
}

std::string mergeScript(const SubmitOptions& o) {
  const fs::path out = absolutePath(o.out), logs = slurmDir(out) / "logs";
  std::string s = "#!/bin/bash\n";
  s += "# Written by ctbmd-slurm submit: merges the tasks' cases once every task has ended (afterany).\n";
  s += "#SBATCH --job-name=" + o.job_name + "-merge\n";
  s += "#SBATCH --cpus-per-task=" + std::to_string(std::min(o.cpus_per_task, 2)) + "\n";
  s += "#SBATCH --output=" + (logs / "merge_%j.log").string() + "\n";
  if (!o.partition.empty()) s += "#SBATCH --partition=" + o.partition + "\n";
  s += "set -eu\n";
  s += "exec " + shellQuote((o.bin_dir / "ctbmd-merge").string()) + " " + shellQuote(out.string()) + "\n";
  return s;
}

Submission submit(const SubmitOptions& o) {
  if (o.tasks < 1) throw UsageError("--tasks must be at least 1");
  if (o.inputs.empty() && o.case_list.empty())
    throw UsageError("give the CT files or folders, or --case-list FILE");
  const fs::path out = absolutePath(o.out), dir = slurmDir(out);
  std::error_code ec;
  if (fs::exists(dir / "submission.json", ec))
    throw UsageError("'" + out.string() +
                     "' holds a Slurm batch already (slurm/submission.json): ctbmd-slurm status shows it, "
                     "ctbmd-slurm resume queues its unfinished tasks; give a new -o for a new batch");
  fs::create_directories(dir / "logs");
  const fs::path list = dir / "cases.tsv";
  // The command line is checked by the ctbmd-run that will run it, now: a wrong option or a
  // missing model folder fails here, not after hours in the queue.
  std::vector<std::string> argv = {(o.bin_dir / "ctbmd-run").string()};
  argv.insert(argv.end(), o.inputs.begin(), o.inputs.end());
  if (!o.case_list.empty()) argv.insert(argv.end(), {"--case-list", o.case_list});
  argv.insert(argv.end(), o.run_args.begin(), o.run_args.end());
  argv.insert(argv.end(), {"-o", out.string(), "--force", "-q", "--list-cases", list.string()});
  const auto check = runProcess(argv);
  if (check.rc != 0)
    throw UsageError("ctbmd-run refused the batch's command line (nothing was queued):\n" +
                     trimmed(check.err));
  const auto cases = batch::readCaseList(list);
  const int tasks = static_cast<int>(std::min<size_t>(static_cast<size_t>(o.tasks), cases.size()));
  if (tasks < o.tasks)
    spdlog::info("{} case(s): {} task(s), not {} (one case per task at most)", cases.size(), tasks, o.tasks);
  const fs::path array_sh = dir / "array.sbatch", merge_sh = dir / "merge.sbatch";
  writeTextFile(array_sh, arrayScript(o, tasks, list), true);
  writeTextFile(merge_sh, mergeScript(o), true);
  fs::permissions(array_sh, fs::perms::owner_exec, fs::perm_options::add, ec);
  fs::permissions(merge_sh, fs::perms::owner_exec, fs::perm_options::add, ec);
  Submission s;
  s.tasks = tasks;
  s.cases = cases.size();
  std::vector<int> all(static_cast<size_t>(tasks));
  for (int i = 0; i < tasks; ++i) all[static_cast<size_t>(i)] = i;
  s.array = arraySpec(all, o.max_running);
  json j = {{"out", out.string()},           {"tasks", tasks},
            {"cases", cases.size()},         {"max_running", o.max_running},
            {"bin_dir", o.bin_dir.string()}, {"sbatch_args", o.sbatch_args},
            {"run_args", o.run_args},        {"partition", o.partition},
            {"submissions", json::array()}};
  if (!o.dry_run) {
    s.array_job = sbatch(o.sbatch_args, array_sh, "job array");
    std::vector<std::string> margs = o.sbatch_args;
    margs.push_back("--dependency=afterany:" + s.array_job);
    s.merge_job = sbatch(margs, merge_sh, "merge job");
    j["submissions"].push_back({{"array_job", s.array_job},
                                {"merge_job", s.merge_job},
                                {"array", s.array},
                                {"time", isoTimeUtcNow()}});
  }
  writeSubmission(out, j);
  return s;
}

json status(const fs::path& out_given) {
  const fs::path out = absolutePath(out_given);
  const json sub = readSubmission(out);
  const int tasks = sub.at("tasks").get<int>();
  json st = {{"out", out.string()}, {"tasks", tasks}, {"cases", sub.at("cases")}};
  // cases: the records, and each shard manifest's share of them
  size_t unreadable = 0;
  const auto recs = batch::collectRecords({out}, &unreadable);
  std::map<std::string, CaseStatus> status_of;
  for (const auto& r : recs) status_of[r.case_id] = r.status;
  const auto list = batch::readCaseList(slurmDir(out) / "cases.tsv");
  size_t ok = 0, failed = 0, unnamed = 0, pending = 0;
  for (const auto& c : list) {
    const auto it = status_of.find(c.id);
    if (it == status_of.end())
      ++pending;
    else if (it->second == CaseStatus::Error)
      ++failed;
    else if (it->second == CaseStatus::Ok)
      ++ok;
    else
      ++unnamed;
  }
  st["cases_ok"] = ok;
  st["cases_failed"] = failed;
  st["cases_unnamed"] = unnamed;
  st["cases_not_recorded"] = pending;
  json incomplete = json::array(), with_errors = json::array();
  for (int i = 0; i < tasks; ++i) {
    // the cases the task's manifest says it owns; before it started, the shard as computed now
    std::vector<batch::CaseInput> part;
    const fs::path mp = batch::manifestPath(out, {i, tasks});
    std::error_code mec;
    if (fs::exists(mp, mec)) {
      try {
        const json manifest = readJsonFile(mp);
        for (const auto& c : manifest.at("cases"))
          part.push_back({c.at("input").get<std::string>(), c.at("id").get<std::string>(), 0});
      } catch (const std::exception& e) {
        spdlog::warn("'{}' cannot be read ({}): its part computed again", mp.string(), e.what());
        part = batch::selectShard(list, {i, tasks});
      }
    } else {
      part = batch::selectShard(list, {i, tasks});
    }
    size_t missing = 0, errs = 0;
    for (const auto& c : part) {
      const auto it = status_of.find(c.id);
      if (it == status_of.end())
        ++missing;
      else if (it->second == CaseStatus::Error)
        ++errs;
    }
    if (missing) incomplete.push_back({{"task", i}, {"cases_not_recorded", missing}, {"cases", part.size()}});
    if (errs) with_errors.push_back({{"task", i}, {"cases_failed", errs}});
  }
  st["tasks_incomplete"] = incomplete;
  st["tasks_with_failed_cases"] = with_errors;
  // the scheduler's view of the latest submission
  const auto& subs = sub.at("submissions");
  if (!subs.empty()) {
    const json& last = subs.back();
    const std::string aj = last.at("array_job").get<std::string>(),
                      mj = last.at("merge_job").get<std::string>();
    bool reachable = false;
    const auto q = queuedTasks(aj, &reachable);
    std::string source;
    const auto f = finishedTasks(aj, &source);
    json t = json::object();
    std::map<std::string, int> counts;
    for (const auto& [task, state] : f) {
      if (task < 0) continue;
      t[std::to_string(task)] = {{"state", state.first}, {"exit_code", state.second}};
    }
    for (const auto& [task, state] : q) {
      if (task < 0) continue;
      t[std::to_string(task)] = {{"state", state}};
    }
    for (const auto& [k, v] : t.items()) ++counts[v.at("state").get<std::string>()];
    st["scheduler"] = {{"array_job", aj},       {"merge_job", mj},         {"array", last.at("array")},
                       {"squeue", reachable},   {"finished_from", source}, {"task_states", t},
                       {"state_counts", counts}};
    const auto mq = queuedTasks(mj, nullptr);
    std::string ms;
    const auto mf = finishedTasks(mj, &ms);
    std::string merge_state = mq.count(-1) ? mq.at(-1) : (mf.count(-1) ? mf.at(-1).first : "unknown");
    st["scheduler"]["merge_state"] = merge_state;
    st["scheduler"]["queued"] = !q.empty() || !mq.empty();
  }
  std::error_code ec;
  st["results_csv"] = fs::exists(out / "results.csv", ec) ? (out / "results.csv").string() : "";
  if (unreadable) st["unreadable_records"] = unreadable;
  return st;
}

std::string statusText(const json& st) {
  std::ostringstream s;
  const size_t cases = st.at("cases").get<size_t>();
  s << "batch " << st.at("out").get<std::string>() << ": " << cases << " case(s) in "
    << st.at("tasks").get<int>() << " task(s)\n";
  s << "cases: " << cases - st.at("cases_not_recorded").get<size_t>() << " of " << cases << " finished ("
    << st.at("cases_ok").get<size_t>() << " ok, " << st.at("cases_unnamed").get<size_t>()
    << " with no level named, " << st.at("cases_failed").get<size_t>() << " failed)\n";
  if (st.contains("scheduler")) {
    const auto& sc = st["scheduler"];
    s << "job array " << sc.at("array_job").get<std::string>()
      << " (--array=" << sc.at("array").get<std::string>() << "):";
    if (sc.at("state_counts").empty()) s << " no task known to Slurm any more";
    for (const auto& [k, v] : sc.at("state_counts").items()) s << " " << v.get<int>() << " " << k;
    s << "\n";
    for (const auto& [k, v] : sc.at("task_states").items())
      if (v.contains("exit_code") && v["exit_code"] != "0:0")
        s << "  task " << k << ": " << v.at("state").get<std::string>() << ", exit "
          << v["exit_code"].get<std::string>() << " (its log: slurm/logs/"
          << sc.at("array_job").get<std::string>() << "_" << k << ".log)\n";
    s << "merge job " << sc.at("merge_job").get<std::string>() << ": "
      << sc.at("merge_state").get<std::string>() << "\n";
  }
  for (const auto& t : st.at("tasks_incomplete"))
    s << "task " << t.at("task").get<int>() << ": " << t.at("cases_not_recorded").get<size_t>() << " of "
      << t.at("cases").get<size_t>() << " case(s) not recorded\n";
  if (!st.at("tasks_incomplete").empty() &&
      !(st.contains("scheduler") && st["scheduler"].value("queued", false)))
    s << "queue the unfinished tasks again with: ctbmd-slurm resume " << st.at("out").get<std::string>()
      << "\n";
  if (!st.at("results_csv").get<std::string>().empty())
    s << "results: " << st["results_csv"].get<std::string>() << "\n";
  return s.str();
}

Submission resubmit(const fs::path& out_given, int max_running, bool retry_errors) {
  const fs::path out = absolutePath(out_given);
  json sub = readSubmission(out);
  const json st = ctbmd::slurm::status(out);
  if (st.contains("scheduler") && st["scheduler"].value("queued", false))
    throw UsageError("tasks of the batch in '" + out.string() + "' are still queued or running (job " +
                     st["scheduler"]["array_job"].get<std::string>() +
                     "): wait for them (ctbmd-slurm status) or cancel them (scancel) first");
  std::set<int> todo;
  for (const auto& t : st.at("tasks_incomplete")) todo.insert(t.at("task").get<int>());
  if (retry_errors)
    for (const auto& t : st.at("tasks_with_failed_cases")) todo.insert(t.at("task").get<int>());
  Submission s;
  s.tasks = sub.at("tasks").get<int>();
  s.cases = sub.at("cases").get<size_t>();
  if (todo.empty()) {
    spdlog::info("every case of the batch in '{}' is recorded: nothing to queue", out.string());
    return s;
  }
  s.array = arraySpec(std::vector<int>(todo.begin(), todo.end()),
                      max_running >= 0 ? max_running : sub.value("max_running", 0));
  std::vector<std::string> extra = sub.at("sbatch_args").get<std::vector<std::string>>();
  std::vector<std::string> aargs = extra;
  aargs.push_back("--array=" + s.array);
  if (retry_errors) aargs.push_back("--export=ALL,CTBMD_RETRY_ERRORS=1");
  s.array_job = sbatch(aargs, slurmDir(out) / "array.sbatch", "job array");
  extra.push_back("--dependency=afterany:" + s.array_job);
  s.merge_job = sbatch(extra, slurmDir(out) / "merge.sbatch", "merge job");
  sub["submissions"].push_back({{"array_job", s.array_job},
                                {"merge_job", s.merge_job},
                                {"array", s.array},
                                {"retry_errors", retry_errors},
                                {"time", isoTimeUtcNow()}});
  sub.erase("schema");
  sub.erase("provenance");
  writeSubmission(out, sub);
  return s;
}

}  // namespace ctbmd::slurm
