#pragma once
// Vertebral level names and VerSe label numbers (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6,
// 26 sacrum, 28 T13).
#include <array>
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

}  // namespace ctbmd
