#pragma once
// The process's worker threads: ITK's global pool (parallelFor and ITK filters use it) and the
// pools of anything else registered (the LibTorch plugin's). Every executable sets it from
// --threads; an in-process caller sets it itself.
#include <functional>

namespace ctbmd {

/// Sets every pool to n threads (n >= 1).
void setThreads(int n);
/// Called with the thread count at every later setThreads (a pool created after the first).
void addThreadHook(std::function<void(int)> hook);

}  // namespace ctbmd
