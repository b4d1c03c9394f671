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

// Kidney sections per side, with lagging-medulla sections, and the medians: the pattern.
ContrastMeasures N(ContrastMeasures m, int right, int left, int cmd_right, int cmd_left,
                   std::optional<double> cortex, std::optional<double> medulla, double fraction) {
  m.nephro_sections_right = right;
  m.nephro_sections_left = left;
  m.nephro_cmd_right = cmd_right;
  m.nephro_cmd_left = cmd_left;
  m.cortex_hu = cortex;
  m.medulla_hu = medulla;
  m.medulla_fraction = fraction;
  return m;
}

// The nephrogram's pattern: the measures of the shared scans and phantoms (arterial phantom 20 +
// 20 sections, 11 + 11 lagging, 168 / 85 HU, 13 %; portal-venous phantom 20 + 20, none; CRLM-CT-1004
// 16 + 24, 192 HU, 0.005 %), and each border.
TEST(ContrastPhase, NephrogramPattern) {
  struct Case {
    const char* what;
    ContrastMeasures m;
    const char* pattern;
  };
  const ContrastMeasures a = M(320, 89);
  const std::vector<Case> cases = {
      {"arterial phantom", N(a, 20, 20, 11, 11, 168, 85, 0.13), "corticomedullary"},
      {"portal-venous phantom", N(a, 20, 20, 0, 0, 153, std::nullopt, 0), "homogeneous"},
      {"CRLM-CT-1004", N(a, 16, 24, 0, 0, 192, 99, 0.00005), "homogeneous"},
      {"example_ct: unenhanced kidneys are not found", N(a, 0, 0, 0, 0, std::nullopt, std::nullopt, 0),
       "not_seen"},
      {"too few sections", N(a, 1, 1, 1, 1, 168, 85, 0.13), "indeterminate"},
      {"one side lags, the other does not: a lesion, not a phase", N(a, 20, 20, 11, 0, 168, 85, 0.09),
       "indeterminate"},
      {"one kidney only (nephrectomy), lagging", N(a, 0, 20, 0, 10, 168, 85, 0.12), "corticomedullary"},
      {"gap too small", N(a, 20, 20, 11, 11, 168, 110, 0.13), "indeterminate"},
      {"too little medulla", N(a, 20, 20, 2, 2, 168, 85, 0.05), "indeterminate"},
      {"lagging in fewer than 3 sections", N(a, 20, 20, 1, 1, 168, 85, 0.09), "indeterminate"},
      {"kidneys not searched (column not named)",
       N(M(117, 94, 0, 0, false), 0, 0, 0, 0, std::nullopt, std::nullopt, 0), "not_searched"},
      {"just under the homogeneous border", N(a, 20, 20, 0, 0, 168, 120, 0.019), "homogeneous"},
  };
  for (const auto& c : cases) EXPECT_EQ(nephrogramPattern(c.m), c.pattern) << c.what;
}

// How the nephrogram enters the decision: it decides arterial before the IVC, and lowers or raises
// the IVC's calls.
TEST(ContrastPhase, NephrogramInTheDecision) {
  struct Case {
    const char* what;
    ContrastMeasures m;
    const char* phase;
    double min_conf, max_conf;
  };
  const std::vector<Case> cases = {
      {"corticomedullary and the IVC lags", N(M(320, 89), 20, 20, 11, 11, 168, 85, 0.13), "arterial", 0.85,
       0.9},
      {"corticomedullary, IVC not found", N(M(300), 20, 20, 11, 11, 168, 85, 0.13), "arterial", 0.7, 0.8},
      {"corticomedullary, IVC mixed (late arterial)", N(M(250, 220), 20, 20, 11, 11, 190, 95, 0.1),
       "arterial", 0.7, 0.8},
      {"corticomedullary, no aorta", N(M(std::nullopt), 20, 20, 11, 11, 168, 85, 0.13), "arterial", 0.55,
       0.65},
      {"IVC lags but the nephrogram is uniform", N(M(320, 89), 20, 20, 0, 0, 160, std::nullopt, 0),
       "arterial", 0.6, 0.7},
      {"equilibrium and a uniform nephrogram", N(M(168, 159), 20, 20, 0, 0, 153, std::nullopt, 0),
       "portal-venous", 0.75, 0.85},
      {"excretion outranks the nephrogram", N(M(140, 136, 537, 9), 16, 24, 0, 0, 192, 99, 0.00005), "delayed",
       0.8, 0.9},
  };
  for (const auto& c : cases) {
    const auto r = decideContrastPhase(c.m, "");
    EXPECT_EQ(r.phase, c.phase) << c.what << ": " << r.basis;
    EXPECT_TRUE(r.enhanced) << c.what;
    EXPECT_GE(r.confidence, c.min_conf) << c.what << ": " << r.basis;
    EXPECT_LE(r.confidence, c.max_conf) << c.what << ": " << r.basis;
    EXPECT_EQ(r.kidneys["nephrogram"]["pattern"], nephrogramPattern(c.m)) << c.what;
    if (nephrogramPattern(c.m) == "corticomedullary") {
      EXPECT_NE(r.basis.find("renal parenchyma"), std::string::npos) << r.basis;
    }
  }
}

}  // namespace
}  // namespace ctbmd
