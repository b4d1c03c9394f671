// The clinical rules and thresholds (ctbmd/clinical_rules.hpp): string tables and decisions.
#include "ctbmd/clinical_rules.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace ctbmd::rules {

namespace {
constexpr std::array<std::pair<Category, const char*>, 6> kCategoryNames = {{
    {Category::Normal, "normal"},
    {Category::Osteopenia, "osteopenia"},
    {Category::Osteoporosis, "osteoporosis"},
    {Category::Indeterminate, "indeterminate"},
    {Category::NoOsteoporosis, "no_osteoporosis"},
    {Category::Unavailable, "unavailable"},
}};
constexpr std::array<std::pair<Rule, const char*>, 6> kRuleNames = {{
    {Rule::AcrQct, "acr-qct"},
    {Rule::WhoTscore, "who-tscore"},
    {Rule::L1Hu, "l1-hu"},
    {Rule::TsMedian, "ts-median"},
    {Rule::BccNet, "bccnet"},
    {Rule::RadiomicsRf, "radiomics-rf"},
}};
}  // namespace

std::string toString(Category c) {
  for (const auto& [v, s] : kCategoryNames)
    if (v == c) return s;
  return "unavailable";
}

std::optional<Category> parseCategory(const std::string& s) {
  for (const auto& [v, n] : kCategoryNames)
    if (s == n) return v;
  return std::nullopt;
}

const std::vector<std::string>& threeClasses() {
  static const std::vector<std::string> k = {toString(Category::Normal), toString(Category::Osteopenia),
                                             toString(Category::Osteoporosis)};
  return k;
}

std::string toString(Rule r) {
  for (const auto& [v, s] : kRuleNames)
    if (v == r) return s;
  return "acr-qct";
}

std::optional<Rule> parseRule(const std::string& s) {
  for (const auto& [v, n] : kRuleNames)
    if (s == n) return v;
  return std::nullopt;
}

std::vector<std::string> ruleNames() {
  std::vector<std::string> names;
  for (const auto& [v, n] : kRuleNames) names.emplace_back(n);
  return names;
}

bool kvpOffNominal(const std::string& kvp) {
  char* end = nullptr;
  const double kv = std::strtod(kvp.c_str(), &end);
  return end != kvp.c_str() && std::isfinite(kv) && std::abs(kv - kNominalKvp) > kNominalKvpToleranceKv;
}

bool ruleAssumesUnenhanced(Rule r) { return r == Rule::AcrQct || r == Rule::L1Hu || r == Rule::WhoTscore; }

Category acrCategory(double bmd) {
  if (bmd > kAcrNormalAboveMgCm3) return Category::Normal;
  return bmd >= kAcrOsteoporosisBelowMgCm3 ? Category::Osteopenia : Category::Osteoporosis;
}

Category whoCategory(double t) {
  if (t >= kWhoNormalAtLeastT) return Category::Normal;
  return t > kWhoOsteoporosisAtMostT ? Category::Osteopenia : Category::Osteoporosis;
}

Category l1HuCategory(double hu) {
  if (hu <= kL1HuOsteoporosisAtMost) return Category::Osteoporosis;
  return hu >= kL1HuNormalAtLeast ? Category::Normal : Category::Indeterminate;
}

std::optional<double> tsMedianThresholdHu(const std::string& phase) {
  if (phase == "native") return kTsNativeHu;
  if (phase == "arterial") return kTsNativeHu + kTsArterialOffsetHu;
  if (phase == "portal-venous") return kTsNativeHu + kTsPortalVenousOffsetHu;
  return std::nullopt;
}

Category tsMedianCategory(double hu, double threshold) {
  return hu < threshold ? Category::Osteoporosis : Category::NoOsteoporosis;
}

}  // namespace ctbmd::rules
