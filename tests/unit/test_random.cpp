// ctbmd/random.hpp: the draws are fixed for a seed on every standard library (pinned values
// below, which are libstdc++'s), and on libstdc++ equal to the std:: distributions they replace,
// so phantoms, training splits and jitter made before the header are unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ctbmd/random.hpp"

using ctbmd::PortableRandom;

namespace {

// The first draws for seed 2024, recorded on libstdc++ (GCC 12) through the std:: distributions.
TEST(PortableRandom, PinnedDrawsForASeed) {
  PortableRandom r(2024);
  EXPECT_EQ(r.next(), 11302035004393361974ULL);
  EXPECT_EQ(r.uniform01(), 0.79471606632696579);
  EXPECT_EQ(r.uniform(-3.0, 5.0), -0.87474287730775613);
  EXPECT_EQ(r.normal(), -1.5009701603634176);
  EXPECT_EQ(r.normal(10.0, 2.0), 10.752581757624993);
  EXPECT_EQ(r.uniformInt(0, 2), 1);
  std::vector<int> v(10);
  std::iota(v.begin(), v.end(), 0);
  r.shuffle(v);
  EXPECT_EQ(v, (std::vector<int>{8, 7, 1, 3, 9, 6, 4, 2, 0, 5}));
  EXPECT_EQ(ctbmd::hashString(""), 6142509188972423790ULL);
  EXPECT_EQ(ctbmd::hashString("sub-verse004"), 3273589138717117718ULL);
}

TEST(PortableRandom, UniformIsInRangeAndFlat) {
  PortableRandom r(7);
  std::array<int, 10> bins{};
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = r.uniform01();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++bins[static_cast<size_t>(u * 10)];
  }
  // Binomial(100000, 0.1): sd 95; 5 sd either side.
  for (int b : bins) EXPECT_NEAR(b, n / 10, 475);
}

TEST(PortableRandom, NormalHasItsMoments) {
  PortableRandom r(11);
  const int n = 200000;
  double s = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal(3.0, 2.0);
    s += x;
    s2 += x * x;
  }
  const double mean = s / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 3.0, 5 * 2.0 / std::sqrt(n));       // 5 standard errors
  EXPECT_NEAR(var, 4.0, 5 * 4.0 * std::sqrt(2.0 / n));  // 5 standard errors of a variance
}

TEST(PortableRandom, ShuffleIsAPermutation) {
  for (size_t n : {0, 1, 2, 3, 10, 1001}) {
    std::vector<size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    PortableRandom(5).shuffle(v);
    std::vector<size_t> s = v;
    std::sort(s.begin(), s.end());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(s[i], i) << n;
  }
}

#ifdef __GLIBCXX__
// On libstdc++ every draw equals its std:: counterpart, sequence for sequence, so nothing that
// ctbmd drew before (phantoms, splits, jitter) changes.
TEST(PortableRandom, EqualsLibstdcxxDistributions) {
  for (uint64_t seed : {0ULL, 1ULL, 26ULL, 129ULL, 0x9E3779B97F4A7C15ULL}) {
    PortableRandom mine(seed);
    std::mt19937_64 g(seed);
    std::normal_distribution<double> N(0.0, 1.0);
    std::uniform_real_distribution<double> U(0.0, 1.0), W(-2.5, 7.0);
    for (int i = 0; i < 20000; ++i) {
      switch (i % 5) {
        case 0:
        case 3:
          ASSERT_EQ(mine.normal(), N(g)) << seed << " " << i;
          break;
        case 1:
          ASSERT_EQ(mine.uniform01(), U(g)) << seed << " " << i;
          break;
        case 2:
          ASSERT_EQ(mine.uniform(-2.5, 7.0), W(g)) << seed << " " << i;
          break;
        default: {
          const int64_t hi = i % 7 + 1;
          ASSERT_EQ(mine.uniformInt(0, hi), std::uniform_int_distribution<int>(0, static_cast<int>(hi))(g));
        }
      }
    }
  }
}

TEST(PortableRandom, ShuffleEqualsStdShuffle) {
  for (size_t n : {0, 1, 2, 3, 4, 5, 17, 64, 1000, 4097}) {
    std::vector<int64_t> a(n), b(n);
    std::iota(a.begin(), a.end(), 0);
    b = a;
    PortableRandom(n + 3).shuffle(a);
    std::mt19937_64 g(n + 3);
    std::shuffle(b.begin(), b.end(), g);
    EXPECT_EQ(a, b) << n;
  }
}

TEST(PortableRandom, HashEqualsStdHash) {
  std::string s;
  for (int len = 0; len < 40; ++len) {
    EXPECT_EQ(ctbmd::hashString(s), std::hash<std::string>{}(s)) << len;
    s.push_back(static_cast<char>('a' + (len * 7) % 26 + (len % 3 == 0 ? 128 : 0)));
  }
}
#endif

}  // namespace
