#pragma once
// Who made an output, from what, and how: attached to every JSON ctbmd writes.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace ctbmd {

struct RunContext {
  std::string tool;          // e.g. "ctbmd-localize"
  std::string command_line;  // shell-quoted argv
  std::string start_time;    // ISO 8601 UTC
  std::string host;
  int threads = 1;
  bool force = false;
};

/// The process-wide context, set once by the shared main wrapper.
RunContext& runContext();

const char* versionString();  // e.g. "0.1.0"
const char* gitCommit();      // commit hash the build came from ("-dirty" if modified)

/// {"ctbmd_version", "git_commit", "tool", "command_line", "host", "start_time",
///  "inputs": {name: {"path", "sha256"}}, "parameters": ..., "models": {...}}
nlohmann::json makeProvenance(const nlohmann::json& inputs, const nlohmann::json& parameters,
                              const nlohmann::json& models = nlohmann::json::object());

/// Stamps `"schema": {"name", "version"}` and `"provenance"` onto a result object.
void stamp(nlohmann::json& out, const std::string& schema_name, int schema_version,
           const nlohmann::json& provenance);

std::string isoTimeUtcNow();

}  // namespace ctbmd
