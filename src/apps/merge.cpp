// ctbmd-merge: the case records of one or more ctbmd-run output folders (shards) as one cohort.
#include "app_common.hpp"
#include "ctbmd/batch.hpp"

int main(int argc, char** argv) {
  ctbmd::cli::Tool tool(
      "ctbmd-merge",
      "Combine ctbmd-run output folders (the shards of a batch, or reruns) into one results.csv "
      "and levels.csv: every case's record (OUT/<case_id>/case.json), checked for cases in two "
      "folders and for cases a shard owned that never finished");
  std::vector<std::string> dirs;
  std::string outdir;
  auto& app = tool.app();
  app.add_option("folders", dirs, "ctbmd-run output folders (-o of each shard)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option(
      "-o,--output", outdir,
      "Folder for results.csv, levels.csv and merge.json (default: the first folder, where a batch's "
      "shards wrote into one folder)");
  return tool.main(argc, argv, [&] {
    namespace fs = std::filesystem;
    const fs::path out = outdir.empty() ? fs::path(dirs.front()) : fs::path(outdir);
    std::vector<fs::path> folders(dirs.begin(), dirs.end());
    // The folder's own tables are what a merge into it rewrites: no --force needed for them.
    const bool in_place = outdir.empty() || fs::equivalent(out, folders.front());
    const auto m = ctbmd::batch::mergeOutputs(folders, out, tool.common().force || in_place);
    spdlog::info("{} case(s) from {} folder(s) -> {}{}{}", m.cases, folders.size(),
                 (out / "results.csv").string(),
                 m.failed ? "; " + std::to_string(m.failed) + " failed (status error)" : "",
                 m.unreadable ? "; " + std::to_string(m.unreadable) + " unreadable record(s) skipped" : "");
    if (!m.missing.empty()) {
      std::string list;
      for (size_t i = 0; i < m.missing.size() && i < 10; ++i) list += (i ? ", " : "") + m.missing[i];
      spdlog::error(
          "{} of the {} case(s) the shards owned have no record (unfinished or never run): {}{}; "
          "rerun their shards with --resume, then merge again",
          m.missing.size(), m.expected, list, m.missing.size() > 10 ? ", ..." : "");
      return static_cast<int>(ctbmd::ExitCode::BatchPartial);
    }
    return 0;
  });
}
