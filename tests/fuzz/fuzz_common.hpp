#pragma once
// Shared by the fuzz targets: a private scratch folder per process, the input written to a
// file there (ctbmd's readers take paths, as the executables do), and quiet, bounded readers.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "ctbmd/cli.hpp"

namespace ctbmd::fuzz {

// Once per process: no log output, third-party chatter off, and a voxel ceiling far below
// the production one (2^31), so that an honest "too big" is an error, not the fuzzer's
// out-of-memory; the readers' own size checks are what is being exercised.
inline void init() {
  static bool done = false;
  if (done) return;
  done = true;
  spdlog::set_level(spdlog::level::off);
  quietThirdPartyLibraries(true);
  setenv("CTBMD_MAX_VOXELS", "4194304", 0);  // 4 Mi voxels: 16 MiB as float
}

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("ctbmd-fuzz-" + std::to_string(getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes the input to `name` inside a fresh sub-folder of the scratch folder.
inline std::filesystem::path writeInput(const uint8_t* data, size_t size, const std::string& name) {
  const auto dir = scratch() / "in";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::ofstream(p, std::ios::binary)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return p;
}

/// A refusal: silent while fuzzing; printed with CTBMD_FUZZ_VERBOSE=1 (is a seed accepted?).
inline bool verbose() {
  static const bool v = std::getenv("CTBMD_FUZZ_VERBOSE") != nullptr;
  return v;
}
inline void refused(const std::exception& e) {
  if (verbose()) std::fprintf(stderr, "refused: %s\n", e.what());
}
inline void accepted() {
  if (verbose()) std::fprintf(stderr, "accepted\n");
}

}  // namespace ctbmd::fuzz
