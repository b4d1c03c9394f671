#pragma once
// Portable randomness: the same draws for a seed on every standard library and platform.
//
// The C++ standard fixes the sequence of std::mt19937_64 but leaves the distributions
// (normal, uniform real and int), std::shuffle and std::hash<std::string> to the
// implementation, so a phantom or a training split drawn through them is "deterministic for a
// seed" on one standard library only. ctbmd draws through the functions below instead. Each is
// written out here, operation by operation, as GNU libstdc++ (GCC 11-14) implements the
// std:: counterpart, so on libstdc++ the draws (and every phantom, training split and jitter
// made before this header existed) are unchanged, and on libc++ or MSVC they are the same too.
// tests/unit/test_random.cpp checks fixed values everywhere and equality with std:: where the
// library is libstdc++.
//
//   uniform01   generate_canonical<double, 53>: one 64-bit draw / 2^64 (rounded to double),
//               1.0 replaced by the largest double below it
//   uniform     a + (b - a) * uniform01 (as uniform_real_distribution(a, b))
//   normal      Marsaglia's polar method, the second value of each pair kept for the next call
//   uniformInt  Lemire's nearly divisionless method (128-bit product from 64-bit halves)
//   shuffle     Fisher-Yates drawing two positions from one number while n^2 fits in 64 bits
//   hashString  MurmurHash64A as libstdc++'s _Hash_bytes (seed 0xc70f6907), little-endian
#include <cmath>
#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace ctbmd {

class PortableRandom {
 public:
  explicit PortableRandom(uint64_t seed) : g_(seed) {}

  /// The raw 64-bit draw (std::mt19937_64, fixed by the standard).
  uint64_t next() { return g_(); }

  /// Uniform in [0, 1).
  double uniform01() {
    double r = static_cast<double>(g_()) / 18446744073709551616.0;  // 2^64
    if (r >= 1.0) r = std::nextafter(1.0, 0.0);
    return r;
  }

  /// Uniform in [a, b).
  double uniform(double a, double b) { return uniform01() * (b - a) + a; }

  /// Normal with the given mean and standard deviation.
  double normal(double mean = 0.0, double sd = 1.0) {
    double v;
    if (have_saved_) {
      have_saved_ = false;
      v = saved_;
    } else {
      double x, y, r2;
      do {
        x = 2.0 * uniform01() - 1.0;
        y = 2.0 * uniform01() - 1.0;
        r2 = x * x + y * y;
      } while (r2 > 1.0 || r2 == 0.0);
      const double mult = std::sqrt(-2.0 * std::log(r2) / r2);
      saved_ = x * mult;
      have_saved_ = true;
      v = y * mult;
    }
    return v * sd + mean;
  }

  /// Uniform integer in [lo, hi] (inclusive).
  int64_t uniformInt(int64_t lo, int64_t hi) {
    const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    return static_cast<int64_t>(static_cast<uint64_t>(lo) + below(range));
  }

  /// Shuffles v in place.
  template <class T>
  void shuffle(std::vector<T>& v) {
    const uint64_t n = v.size();
    if (n < 2) return;
    if (UINT64_MAX / n >= n) {
      size_t i = 1;
      if (n % 2 == 0) std::swap(v[i++], v[below(1)]);
      while (i != n) {
        const uint64_t b0 = i + 1, b1 = i + 2;
        const uint64_t x = below(b0 * b1 - 1);
        std::swap(v[i++], v[x / b1]);
        std::swap(v[i++], v[x % b1]);
      }
      return;
    }
    for (size_t i = 1; i != n; ++i) std::swap(v[i], v[below(i)]);
  }

 private:
  // The high and low 64 bits of a * b (as a 128-bit product would hold them).
  static void multiply(uint64_t a, uint64_t b, uint64_t& hi, uint64_t& lo) {
    const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    lo = (mid << 32) | (p00 & 0xffffffffu);
    hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
  }

  // Uniform in [0, range] (inclusive).
  uint64_t below(uint64_t range) {
    if (range == UINT64_MAX) return g_();
    const uint64_t span = range + 1;
    uint64_t hi, low;
    multiply(g_(), span, hi, low);
    if (low < span) {
      const uint64_t threshold = (0 - span) % span;
      while (low < threshold) multiply(g_(), span, hi, low);
    }
    return hi;
  }

  std::mt19937_64 g_;
  double saved_ = 0;
  bool have_saved_ = false;
};

/// A 64-bit hash of a string that is the same everywhere (libstdc++'s std::hash<std::string>
/// on a 64-bit little-endian machine).
inline uint64_t hashString(std::string_view s) {
  constexpr uint64_t mul = (uint64_t{0xc6a4a793} << 32) + uint64_t{0x5bd1e995};
  auto shiftMix = [](uint64_t v) { return v ^ (v >> 47); };
  auto load = [&](size_t at, size_t n) {  // little-endian, n <= 8 bytes
    uint64_t r = 0;
    for (size_t k = n; k-- > 0;) r = (r << 8) + static_cast<unsigned char>(s[at + k]);
    return r;
  };
  const size_t len = s.size(), aligned = len & ~size_t{7};
  uint64_t hash = uint64_t{0xc70f6907} ^ (len * mul);
  for (size_t p = 0; p != aligned; p += 8) {
    hash ^= shiftMix(load(p, 8) * mul) * mul;
    hash *= mul;
  }
  if ((len & 7) != 0) {
    hash ^= load(aligned, len & 7);
    hash *= mul;
  }
  hash = shiftMix(hash) * mul;
  return shiftMix(hash);
}

}  // namespace ctbmd
