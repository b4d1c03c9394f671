#include "ctbmd/provenance.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>

#include "ctbmd/errors.hpp"
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

void checkStageFile(const nlohmann::json& j, const std::string& file, const std::string& schema_name,
                    int max_version, const std::string& scan_sha256, const std::string& scan_path) {
  const std::string q = "'" + file + "'";
  if (!j.is_object() || !j.contains("schema") || !j["schema"].is_object() || !j["schema"].contains("name") ||
      !j["schema"]["name"].is_string())
    throw InputError(q + " is not a ctbmd stage file (it has no \"schema\"); give the " + schema_name +
                     " file a ctbmd stage wrote");
  const std::string name = j["schema"]["name"].get<std::string>();
  if (name != schema_name)
    throw InputError(q + " is a " + name + " file where a " + schema_name + " file is needed");
  const auto& v = j["schema"].value("version", nlohmann::json());
  if (!v.is_number_integer() || v.get<int>() < 1 || v.get<int>() > max_version)
    throw InputError(q + " has " + schema_name + " schema version " + v.dump() + "; this ctbmd (" +
                     versionString() + ") reads versions 1-" + std::to_string(max_version) +
                     ": rerun the stage that wrote it with this version");
  if (scan_sha256.empty()) return;
  const auto ct = j.value("provenance", nlohmann::json::object())
                      .value("inputs", nlohmann::json::object())
                      .value("ct", nlohmann::json::object());
  if (!ct.is_object() || !ct.contains("sha256") || !ct["sha256"].is_string()) return;
  const std::string made_from = ct["sha256"].get<std::string>();
  if (made_from != scan_sha256)
    throw InputError(q + " was made from another scan ('" + ct.value("path", std::string("?")) +
                     "', sha256 " + made_from.substr(0, 12) + "...), not from '" + scan_path + "' (sha256 " +
                     scan_sha256.substr(0, 12) +
                     "...); run the earlier stages on this scan, or pass "
                     "--no-check-inputs if the file is known to belong to it");
}

}  // namespace ctbmd
