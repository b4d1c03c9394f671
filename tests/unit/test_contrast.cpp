// The contrast-phase decision, table-driven: the measures taken on the shared scans and
// phantoms (example_ct aorta 42 / IVC 20 HU native; CRLM-CT-1004 aorta 140 / IVC 136 HU with
// 537 mm2 of excreted contrast in 9 slices, excretory; the portal-venous phantom 168 / 159 HU;
// the arterial phantom 320 / 89 HU; a chest CTA crop whose column is not named), and the borders.
#include <gtest/gtest.h>

#include "ctbmd/contrast.hpp"
#include "ctbmd/errors.hpp"

namespace ctbmd {
namespace {

ContrastMeasures M(std::optional<double> aorta, std::optional<double> ivc = std::nullopt,
                   double excretion_mm2 = 0, int excretion_slices = 0, bool named = true) {
  ContrastMeasures m;
  m.aorta_hu = aorta;
  m.ivc_hu = ivc;
  m.kidney_slices = named ? 20 : 0;
  m.excretion_mm2 = excretion_mm2;
  m.excretion_slices = excretion_slices;
  if (excretion_mm2 > 0) m.excretion_hu = 450;
  m.spine_named = named;
  return m;
}

TEST(ContrastPhase, DecisionTable) {
  struct Case {
    const char* what;
    ContrastMeasures m;
    const char* agent;
    const char* phase;
    bool enhanced;
    double min_conf, max_conf;
  };
  const std::vector<Case> cases = {
      {"example_ct", M(42, 20), "", "native", false, 0.9, 1.0},
      {"CRLM-CT-1004", M(140, 136, 537, 9), "GASTRO & OMNI", "delayed", true, 0.8, 0.9},
      {"one slice of excretion", M(140, 136, 30, 1), "", "delayed", true, 0.6, 0.75},
      {"too little to be excretion", M(140, 136, 12, 1), "", "portal-venous", true, 0.6, 0.75},
      {"portal-venous phantom", M(168, 159), "", "portal-venous", true, 0.6, 0.75},
      {"arterial phantom", M(320, 89), "", "arterial", true, 0.75, 0.85},
      {"arterial aorta beside excretion: an earlier injection", M(320, 89, 200, 3), "", "arterial", true,
       0.75, 0.85},
      {"equilibrium, low aorta, no excretion", M(110, 100), "", "delayed", true, 0.6, 0.75},
      {"IVC between: the aorta's band alone", M(200, 150), "", "portal-venous", true, 0.3, 0.6},
      {"aorta alone, arterial band", M(320), "", "arterial", true, 0.55, 0.6},
      {"aorta alone, delayed band", M(100), "", "delayed", true, 0.3, 0.6},
      {"near the native border: less sure", M(65), "", "native", false, 0.5, 0.8},
      {"unenhanced blood, agent named", M(45), "OMNIPAQUE", "native", true, 0.0, 0.5},
      {"unenhanced blood but excretion: late delayed", M(60, 55, 300, 4), "", "delayed", true, 0.8, 0.9},
      {"no aorta, agent", M(std::nullopt), "APPLIED", "enhanced", true, 0.5, 0.7},
      {"no aorta, excretion", M(std::nullopt, std::nullopt, 200, 3), "", "delayed", true, 0.5, 0.7},
      {"nothing", M(std::nullopt), "", "unknown", false, 0.0, 0.0},
      {"chest CTA crop, column not named", M(117, 94, 0, 0, false), "", "enhanced", true, 0.0, 0.4},
      {"unnamed, unenhanced range", M(42, 30, 0, 0, false), "", "unknown", false, 0.0, 0.0},
  };
  for (const auto& c : cases) {
    const auto r = decideContrastPhase(c.m, c.agent);
    EXPECT_EQ(r.phase, c.phase) << c.what << ": " << r.basis;
    EXPECT_EQ(r.enhanced, c.enhanced) << c.what;
    EXPECT_GE(r.confidence, c.min_conf) << c.what;
    EXPECT_LE(r.confidence, c.max_conf) << c.what;
    EXPECT_FALSE(r.basis.empty()) << c.what;
    const auto back = ContrastPhase::fromJson(r.toJson());
    EXPECT_EQ(back.phase, r.phase);
    EXPECT_EQ(back.enhanced, r.enhanced);
    EXPECT_EQ(back.aorta_hu.has_value(), r.aorta_hu.has_value());
    EXPECT_EQ(back.ivc_hu.has_value(), r.ivc_hu.has_value());
    EXPECT_EQ(back.kidneys.value("excretion_seen", false), c.m.excretion_mm2 >= 20) << c.what;
  }
}

// localize.json's "contrast" is checked on read, naming the file.
TEST(ContrastPhase, FromJsonRefusesWhatLocalizeCannotHaveWritten) {
  auto j = decideContrastPhase(M(140, 136, 537, 9), "").toJson();
  EXPECT_EQ(ContrastPhase::fromJson(j, "case/localize.json").phase, "delayed");
  for (const auto& [key, bad] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"phase", "venous"}, {"confidence", 1.5}, {"confidence", "high"}, {"enhanced", "yes"}}) {
    auto b = j;
    b[key] = bad;
    try {
      (void)ContrastPhase::fromJson(b, "case/localize.json");
      ADD_FAILURE() << key << " = " << bad.dump() << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("case/localize.json"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ContrastPhase::fromJson(nlohmann::json::array()), InputError);
}

}  // namespace
}  // namespace ctbmd
