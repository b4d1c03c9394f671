#pragma once
// Vertebral level names and VerSe label numbers (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6,
// 26 sacrum, 28 T13).
#include <array>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace ctbmd {

inline constexpr int kT12 = 19, kL1 = 20, kL2 = 21, kL3 = 22, kL4 = 23, kL5 = 24, kL6 = 25, kSacrum = 26,
                     kT13 = 28;
/// The levels every stage reports, top to bottom.
inline constexpr std::array<int, 6> kReportedLevels = {kT12, kL1, kL2, kL3, kL4, kL5};

/// "T12", "L1", ... for a VerSe label; throws std::invalid_argument for unknown numbers.
std::string levelName(int label);
/// VerSe label for "T12", "L1", ...; throws UsageError for unknown names.
int levelLabel(const std::string& name);

/// Where a level is, as localize found it and every later stage carries it: the body lies
/// wholly inside the scan (found), is cut by the scan's edge (partial), or was not found.
/// One string table: toString / parseLevelStatus; JSON holds the strings.
enum class LevelStatus { Found, Partial, Missing };
std::string toString(LevelStatus s);
/// The status named `s`; throws InputError naming `file` (a stage file) for any other text.
LevelStatus parseLevelStatus(const std::string& s, const std::string& file = "");
void to_json(nlohmann::json& j, LevelStatus s);
std::ostream& operator<<(std::ostream& o, LevelStatus s);

/// What localize concluded about the column: levels named; a column seen but no anchor names
/// it (levels_not_named); no vertebral column at all (no_spine: no levels, no BMD, no
/// category). One string table: toString / parseSpineStatus; JSON holds the strings.
enum class SpineStatus { Named, LevelsNotNamed, NoSpine };
std::string toString(SpineStatus s);
/// The status named `s`; throws InputError naming `file` for any other text.
SpineStatus parseSpineStatus(const std::string& s, const std::string& file = "");
void to_json(nlohmann::json& j, SpineStatus s);
std::ostream& operator<<(std::ostream& o, SpineStatus s);

/// How a case of ctbmd-run ended (results.csv `status`): ok (levels named; BMD when the levels
/// allow), no_spine and levels_not_named (as SpineStatus, with the reason), error (the case
/// failed; `error` says why). One string table: toString / parseCaseStatus.
enum class CaseStatus { Ok, NoSpine, LevelsNotNamed, Error };
std::string toString(CaseStatus s);
/// The status named `s`; throws InputError naming `file` (a case record) for any other text.
CaseStatus parseCaseStatus(const std::string& s, const std::string& file = "");
/// The case's status once localize has concluded `s`.
CaseStatus caseStatusOf(SpineStatus s);
void to_json(nlohmann::json& j, CaseStatus s);
std::ostream& operator<<(std::ostream& o, CaseStatus s);

}  // namespace ctbmd
