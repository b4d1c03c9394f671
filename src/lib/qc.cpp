#include "ctbmd/qc.hpp"

#include <png.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/pipeline.hpp"

namespace ctbmd {

namespace {

// 5x7 bitmap glyphs for level names (rows top to bottom, 5 bits each, MSB left).
const std::map<char, std::array<uint8_t, 7>>& font() {
  static const std::map<char, std::array<uint8_t, 7>> f = {
      {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}}, {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}}, {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
      {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}}, {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}}, {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
      {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}}, {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}}, {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
      {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}}, {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
      {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
      {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}}, {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
      {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}}, {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
      {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}}};
  return f;
}

struct Canvas {
  RgbImage img;
  void px(int x, int y, const std::array<uint8_t, 3>& c) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
    size_t q = (static_cast<size_t>(y) * img.width + x) * 3;
    img.rgb[q] = c[0];
    img.rgb[q + 1] = c[1];
    img.rgb[q + 2] = c[2];
  }
  void text(int x, int y, const std::string& s, const std::array<uint8_t, 3>& c, int scale) {
    for (char ch : s) {
      auto it = font().find(ch);
      const auto& g = it != font().end() ? it->second : font().at('?');
      for (int r = 0; r < 7; ++r)
        for (int b = 0; b < 5; ++b)
          if (g[r] >> (4 - b) & 1)
            for (int dy = 0; dy < scale; ++dy)
              for (int dx = 0; dx < scale; ++dx) px(x + b * scale + dx, y + r * scale + dy, c);
      x += 6 * scale;
    }
  }
  void cross(int x, int y, int r, const std::array<uint8_t, 3>& c) {
    for (int d = -r; d <= r; ++d)
      for (int t = -1; t <= 1; ++t) {
        px(x + d, y + t, c);
        px(x + t, y + d, c);
      }
  }
};

}  // namespace

RgbImage renderLocalizeQc(const Scan& scan, const LocalizeResult& loc) {
  const auto& can = canonicalOf(scan).image;
  auto sz = can->GetLargestPossibleRegion().GetSize();
  const int nx = static_cast<int>(sz[0]), ny = static_cast<int>(sz[1]), nz = static_cast<int>(sz[2]);
  const double sx = can->GetSpacing()[0], sy = can->GetSpacing()[1], szz = can->GetSpacing()[2];
  // MIPs: coronal (x, z) over y; sagittal (y, z) over x.
  std::vector<int16_t> cor(static_cast<size_t>(nx) * nz, -1024), sag(static_cast<size_t>(ny) * nz, -1024);
  const int16_t* p = can->GetBufferPointer();
  for (int k = 0; k < nz; ++k)
    for (int j = 0; j < ny; ++j) {
      const int16_t* row = p + (static_cast<size_t>(k) * ny + j) * nx;
      int16_t* c = cor.data() + static_cast<size_t>(k) * nx;
      int16_t& s = sag[static_cast<size_t>(k) * ny + j];
      for (int i = 0; i < nx; ++i) {
        c[i] = std::max(c[i], row[i]);
        s = std::max(s, row[i]);
      }
    }
  // Display about 600 px tall whatever the voxel size, z up.
  const double mm = std::clamp((nz * szz) / 600.0, 0.4, 2.0);  // about 600 px tall
  const int cw = static_cast<int>(nx * sx / mm), sw = static_cast<int>(ny * sy / mm);
  const int h = static_cast<int>(nz * szz / mm);
  Canvas cv;
  cv.img.width = cw + sw + 4;
  cv.img.height = h;
  cv.img.rgb.assign(static_cast<size_t>(cv.img.width) * h * 3, 0);
  auto grey = [](int hu) { return static_cast<uint8_t>(std::clamp((hu + 200) * 255 / 1500, 0, 255)); };
  for (int y = 0; y < h; ++y) {
    int k = std::clamp(static_cast<int>((h - 1 - y) * mm / szz), 0, nz - 1);
    for (int x = 0; x < cw; ++x) {
      int i = std::clamp(static_cast<int>(x * mm / sx), 0, nx - 1);
      uint8_t g = grey(cor[static_cast<size_t>(k) * nx + i]);
      cv.px(x, y, {g, g, g});
    }
    for (int x = 0; x < sw; ++x) {
      int j = std::clamp(static_cast<int>(x * mm / sy), 0, ny - 1);
      uint8_t g = grey(sag[static_cast<size_t>(k) * ny + j]);
      cv.px(cw + 4 + x, y, {g, g, g});
    }
  }
  const int scale = std::max(1, h / 250);
  // A cross and the name at a physical point, on both projections.
  auto mark = [&](const std::array<double, 3>& p_mm, const std::string& name,
                  const std::array<uint8_t, 3>& col) {
    CtImage::PointType pt;
    for (int a = 0; a < 3; ++a) pt[a] = p_mm[a];
    itk::ContinuousIndex<double, 3> ci;
    can->TransformPhysicalPointToContinuousIndex(pt, ci);
    int y = h - 1 - static_cast<int>(ci[2] * szz / mm);
    int xc = static_cast<int>(ci[0] * sx / mm), xs = cw + 4 + static_cast<int>(ci[1] * sy / mm);
    cv.cross(xc, y, 3 * scale, col);
    cv.cross(xs, y, 3 * scale, col);
    cv.text(xc + 5 * scale, y - 3 * scale, name, col, scale);
    cv.text(xs + 5 * scale, y - 3 * scale, name, col, scale);
  };
  for (const auto& l : loc.levels) {
    if (l.status == "missing") continue;
    mark(l.center_mm, l.name,
         l.status == "found" ? std::array<uint8_t, 3>{40, 255, 40} : std::array<uint8_t, 3>{255, 220, 0});
  }
  // Named vertebrae that are no reported level but change the count (a T13, an L6): orange.
  for (const auto& v : loc.vertebrae) {
    const int label = v.value("label", 0);
    if (label == kT13 || label == kL6)
      mark(v.at("center_mm").get<std::array<double, 3>>(), levelName(label), {255, 140, 0});
  }
  return cv.img;
}

