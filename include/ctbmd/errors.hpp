#pragma once
// Exceptions that carry a documented process exit code. Messages are written for people:
// what is wrong, with which file, and what to do about it.
#include <stdexcept>
#include <string>

namespace ctbmd {

enum class ExitCode : int {
  Ok = 0,
  Usage = 1,         // bad command line, or an output exists and --force was not given
  Input = 2,         // input unreadable or unsuitable (not CT, bad geometry, truncated file)
  Processing = 3,    // the algorithm failed on a readable input
  BatchPartial = 4,  // ctbmd-run: some cases of a batch failed, the others succeeded
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& w) : Error(ExitCode::Usage, w) {}
};
struct InputError : Error {
  explicit InputError(const std::string& w) : Error(ExitCode::Input, w) {}
};
struct ProcessingError : Error {
  explicit ProcessingError(const std::string& w) : Error(ExitCode::Processing, w) {}
};

}  // namespace ctbmd
