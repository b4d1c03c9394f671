// Radiomics features against the IBSI 1 reference values of the IBSI digital phantom
// (../shared/data/reference/ibsi_digital_phantom/reference_values.csv, CC BY 4.0).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/radiomics.hpp"
#include "test_support.hpp"

namespace rad = ctbmd::radiomics;

namespace {

// IBSI reports reference values to three significant digits; a value "matches" when it rounds
// to the reference at that precision, or lies within the published tolerance (morphology).
double allowedDifference(const std::string& written, double tolerance) {
  const double ref = std::stod(written);
  const double digits = ref == 0 ? 5e-4 : 0.5 * std::pow(10.0, std::floor(std::log10(std::fabs(ref))) - 2);
  return std::max(tolerance, digits * (1 + 1e-9));
}

std::map<std::string, double> phantomFeatures() {
  const auto dir = ctbmd::test::reference("ibsi_digital_phantom");
  const ctbmd::Scan scan = ctbmd::readScan(dir / "image_phantom.nii.gz");
  const auto mask = ctbmd::readLabels(dir / "mask_mask.nii.gz", scan.image.GetPointer());
  const rad::RoiImage roi = rad::cropRoi(scan.image.GetPointer(), mask.GetPointer(), {1});
  rad::Settings s;
  s.discretisation = rad::Discretisation::none;  // the phantom's values are grey levels already
  std::map<std::string, double> out;
  for (const auto& f : rad::computeAll(roi, s)) out[f.tag] = f.value;
  return out;
}

}  // namespace

TEST(Radiomics, IbsiDigitalPhantomReferenceValues) {
  if (!ctbmd::test::haveReference()) GTEST_SKIP();
  const auto table = ctbmd::readCsv(ctbmd::test::reference("ibsi_digital_phantom/reference_values.csv"));
  const int c_tag = table.column({"tag"}), c_ref = table.column({"reference value"}),
            c_tol = table.column({"tolerance"}), c_cons = table.column({"consensus"});
  ASSERT_GE(c_tag, 0);
  ASSERT_GE(c_ref, 0);
  const auto features = phantomFeatures();
  int checked = 0, missed = 0;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const std::string tag = table.cell(r, c_tag), ref = table.cell(r, c_ref);
    if (ref.empty() || table.cell(r, c_cons) == "not standardized") continue;  // IBSI gives no value
    const double tol = table.cell(r, c_tol).empty() ? 0.0 : std::stod(table.cell(r, c_tol));
    const auto it = features.find(tag);
    if (it == features.end()) {
      ADD_FAILURE() << tag << ": not computed (reference " << ref << ")";
      ++missed;
      continue;
    }
    const double diff = std::fabs(it->second - std::stod(ref));
    const double allowed = allowedDifference(ref, tol);
    EXPECT_LE(diff, allowed) << tag << ": computed " << it->second << ", IBSI reference " << ref;
    if (diff > allowed) ++missed;
    ++checked;
  }
  EXPECT_GE(checked, 400) << "the reference table lost rows";
  std::printf("IBSI digital phantom: %d standardised features checked, %d outside tolerance\n", checked,
              missed);
}