namespace {
void writePngChannels(const std::filesystem::path& path, int width, int height, int channels,
                      const std::vector<uint8_t>& data, bool force) {
  atomicWrite(path, force, [&](const std::filesystem::path& tmp) {
    FILE* fp = std::fopen(tmp.c_str(), "wb");
    if (!fp) throw ProcessingError("cannot create '" + tmp.string() + "'");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
      png_destroy_write_struct(&png, &info);
      std::fclose(fp);
      throw ProcessingError("libpng failed writing '" + path.string() + "'");
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; ++y)
      png_write_row(png, const_cast<png_bytep>(data.data() + static_cast<size_t>(y) * width * channels));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fclose(fp) != 0) throw ProcessingError("failed writing '" + path.string() + "'");
  });
}
}  // namespace

void writePngRgb(const std::filesystem::path& path, const RgbImage& img, bool force) {
  writePngChannels(path, img.width, img.height, 3, img.rgb, force);
}

void writePng(const std::filesystem::path& path, int width, int height, const std::vector<uint8_t>& data,
              bool force) {
  writePngChannels(path, width, height, 1, data, force);
}

RgbImage renderClassificationQc(const ClassifyResult& r) {
  Canvas cv;
  cv.img.width = 520;
  cv.img.height = 260;
  cv.img.rgb.assign(static_cast<size_t>(cv.img.width) * cv.img.height * 3, 255);
  auto upper = [](std::string t) {
    for (auto& ch : t) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return t;
  };
  auto colourOf = [](const std::string& name, size_t i) -> std::array<uint8_t, 3> {
    if (name == "normal") return {46, 160, 67};
    if (name == "osteopenia" || name == "low_bone_mass") return {240, 160, 30};
    if (name == "osteoporosis") return {210, 50, 40};
    const std::array<std::array<uint8_t, 3>, 4> other = {
        {{60, 110, 200}, {150, 90, 180}, {120, 120, 120}, {0, 150, 150}}};
    return other[i % other.size()];
  };
  std::vector<std::pair<std::string, double>> parts;
  double total = 0;
  for (auto it = r.probabilities.begin(); it != r.probabilities.end(); ++it) {
    double p = std::max(0.0, it.value().get<double>());
    parts.emplace_back(it.key(), p);
    total += p;
  }
  const int cx = 130, cy = 140, rad = 100;
  if (total > 0) {
    for (int y = cy - rad; y <= cy + rad; ++y)
      for (int x = cx - rad; x <= cx + rad; ++x) {
        double dx = x - cx, dy = y - cy;
        if (dx * dx + dy * dy > rad * rad) continue;
        // angle clockwise from 12 o'clock, as a fraction of the circle
        double a = std::atan2(dx, -dy) / (2 * M_PI);
        if (a < 0) a += 1;
        double acc = 0;
        for (size_t i = 0; i < parts.size(); ++i) {
          acc += parts[i].second / total;
          if (a <= acc || i + 1 == parts.size()) {
            cv.px(x, y, colourOf(parts[i].first, i));
            break;
          }
        }
      }
  }
  const std::array<uint8_t, 3> black{0, 0, 0};
  cv.text(10, 10, upper(r.category) + " (" + upper(r.rule) + ")", black, 2);
  int y = 70;
  for (size_t i = 0; i < parts.size(); ++i) {
    for (int dy = 0; dy < 14; ++dy)
      for (int dx = 0; dx < 14; ++dx) cv.px(260 + dx, y + dy, colourOf(parts[i].first, i));
    char pct[32];
    std::snprintf(pct, sizeof pct, " %.1f%%", 100.0 * parts[i].second / std::max(total, 1e-12));
    cv.text(282, y, upper(parts[i].first) + pct, black, 2);
    y += 30;
  }
  return cv.img;
}

}  // namespace ctbmd
