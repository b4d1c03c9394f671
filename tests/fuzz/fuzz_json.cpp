// Fuzz target: every stage-file loader, as the executables call it (read the file, check its
// schema, parse the typed result). The first input byte picks the loader; the rest is the
// file. A refusal is an exception; a crash or sanitizer report is a bug.
#include <exception>

#include "ctbmd/calibrate.hpp"
#include "ctbmd/contrast.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"
#include "fuzz_common.hpp"

namespace {

ctbmd::LabelImage::Pointer smallLabels() {
  auto img = ctbmd::LabelImage::New();
  ctbmd::LabelImage::SizeType size;
  size.Fill(4);
  img->SetRegions(size);
  img->Allocate(true);
  return img;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ctbmd::fuzz::init();
  if (size < 1) return 0;
  const int which = data[0] % 8;
  const auto path = ctbmd::fuzz::writeInput(data + 1, size - 1, "stage.json");
  const std::string file = path.string();
  try {
    const auto j = ctbmd::readJsonFile(path);
    switch (which) {
      case 0:
        ctbmd::checkStageFile(j, file, "ctbmd.localize", 1, "", "");
        (void)ctbmd::LocalizeResult::fromJson(j);
        if (j.contains("contrast")) (void)ctbmd::ContrastPhase::fromJson(j["contrast"], file);
        break;
      case 1:
        ctbmd::checkStageFile(j, file, "ctbmd.roi", 1, "", "");
        (void)ctbmd::RoiResult::fromJson(j, file);
        break;
      case 2:
        (void)ctbmd::Calibration::fromJson(j, file);
        break;
      case 3:
        ctbmd::checkStageFile(j, file, "ctbmd.bmd", 1, "", "");
        (void)ctbmd::BmdResult::fromJson(j);
        break;
      case 4:
        ctbmd::checkStageFile(j, file, "ctbmd.classification", 1, "", "");
        (void)ctbmd::ClassifyResult::fromJson(j);
        break;
      case 5:
        (void)ctbmd::PhantomDefinition::fromJson(j, file);
        break;
      case 6:
        (void)ctbmd::TissueTable::fromJson(j, file);
        break;
      case 7:
        ctbmd::checkStageFile(j, file, "ctbmd.segment", 1, "", "");
        (void)ctbmd::SegmentResult::fromJson(j, smallLabels());
        break;
    }
    ctbmd::fuzz::accepted();
  } catch (const std::exception& e) {
    ctbmd::fuzz::refused(e);
  }
  return 0;
}
