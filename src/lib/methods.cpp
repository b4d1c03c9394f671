// The stages' method and protocol names (ctbmd/methods.hpp).
#include "ctbmd/methods.hpp"

namespace ctbmd::methods {

namespace {
template <typename E>
std::optional<E> parse(const std::vector<std::string>& table, const std::string& s) {
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i] == s) return static_cast<E>(i);
  return std::nullopt;
}
}  // namespace

const std::vector<std::string>& names(Localize) {
  static const std::vector<std::string> k = {"classical", "mip-localizer"};
  return k;
}
const std::vector<std::string>& names(Segment) {
  static const std::vector<std::string> k = {"classical", "unet2d", "dense-unet3d"};
  return k;
}
const std::vector<std::string>& names(Roi) {
  static const std::vector<std::string> k = {"ellipse-s1", "erode-4mm", "mosaic-392"};
  return k;
}
const std::vector<std::string>& names(Bmd) {
  static const std::vector<std::string> k = {"calibration", "mosaic-cnn", "densenet3d"};
  return k;
}

std::string toString(Localize m) { return names(m).at(static_cast<size_t>(m)); }
std::string toString(Segment m) { return names(m).at(static_cast<size_t>(m)); }
std::string toString(Roi m) { return names(m).at(static_cast<size_t>(m)); }
std::string toString(Bmd m) { return names(m).at(static_cast<size_t>(m)); }

std::optional<Localize> parseLocalize(const std::string& s) { return parse<Localize>(names(Localize{}), s); }
std::optional<Segment> parseSegment(const std::string& s) { return parse<Segment>(names(Segment{}), s); }
std::optional<Roi> parseRoi(const std::string& s) { return parse<Roi>(names(Roi{}), s); }
std::optional<Bmd> parseBmd(const std::string& s) { return parse<Bmd>(names(Bmd{}), s); }

std::string listed(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& n : v) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace ctbmd::methods
