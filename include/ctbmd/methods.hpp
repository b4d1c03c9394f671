#pragma once
// The methods of each stage and the ROI protocols: one string table each, read by the
// library's dispatch (and its "unknown method" errors) and by every front end's option check,
// so a method is named in one place.
#include <optional>
#include <string>
#include <vector>

namespace ctbmd::methods {

enum class Localize { Classical, MipLocalizer };
enum class Segment { Classical, UNet2d, DenseUNet3d };
enum class Roi { EllipseS1, Erode4mm, Mosaic392 };
enum class Bmd { Calibration, MosaicCnn, DenseNet3d };

/// The names, in enum order: "classical", "mip-localizer"; ... (option values and JSON).
const std::vector<std::string>& names(Localize);
const std::vector<std::string>& names(Segment);
const std::vector<std::string>& names(Roi);
const std::vector<std::string>& names(Bmd);

std::string toString(Localize m);
std::string toString(Segment m);
std::string toString(Roi m);
std::string toString(Bmd m);

/// The method named `s`; nullopt for any other text.
std::optional<Localize> parseLocalize(const std::string& s);
std::optional<Segment> parseSegment(const std::string& s);
std::optional<Roi> parseRoi(const std::string& s);
std::optional<Bmd> parseBmd(const std::string& s);

/// "a, b, c": the names for an error message.
std::string listed(const std::vector<std::string>& names);

}  // namespace ctbmd::methods
