#pragma once
// Every clinical rule and threshold ctbmd applies, in one place: classify decides by these
// functions, evaluate scores by them, classifyRules() (ctbmd-classify --list-rules, the
// rules table of docs/methods.md, checked by tests/cli/test_docs.sh) describes them from the same
// constants. Change a threshold here and every user of it follows.
#include <optional>
#include <string>
#include <vector>

namespace ctbmd::rules {

/// A case's bone-status category. One string table (toString / parseCategory).
enum class Category { Normal, Osteopenia, Osteoporosis, Indeterminate, NoOsteoporosis, Unavailable };
std::string toString(Category c);
/// The category named `s`; nullopt for a name that is none of toString's.
std::optional<Category> parseCategory(const std::string& s);
/// The three WHO/ACR classes a reference can carry (normal, osteopenia, osteoporosis).
const std::vector<std::string>& threeClasses();

/// The classification rules (ctbmd-classify --rule). One string table (toString / parseRule).
enum class Rule { AcrQct, WhoTscore, L1Hu, TsMedian, BccNet, RadiomicsRf };
std::string toString(Rule r);
/// The rule named `s`; nullopt for an unknown name.
std::optional<Rule> parseRule(const std::string& s);
/// Every rule's name in the order of the Rule enum ("acr-qct, who-tscore, ...").
std::vector<std::string> ruleNames();
/// The rules defined on unenhanced CT, which flag an enhanced scan (`contrast_enhanced`).
bool ruleAssumesUnenhanced(Rule r);

// ---- ACR QCT: trabecular BMD of L1-L2, mg/cm3 hydroxyapatite ------------------------------
// ACR-SPR-SSR Practice Parameter for QCT Bone Densitometry (2018); ISCD 2007.
inline constexpr double kAcrNormalAboveMgCm3 = 120.0;       // > 120: normal
inline constexpr double kAcrOsteoporosisBelowMgCm3 = 80.0;  // < 80: osteoporosis; 80-120 osteopenia
Category acrCategory(double bmd_mg_cm3);

// ---- WHO T-score ------------------------------------------------------------------------
// WHO TRS 843 (1994); Kanis, Osteoporos Int 1994;4:368-381.
inline constexpr double kWhoNormalAtLeastT = -1.0;       // T >= -1: normal
inline constexpr double kWhoOsteoporosisAtMostT = -2.5;  // T <= -2.5: osteoporosis
Category whoCategory(double t_score);

// ---- L1 attenuation (HU), Pickhardt et al., Ann Intern Med 2013;158:588-595 -----------------
// 120 kVp, unenhanced or portal-venous CT, oval ROI in the anterior trabecular body.
inline constexpr double kL1HuOsteoporosisAtMost = 110.0;  // <= 110 HU: osteoporosis likely
inline constexpr double kL1HuNormalAtLeast = 160.0;       // >= 160 HU: normal BMD likely
Category l1HuCategory(double l1_mean_hu);

// ---- TotalSegmentator spine report: median HU of L1 (erode-4mm ROI) ----------------------
// Wasserthal et al., Radiol Artif Intell 2023;5:e230024: 90.25 HU native, +20 HU arterial,
// +14.75 HU portal-venous.
inline constexpr double kTsNativeHu = 90.25;
inline constexpr double kTsArterialOffsetHu = 20.0;
inline constexpr double kTsPortalVenousOffsetHu = 14.75;
/// The threshold for a phase (native | arterial | portal-venous); nullopt for another phase.
std::optional<double> tsMedianThresholdHu(const std::string& phase);
Category tsMedianCategory(double l1_median_hu, double threshold_hu);

// ---- The nominal HU -> BMD conversion when no calibration is given -------------------------
// BMD [mg/cm3] ~ 0.8 x HU: the slope of trabecular bone at 120 kVp; a figure, not a
// calibration (values are marked uncalibrated). Off that tube voltage bone HU differ.
inline constexpr double kNominalSlopeMgCm3PerHu = 0.8;
inline constexpr double kNominalKvp = 120.0;
inline constexpr double kNominalKvpToleranceKv = 2.0;  // 118-122 kVp reads as 120
// Its own uncertainty, as a relative SE of the slope: one fixed (asynchronous, phantom-based)
// conversion gave BMD off by -5.6 % +- 9.2 % (mean +- SD) across eight CT scanners at the same
// tube voltage, and by 3.8 % +- 28.2 % when the tube voltage differed (Skornitzke et al., Sci
// Rep 2022;12:20729, doi:10.1038/s41598-022-24546-2; 282 acquisitions, 80-150 kVp).
inline constexpr double kNominalSlopeRelSe = 0.092;
inline constexpr double kNominalSlopeRelSeOffKvp = 0.282;
/// True when a DICOM KVP value is a number off the nominal conversion's 120 kVp ("" or text:
/// false, unknown is not off).
bool kvpOffNominal(const std::string& kvp);

}  // namespace ctbmd::rules
