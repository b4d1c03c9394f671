// parallelFor (internal/parallel.hpp): the library's one loop over worker threads.
#include "internal/parallel.hpp"

#include <itkMultiThreaderBase.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "ctbmd/threads.hpp"

namespace ctbmd {

namespace {
std::vector<std::function<void(int)>>& threadHooks() {
  static std::vector<std::function<void(int)>> h;
  return h;
}
}  // namespace

void setThreads(int n) {
  itk::MultiThreaderBase::SetGlobalMaximumNumberOfThreads(n);
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(n);
  for (auto& h : threadHooks()) h(n);
}

void addThreadHook(std::function<void(int)> hook) { threadHooks().push_back(std::move(hook)); }

void parallelFor(int n, const std::function<void(int)>& fn) {
  int t =
      std::max(1, std::min(n, static_cast<int>(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads())));
  if (t <= 1) {
    for (int k = 0; k < n; ++k) fn(k);
    return;
  }
  std::atomic<int> next{0};
  std::exception_ptr err;
  std::mutex m;
  auto work = [&] {
    try {
      for (int k = next++; k < n; k = next++) fn(k);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!err) err = std::current_exception();
    }
  };
  // The caller is one of the workers. A thread that cannot be started (its stack cannot be
  // mapped under an address-space limit: ctbmd-run's --case-memory) leaves its share to the
  // others; a thread left joinable by an exception would abort the process.
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(t - 1));
  for (int i = 1; i < t; ++i) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
}

}  // namespace ctbmd
