// Fuzz target: the CSV reader (RFC 4180 quoting, comments, a cut-off last row) and
// ctbmd-evaluate's loaders on top of it (a results table against a reference table). The
// input is split at its first NUL byte: predictions before, references after (when present).
#include <algorithm>
#include <exception>

#include "ctbmd/evaluate.hpp"
#include "ctbmd/fileio.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctbmd::fuzz::init();
  const uint8_t* nul = std::find(data, data + size, uint8_t{0});
  const size_t n1 = static_cast<size_t>(nul - data);
  const auto pred = ctbmd::fuzz::writeInput(data, n1, "results.csv");
  try {
    (void)ctbmd::readCsv(pred);
  } catch (const std::exception& e) {
    ctbmd::fuzz::refused(e);
  }
  if (nul == data + size) return 0;
  const auto ref = pred.parent_path() / "reference.csv";
  std::ofstream(ref, std::ios::binary)
      .write(reinterpret_cast<const char*>(nul + 1), static_cast<std::streamsize>(size - n1 - 1));
  try {
    std::vector<std::string> notes;
    (void)ctbmd::loadEvaluationCases(pred, ref, notes);
  } catch (const std::exception& e) {
    ctbmd::fuzz::refused(e);
  }
  return 0;
}
