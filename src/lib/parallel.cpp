// parallelFor (internal/parallel.hpp): the library's one loop over worker threads.
#include "internal/parallel.hpp"

#include <itkMultiThreaderBase.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
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
  std::vector<std::thread> pool;
  std::exception_ptr err;
  std::mutex m;
  for (int i = 0; i < t; ++i)
    pool.emplace_back([&] {
      try {
        for (int k = next++; k < n; k = next++) fn(k);
      } catch (...) {
        std::lock_guard<std::mutex> lock(m);
        if (!err) err = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  if (err) std::rethrow_exception(err);
}

}  // namespace ctbmd
