#include "test_support.hpp"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <random>

namespace ctbmd::test {

TempDir::TempDir() {
  static int n = 0;
  p_ = fs::temp_directory_path() / ("ctbmd-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::remove_all(p_);
  fs::create_directories(p_);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("CTBMD_KEEP_TEST_FILES")) fs::remove_all(p_, ec);
}

bool haveReference() {
  if (fs::exists(fs::path(CTBMD_REFERENCE_DIR) / "README.md")) return true;
  // A run that must cover the real scans (CTBMD_REQUIRE_REF=1) fails instead of skipping.
  const char* req = std::getenv("CTBMD_REQUIRE_REF");
  if (req && std::string(req) == "1")
    ADD_FAILURE() << "the shared reference scans are required (CTBMD_REQUIRE_REF=1) but '"
                  << CTBMD_REFERENCE_DIR << "' holds no README.md: configure with -DCTBMD_REFERENCE_DIR=...";
  return false;
}

fs::path reference(const std::string& rel) { return fs::path(CTBMD_REFERENCE_DIR) / rel; }

fs::path binary(const std::string& name) { return fs::path(CTBMD_BIN_DIR) / name; }

int run(const std::string& cmd, std::string* out) {
  std::string full = cmd + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf;
  std::string text;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
  int st = ::pclose(p);
  if (out) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

PhantomParams smallPhantom(uint64_t seed) {
  PhantomParams p;
  p.nx = p.ny = 400;
  p.pixel_mm = 1.0;
  p.slice_mm = 2.0;
  p.seed = seed;
  p.top = "T11";
  p.bottom = "S1";
  return p;
}

double dice(const LabelImage* a, const LabelImage* b, int l) {
  size_t n = a->GetLargestPossibleRegion().GetNumberOfPixels();
  const uint8_t* pa = a->GetBufferPointer();
  const uint8_t* pb = b->GetBufferPointer();
  long ia = 0, ib = 0, both = 0;
  for (size_t i = 0; i < n; ++i) {
    bool x = pa[i] == l, y = pb[i] == l;
    ia += x;
    ib += y;
    both += x && y;
  }
  return ia + ib ? 2.0 * both / (ia + ib) : 1.0;
}

}  // namespace ctbmd::test
