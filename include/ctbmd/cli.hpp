#pragma once
// The shared main wrapper: standard options, logging set-up, exception -> exit code.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace ctbmd::cli {

struct CommonOptions {
  int verbose = 0;
  bool quiet = false;
  int threads = 0;  // 0: $SLURM_CPUS_PER_TASK, else all hardware threads
  bool force = false;
};

class Tool {
 public:
  Tool(std::string name, std::string description);
  CLI::App& app() { return app_; }
  const CommonOptions& common() const { return common_; }
  /// Parses argv, sets up logging and threads, runs `body` and maps its exceptions to the
  /// documented exit codes. `body` returns the exit code on success paths.
  int main(int argc, char** argv, const std::function<int()>& body);

 private:
  std::string name_;
  CLI::App app_;
  CommonOptions common_;
};

/// Extra per-process thread-pool setters (e.g. LibTorch's), called with the --threads value.
void addThreadHook(std::function<void(int)> hook);
int effectiveThreads(int requested);

}  // namespace ctbmd::cli
