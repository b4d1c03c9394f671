#include "ctbmd/levels.hpp"

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

}  // namespace ctbmd
