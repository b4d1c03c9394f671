// The contrast-phase decision, table-driven: aortic HU measured on the shared scans and
// phantoms (example_ct 42 HU native, CRLM-CT-1004 140 HU with ContrastBolusAgent, the
// portal-venous phantom 169 HU), and the band borders.
#include <gtest/gtest.h>

#include "ctbmd/contrast.hpp"

namespace ctbmd {
namespace {

TEST(ContrastPhase, DecisionTable) {
  struct Case {
    std::optional<double> aorta;
    const char* agent;
    const char* phase;
    bool enhanced;
    double min_conf, max_conf;
  };
  const std::vector<Case> cases = {
      {42, "", "native", false, 0.9, 1.0},                      // example_ct (TotalSegmentator: native)
      {140, "GASTRO & OMNI", "portal-venous", true, 0.3, 0.7},  // CRLM-CT-1004
      {169, "", "portal-venous", true, 0.6, 0.7},               // portal-venous phantom
      {320, "", "arterial", true, 0.6, 0.7},
      {100, "", "delayed", true, 0.3, 0.7},
      {65, "", "native", false, 0.5, 0.8},          // near the border: less sure
      {45, "OMNIPAQUE", "native", true, 0.0, 0.5},  // header says contrast: possibly enhanced
      {std::nullopt, "APPLIED", "enhanced", true, 0.5, 0.7},
      {std::nullopt, "", "unknown", false, 0.0, 0.0},
  };
  for (const auto& c : cases) {
    const auto r = decideContrastPhase(c.aorta, c.agent);
    const std::string what = (c.aorta ? std::to_string(*c.aorta) : std::string("none")) + "/" + c.agent;
    EXPECT_EQ(r.phase, c.phase) << what;
    EXPECT_EQ(r.enhanced, c.enhanced) << what;
    EXPECT_GE(r.confidence, c.min_conf) << what;
    EXPECT_LE(r.confidence, c.max_conf) << what;
    EXPECT_FALSE(r.basis.empty()) << what;
    const auto back = ContrastPhase::fromJson(r.toJson());
    EXPECT_EQ(back.phase, r.phase);
    EXPECT_EQ(back.enhanced, r.enhanced);
    EXPECT_EQ(back.aorta_hu.has_value(), r.aorta_hu.has_value());
  }
}

}  // namespace
}  // namespace ctbmd
