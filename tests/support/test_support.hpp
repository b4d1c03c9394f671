#pragma once
// Helpers shared by the tests: temporary folders, reference data, phantoms, Dice.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "ctbmd/image.hpp"
#include "ctbmd/phantom.hpp"

namespace ctbmd::test {

namespace fs = std::filesystem;

/// A fresh folder under the build tree's temp area, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const fs::path& path() const { return p_; }
  fs::path operator/(const std::string& s) const { return p_ / s; }

 private:
  fs::path p_;
};

/// Path of a file under the shared reference folder; skips the test when it is absent.
fs::path reference(const std::string& rel);
bool haveReference();
fs::path binary(const std::string& name);

/// Runs a shell command, returns its exit status; output is captured into `out`.
int run(const std::string& cmd, std::string* out = nullptr);

/// A small phantom (fast) with the given overrides.
PhantomParams smallPhantom(uint64_t seed);

/// Dice of label `l` between two label maps on the same grid.
double dice(const LabelImage* a, const LabelImage* b, int l);

}  // namespace ctbmd::test
