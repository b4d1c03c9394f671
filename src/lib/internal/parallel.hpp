#pragma once
// The library's one parallel loop, used by every stage that splits work over slices, levels or
// segments.
#include <functional>

namespace ctbmd {

/// fn(0) ... fn(n-1) on up to ITK's global thread count (--threads sets it) worker threads,
/// each index once, in no set order; the first exception thrown is rethrown after all finish.
/// One thread (or n <= 1) runs the loop in the caller's thread, in order.
void parallelFor(int n, const std::function<void(int)>& fn);

}  // namespace ctbmd
