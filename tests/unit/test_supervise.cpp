// [tier: unit] Supervised workers (ctbmd/supervise.hpp): answers come back, a crash, an
// exception and a hang each become that unit's failure alone, and a pool runs every unit once
// with at most `parallel` at a time.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <thread>

#include "ctbmd/supervise.hpp"

namespace ctbmd {
namespace {

TEST(Supervise, AnswerCrashExceptionAndHang) {
  SuperviseLimits lim;
  lim.timeout_s = 2;
  auto ok = runSupervised([] { return std::string(100000, 'x'); }, lim);  // larger than a pipe buffer
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.answer.size(), 100000u);
  auto crash = runSupervised([]() -> std::string { std::abort(); }, lim);
  EXPECT_FALSE(crash.ok);
  EXPECT_NE(crash.failure.find("signal 6"), std::string::npos) << crash.failure;
  auto thrown = runSupervised([]() -> std::string { throw std::runtime_error("no luck"); }, lim);
  EXPECT_FALSE(thrown.ok);
  EXPECT_EQ(thrown.failure, "no luck");
  lim.timeout_s = 0.3;
  const auto t0 = std::chrono::steady_clock::now();
  auto hang = runSupervised(
      [] {
        std::this_thread::sleep_for(std::chrono::seconds(30));
        return std::string();
      },
      lim);
  EXPECT_FALSE(hang.ok);
  EXPECT_NE(hang.failure.find("took longer"), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(Supervise, PoolRunsEachUnitOnceAtMostParallelAtATime) {
  SuperviseLimits lim;
  lim.timeout_s = 1.0;
  std::map<size_t, ChildOutcome> got;
  const auto t0 = std::chrono::steady_clock::now();
  // 6 units of 0.3 s, 3 at a time: ~0.6 s; unit 4 aborts, unit 5 hangs past the limit
  runSupervisedPool(
      6, 3,
      [](size_t i) -> std::string {
        if (i == 4) std::abort();
        std::this_thread::sleep_for(std::chrono::milliseconds(i == 5 ? 5000 : 300));
        return "unit " + std::to_string(i) + " pid " + std::to_string(getpid());
      },
      [&](size_t i, const ChildOutcome& o) {
        EXPECT_EQ(got.count(i), 0u) << "unit " << i << " ended twice";
        got[i] = o;
      },
      lim);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(got.size(), 6u);
  for (size_t i : {0, 1, 2, 3}) {
    EXPECT_TRUE(got[i].ok) << i << ": " << got[i].failure;
    EXPECT_EQ(got[i].answer.rfind("unit " + std::to_string(i) + " pid ", 0), 0u);
  }
  EXPECT_NE(got[4].failure.find("signal 6"), std::string::npos);
  EXPECT_NE(got[5].failure.find("took longer"), std::string::npos);
  // three at once: the four 0.3 s units and the 1 s limit end well before one-at-a-time (2.2 s)
  EXPECT_LT(wall, 2.0);
  // ... and not all six at once: unit 5 starts only when one of the first three has ended (0.3 s
  // + its 1 s limit; six at once would end at 1.0 s)
  EXPECT_GT(wall, 1.25);
}

}  // namespace
}  // namespace ctbmd
