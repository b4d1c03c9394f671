#pragma once
// Runs one unit of work (a batch case) in a child process, so that a signal raised inside a
// third-party library (an abort, a segfault), a runaway allocation or a hang costs that unit
// alone: the parent gets the child's answer, or why there is none.
#include <cstddef>
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

/// Runs units 0 ... n-1, up to `parallel` at once, each in its own child under `limits`:
/// work(i) runs in unit i's child; done(i, outcome) runs in the calling thread as each unit
/// ends (in the order they end). One thread supervises all children (no thread forks).
void runSupervisedPool(size_t n, int parallel, const std::function<std::string(size_t)>& work,
                       const std::function<void(size_t, const ChildOutcome&)>& done,
                       const SuperviseLimits& limits);

/// Physical memory of this machine in bytes (0 when unknown).
uint64_t physicalMemoryBytes();

}  // namespace ctbmd
