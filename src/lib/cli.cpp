#include "ctbmd/cli.hpp"

#include <gdcmTrace.h>
#include <itkMultiThreaderBase.h>
#include <itkObject.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/threads.hpp"

namespace ctbmd {
void quietThirdPartyLibraries(bool errors_too) {
  gdcm::Trace::WarningOff();
  gdcm::Trace::DebugOff();
  if (errors_too) gdcm::Trace::ErrorOff();
  itk::Object::GlobalWarningDisplayOff();
}
}  // namespace ctbmd

namespace ctbmd::cli {

int effectiveThreads(int requested) {
  if (requested > 0) return requested;
  if (const char* s = std::getenv("SLURM_CPUS_PER_TASK")) {
    int n = std::atoi(s);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

Tool::Tool(std::string name, std::string description)
    : name_(std::move(name)), app_(std::move(description), name_) {
  app_.set_version_flag("--version",
                        std::string(name_) + " (ctbmd) " + versionString() + " commit " + gitCommit());
  app_.add_flag("-v,--verbose", common_.verbose, "More log output (repeat for more)");
  app_.add_flag("-q,--quiet", common_.quiet, "Only warnings and errors on stderr");
  app_.add_option("--threads", common_.threads,
                  "Worker threads (default: $SLURM_CPUS_PER_TASK, else all cores)")
      ->check(CLI::NonNegativeNumber);
  app_.add_flag("--force", common_.force, "Overwrite existing outputs");
  app_.footer(
      "Exit codes: 0 ok, 1 usage error or output exists without --force, 2 input unreadable "
      "or unsuitable, 3 processing failed, 4 some cases of a batch failed.");
}

int Tool::main(int argc, char** argv, const std::function<int()>& body) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app_.exit(e);  // prints help / version / the error
    return rc == 0 ? 0 : static_cast<int>(ExitCode::Usage);
  }

  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(spdlog::color_mode::automatic);
  auto logger = std::make_shared<spdlog::logger>(name_, sink);
  logger->set_pattern(isatty(STDERR_FILENO) ? "%^[%l]%$ %v" : "%Y-%m-%dT%H:%M:%S [%n] [%l] %v");
  spdlog::level::level_enum lvl = spdlog::level::info;
  if (common_.quiet) lvl = spdlog::level::warn;
  if (common_.verbose == 1) lvl = spdlog::level::debug;
  if (common_.verbose >= 2) lvl = spdlog::level::trace;
  logger->set_level(lvl);
  spdlog::set_default_logger(logger);
  // Third-party chatter (GDCM's dictionary and parser warnings, ITK's warning macro) goes
  // straight to stderr, bypassing the log levels: it is shown only with -v.
  if (common_.verbose == 0) quietThirdPartyLibraries(common_.quiet);

  RunContext& ctx = runContext();
  ctx.tool = name_;
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + shellQuote(argv[i]);
  ctx.command_line = cmd;
  ctx.force = common_.force;
  ctx.threads = effectiveThreads(common_.threads);
  setThreads(ctx.threads);

  try {
    return body();
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return static_cast<int>(e.code());
  } catch (const itk::ExceptionObject& e) {
    spdlog::error("ITK failed: {}", e.GetDescription());
    return static_cast<int>(ExitCode::Processing);
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory; try fewer --threads or a machine with more memory");
    return static_cast<int>(ExitCode::Processing);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return static_cast<int>(ExitCode::Processing);
  }
}

namespace {
// Edits (insert, delete, substitute, swap two neighbours) from a to b: "medain" is 1 from "median".
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}
std::string folded(const std::string& s) {  // lower case, without '-', '_' and spaces
  std::string o;
  for (unsigned char c : s)
    if (c != '-' && c != '_' && c != ' ') o += static_cast<char>(std::tolower(c));
  return o;
}
}  // namespace

CLI::Validator oneOf(const std::vector<std::string>& allowed) {
  std::string desc;
  for (const auto& a : allowed) desc += (desc.empty() ? "" : "|") + a;
  return CLI::Validator(
      [allowed](std::string& v) -> std::string {
        if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return "";
        std::string best;
        size_t best_d = 99;
        for (const auto& a : allowed) {
          const std::string fa = folded(a), fv = folded(v);
          size_t d = fa == fv ? 0 : editDistance(fv, fa);
          if (fa.rfind(fv, 0) == 0 && !fv.empty()) d = std::min<size_t>(d, 1);  // a prefix: "acr"
          if (d < best_d) best_d = d, best = a;
        }
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        std::string m = "'" + v + "' is not one of " + list;
        if (best_d <= 3) m += " (did you mean '" + best + "'?)";
        return m;
      },
      "{" + desc + "}");
}

}  // namespace ctbmd::cli
