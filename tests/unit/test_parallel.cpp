// [tier: unit] parallelFor (internal/parallel.hpp): every index exactly once at any thread
// count, the first exception rethrown after all workers finish, in order on one thread.
#include <gtest/gtest.h>
#include <itkMultiThreaderBase.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "internal/parallel.hpp"

namespace ctbmd {
namespace {

struct ThreadCount {
  explicit ThreadCount(int n) : saved(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads()) {
    itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(n);
  }
  ~ThreadCount() { itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(saved); }
  itk::ThreadIdType saved;
};

TEST(ParallelFor, EveryIndexExactlyOnceAtAnyThreadCount) {
  for (int threads : {1, 2, 8}) {
    ThreadCount tc(threads);
    for (int n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      parallelFor(n, [&](int k) { hits[static_cast<size_t>(k)]++; });
      for (int k = 0; k < n; ++k)
        ASSERT_EQ(hits[static_cast<size_t>(k)].load(), 1) << k << " threads " << threads;
    }
  }
}

TEST(ParallelFor, OneThreadRunsInOrder) {
  ThreadCount tc(1);
  std::vector<int> order;
  parallelFor(5, [&](int k) { order.push_back(k); });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ParallelFor, AnExceptionIsRethrownAfterTheOthersFinish) {
  for (int threads : {1, 4}) {
    ThreadCount tc(threads);
    std::atomic<int> done{0};
    EXPECT_THROW(parallelFor(200,
                             [&](int k) {
                               if (k == 17) throw std::runtime_error("index 17");
                               ++done;
                             }),
                 std::runtime_error);
    // one thread stops at the throw; with more, the other workers take every other index
    EXPECT_EQ(done.load(), threads == 1 ? 17 : 199) << threads << " threads";
  }
}

}  // namespace
}  // namespace ctbmd
