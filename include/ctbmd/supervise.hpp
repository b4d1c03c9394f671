#pragma once
// Runs one unit of work (a batch case) in a child process, so that a signal raised inside a
// third-party library (an abort, a segfault), a runaway allocation or a hang costs that unit
// alone: the parent gets the child's answer, or why there is none.
#include <cstdint>
#include <functional>
#include <string>

namespace ctbmd {

struct SuperviseLimits {
  double timeout_s = 1800;    // wall-clock seconds before the child is killed (0: none)
  uint64_t memory_bytes = 0;  // address-space limit of the child (0: none)
};

struct ChildOutcome {
  bool ok = false;      // the child ran `work` to its end and sent its answer
  std::string answer;   // what `work` returned (ok only)
  std::string failure;  // otherwise: "crashed (signal 6, Aborted)", "took longer than ...", ...
  double seconds = 0;
};

/// Forks; the child runs `work` under `limits` and sends its return value back through a
/// pipe; the parent waits for it (never throws for what happens in the child).
ChildOutcome runSupervised(const std::function<std::string()>& work, const SuperviseLimits& limits);

/// Physical memory of this machine in bytes (0 when unknown).
uint64_t physicalMemoryBytes();

}  // namespace ctbmd
