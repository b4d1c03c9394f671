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

/// Checks a stage file read from `file` before it is used: its "schema" name must be
/// `schema_name` with a version ctbmd reads (<= `max_version`), else InputError. When
/// `scan_sha256` is given and the file records the CT it was made from
/// (provenance.inputs.ct.sha256), the two must agree: another scan's stage file is refused
/// with the paths of both (`--no-check-inputs` passes an empty `scan_sha256`).
void checkStageFile(const nlohmann::json& j, const std::string& file, const std::string& schema_name,
                    int max_version, const std::string& scan_sha256, const std::string& scan_path);

}  // namespace ctbmd
