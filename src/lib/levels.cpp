#include "ctbmd/levels.hpp"

#include <nlohmann/json.hpp>
#include <ostream>
#include <stdexcept>

#include "ctbmd/errors.hpp"

namespace ctbmd {

std::string levelName(int label) {
  if (label >= 1 && label <= 7) return "C" + std::to_string(label);
  if (label >= 8 && label <= 19) return "T" + std::to_string(label - 7);
  if (label >= 20 && label <= 25) return "L" + std::to_string(label - 19);
  if (label == kSacrum) return "S1";
  if (label == kT13) return "T13";
  throw std::invalid_argument("no vertebral level has VerSe label " + std::to_string(label));
}

int levelLabel(const std::string& name) {
  if (name.size() >= 2) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
    int n = 0;
    try {
      n = std::stoi(name.substr(1));
    } catch (...) {
      n = 0;
    }
    if (c == 'C' && n >= 1 && n <= 7) return n;
    if (c == 'T' && n >= 1 && n <= 12) return n + 7;
    if (c == 'T' && n == 13) return kT13;
    if (c == 'L' && n >= 1 && n <= 6) return n + 19;
    if (c == 'S' && n == 1) return kSacrum;
  }
  throw UsageError("'" + name + "' is not a vertebral level name (use e.g. T12, L1, L5, S1)");
}

std::string toString(LevelStatus s) {
  switch (s) {
    case LevelStatus::Found:
      return "found";
    case LevelStatus::Partial:
      return "partial";
    case LevelStatus::Missing:
      break;
  }
  return "missing";
}

LevelStatus parseLevelStatus(const std::string& s, const std::string& file) {
  for (auto v : {LevelStatus::Found, LevelStatus::Partial, LevelStatus::Missing})
    if (s == toString(v)) return v;
  throw InputError("level status '" + s + "'" + (file.empty() ? std::string() : " in '" + file + "'") +
                   " is none of found, partial, missing; was the file written by ctbmd?");
}

void to_json(nlohmann::json& j, LevelStatus s) { j = toString(s); }

std::ostream& operator<<(std::ostream& o, LevelStatus s) { return o << toString(s); }

std::string toString(SpineStatus s) {
  switch (s) {
    case SpineStatus::Named:
      return "named";
    case SpineStatus::LevelsNotNamed:
      return "levels_not_named";
    case SpineStatus::NoSpine:
      break;
  }
  return "no_spine";
}

SpineStatus parseSpineStatus(const std::string& s, const std::string& file) {
  for (auto v : {SpineStatus::Named, SpineStatus::LevelsNotNamed, SpineStatus::NoSpine})
    if (s == toString(v)) return v;
  throw InputError("localize JSON " + (file.empty() ? std::string() : "'" + file + "' ") + ": status '" + s +
                   "' is not one of named, levels_not_named, no_spine; was it written by ctbmd-localize?");
}

void to_json(nlohmann::json& j, SpineStatus s) { j = toString(s); }

std::ostream& operator<<(std::ostream& o, SpineStatus s) { return o << toString(s); }

std::string toString(CaseStatus s) {
  switch (s) {
    case CaseStatus::Ok:
      return "ok";
    case CaseStatus::NoSpine:
      return "no_spine";
    case CaseStatus::LevelsNotNamed:
      return "levels_not_named";
    case CaseStatus::Error:
      break;
  }
  return "error";
}

CaseStatus parseCaseStatus(const std::string& s, const std::string& file) {
  for (auto v : {CaseStatus::Ok, CaseStatus::NoSpine, CaseStatus::LevelsNotNamed, CaseStatus::Error})
    if (s == toString(v)) return v;
  throw InputError("case record " + (file.empty() ? std::string() : "'" + file + "' ") + ": status '" + s +
                   "' is not one of ok, no_spine, levels_not_named, error; was it written by ctbmd-run?");
}

CaseStatus caseStatusOf(SpineStatus s) {
  switch (s) {
    case SpineStatus::Named:
      return CaseStatus::Ok;
    case SpineStatus::LevelsNotNamed:
      return CaseStatus::LevelsNotNamed;
    case SpineStatus::NoSpine:
      break;
  }
  return CaseStatus::NoSpine;
}

void to_json(nlohmann::json& j, CaseStatus s) { j = toString(s); }

std::ostream& operator<<(std::ostream& o, CaseStatus s) { return o << toString(s); }

}  // namespace ctbmd
