// Fuzz target: ctbmd's image read path (its own header checks, then ITK/GDCM), exactly as
// the executables call it. Built once per format (CTBMD_FUZZ_FORMAT): the input is written
// as a file of that format (a DICOM input as the one slice of a series folder). Every
// refusal is an exception; a crash, hang, sanitizer report or runaway allocation is a bug.
#include <exception>

#include "ctbmd/canonical.hpp"
#include "ctbmd/image.hpp"
#include "fuzz_common.hpp"

#define CTBMD_FMT_NIFTI 1
#define CTBMD_FMT_NRRD 2
#define CTBMD_FMT_MHA 3
#define CTBMD_FMT_DICOM 4

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctbmd::fuzz::init();
  std::filesystem::path target;
#if CTBMD_FUZZ_FORMAT == CTBMD_FMT_NIFTI
  // gzip magic: the .nii.gz path (ctbmd's own CRC/length checks, libdeflate, zlib); else .nii
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  target = ctbmd::fuzz::writeInput(data, size, gz ? "scan.nii.gz" : "scan.nii");
#elif CTBMD_FUZZ_FORMAT == CTBMD_FMT_NRRD
  target = ctbmd::fuzz::writeInput(data, size, "scan.nrrd");
#elif CTBMD_FUZZ_FORMAT == CTBMD_FMT_MHA
  target = ctbmd::fuzz::writeInput(data, size, "scan.mha");
#elif CTBMD_FUZZ_FORMAT == CTBMD_FMT_DICOM
  // the input as one slice of a two-slice series: the second is a fixed valid slice
  target = ctbmd::fuzz::writeInput(data, size, "slice1.dcm").parent_path();
  std::filesystem::copy_file(CTBMD_FUZZ_DICOM_COMPANION, target / "slice2.dcm");
#else
#error "CTBMD_FUZZ_FORMAT must name a format"
#endif
  try {
    auto scan = ctbmd::readScan(target);
    // What every stage does next: the LPS-ordered working copy (geometry from the header).
    (void)ctbmd::canonicalOf(scan);
    ctbmd::fuzz::accepted();
  } catch (const std::exception& e) {
    ctbmd::fuzz::refused(e);
  }
  return 0;
}
