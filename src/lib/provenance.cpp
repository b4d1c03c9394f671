#include "ctbmd/provenance.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include "ctbmd/version.hpp"

namespace ctbmd {

RunContext& runContext() {
  static RunContext ctx = [] {
    RunContext c;
    c.tool = "ctbmd";
    c.start_time = isoTimeUtcNow();
    char host[256] = {0};
    if (::gethostname(host, sizeof(host) - 1) == 0) c.host = host;
    return c;
  }();
  return ctx;
}

const char* versionString() { return CTBMD_VERSION; }
const char* gitCommit() { return CTBMD_GIT_COMMIT; }

std::string isoTimeUtcNow() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json makeProvenance(const nlohmann::json& inputs, const nlohmann::json& parameters,
                              const nlohmann::json& models) {
  const RunContext& c = runContext();
  return {{"ctbmd_version", versionString()},
          {"git_commit", gitCommit()},
          {"tool", c.tool},
          {"command_line", c.command_line},
          {"host", c.host},
          {"start_time", c.start_time},
          {"threads", c.threads},
          {"inputs", inputs},
          {"parameters", parameters},
          {"models", models}};
}

void stamp(nlohmann::json& out, const std::string& schema_name, int schema_version,
           const nlohmann::json& provenance) {
  out["schema"] = {{"name", schema_name}, {"version", schema_version}};
  out["provenance"] = provenance;
}

}  // namespace ctbmd
