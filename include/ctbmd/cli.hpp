#pragma once
// The shared main wrapper: standard options, logging set-up, exception -> exit code.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace ctbmd {
/// Turns off what third-party libraries print to stderr themselves, past the log (GDCM's
/// dictionary and parser warnings, ITK's warning macro); GDCM's errors too when `errors_too`.
/// The executables call it unless -v; the fuzz targets always.
void quietThirdPartyLibraries(bool errors_too);
}  // namespace ctbmd

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

/// A validator accepting exactly one of `allowed`; a near miss ("erode4mm", "ACR") is answered
/// with the value meant ("did you mean 'erode-4mm'?"). Runs at parse time, before any work.
CLI::Validator oneOf(const std::vector<std::string>& allowed);

/// The values of the options every stage shares, in one place.
inline const std::vector<std::string> kStatistics = {"mean", "median"};
inline const std::vector<std::string> kContrastPhases = {"native", "arterial", "portal-venous"};

int effectiveThreads(int requested);

}  // namespace ctbmd::cli
