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
      {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},  {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},  {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},  {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},  {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},  {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},  {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},  {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},  {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},  {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},  {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},  {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},  {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},  {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
      {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},  {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},  {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
      {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},  {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
      {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},  {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
      {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},  {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
      {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},  {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
      {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},  {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
      {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},  {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
      {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},  {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
      {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},  {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}},
      {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},  {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
      {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},  {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
      {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},  {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}},
      {'\'', {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}}, {'&', {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}}};
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
    for (char ch0 : s) {
      const char ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch0)));
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
  void line(double x0, double y0, double x1, double y1, const std::array<uint8_t, 3>& c) {
    const int n = static_cast<int>(std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    for (int t = 0; t <= n; ++t)
      px(static_cast<int>(std::lround(x0 + (x1 - x0) * t / n)),
         static_cast<int>(std::lround(y0 + (y1 - y0) * t / n)), c);
  }
  void rect(int x, int y, int w, int h, const std::array<uint8_t, 3>& c) {
    for (int dy = 0; dy < h; ++dy)
      for (int dx = 0; dx < w; ++dx) px(x + dx, y + dy, c);
  }
  // Text broken into lines of at most `cols` characters (wrapText); returns the y below it.
  int wrapped(int x, int y, const std::string& s, const std::array<uint8_t, 3>& c, int scale, int cols) {
    for (const auto& line : wrapText(s, static_cast<size_t>(std::max(1, cols)))) {
      text(x, y, line, c, scale);
      y += 9 * scale;
    }
    return y;
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

std::vector<std::string> wrapText(const std::string& s, size_t cols, size_t max_lines) {
  cols = std::max<size_t>(cols, 4);
  // Pieces that may end a line: each ends after a break character.
  std::vector<std::string> pieces;
  std::string cur;
  for (char ch : s) {
    cur += ch;
    if (ch == ' ' || ch == '+' || ch == ',' || ch == ':' || ch == '/') {
      pieces.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) pieces.push_back(cur);
  std::vector<std::string> lines;
  std::string line;
  auto trimmed = [](std::string t) {
    while (!t.empty() && t.back() == ' ') t.pop_back();
    return t;
  };
  auto flush = [&] {
    if (!trimmed(line).empty()) lines.push_back(trimmed(line));
    line.clear();
  };
  for (std::string p : pieces) {
    if (line.empty() && p == " ") continue;
    if (trimmed(line + p).size() > cols) flush();
    while (trimmed(p).size() > cols) {  // a word longer than a line: split it hard
      lines.push_back(p.substr(0, cols));
      p = p.substr(cols);
    }
    if (line.empty())
      while (!p.empty() && p.front() == ' ') p.erase(0, 1);
    line += p;
  }
  flush();
  if (max_lines > 0 && lines.size() > max_lines) {
    lines.resize(max_lines);
    std::string& last = lines.back();
    if (last.size() + 3 > cols) last.resize(cols - 3);
    last += "...";
  }
  return lines;
}

RgbImage renderLocalizeQc(const Scan& scan, const LocalizeResult& loc) { return renderCaseQc(scan, loc, {}); }

namespace {

using Rgb = std::array<uint8_t, 3>;
const Rgb kFound{40, 230, 40}, kPartial{255, 220, 0}, kUnusable{255, 70, 50}, kDisc{80, 170, 255},
    kRoi{0, 230, 230}, kAnchor{255, 140, 0}, kWhite{255, 255, 255}, kGrey{170, 170, 170};

// What the picture says about one level: its colour and a one-line status.
struct LevelView {
  Rgb colour = kGrey;
  std::string status;  // found | partial | unusable:... | missing
};

LevelView levelView(const LevelLocation& l, const BmdResult* bmd) {
  LevelView v;
  v.status = toString(l.status);
  if (bmd)
    if (const LevelBmd* b = bmd->find(l.label)) v.status = levelValidity(*b);
  if (!bmd && !l.flags.empty()) v.status = "unusable:" + l.flags.front();
  // the validity word (levelValidity's vocabulary), not only a LevelStatus
  v.colour = v.status == "found"     ? kFound
             : v.status == "partial" ? kPartial
             : v.status == "missing" ? kGrey
                                     : kUnusable;
  return v;
}

// Canonical-frame view of the scan for the picture: index <-> physical and label look-ups.
struct QcFrame {
  const CtImage* can;
  int nx, ny, nz;
  double sx, sy, sz;
  std::array<double, 3> index(const std::array<double, 3>& p) const {
    CtImage::PointType pt;
    for (int a = 0; a < 3; ++a) pt[a] = p[a];
    itk::ContinuousIndex<double, 3> ci;
    can->TransformPhysicalPointToContinuousIndex(pt, ci);
    return {ci[0], ci[1], ci[2]};
  }
  int16_t hu(int i, int j, int k) const {
    i = std::clamp(i, 0, nx - 1);
    j = std::clamp(j, 0, ny - 1);
    k = std::clamp(k, 0, nz - 1);
    return can->GetBufferPointer()[(static_cast<size_t>(k) * ny + j) * nx + i];
  }
  // label of `lab` (on the input grid) at canonical voxel (i, j, k); 0 outside
  static uint8_t labelAt(const LabelImage* lab, const CtImage* can, int i, int j, int k) {
    if (!lab) return 0;
    CtImage::IndexType ix{{i, j, k}};
    CtImage::PointType pt;
    can->TransformIndexToPhysicalPoint(ix, pt);
    LabelImage::IndexType li;
    if (!lab->TransformPhysicalPointToIndex(pt, li)) return 0;
    return lab->GetPixel(li);
  }
};

uint8_t greyOf(int hu) { return static_cast<uint8_t>(std::clamp((hu + 250) * 255 / 1250, 0, 255)); }

}  // namespace

namespace {
// The picture's geometry: the column views' scale and sizes, the header, the axial panels,
// and the column's centre per slice that the curved views pass through.
struct QcLayout {
  double mm = 1;               // mm per pixel of the column views
  int cw = 0, sw = 0, vh = 0;  // coronal and sagittal view widths, their height (px)
  int scale = 2, line_h = 18;  // text scale of the header and the views, its line height
  int panel = 180;             // axial panel side (px), 90 mm across
  int W = 0, H = 0, top = 0;   // picture size; the views' top edge (the header's height)
  int panels_per_row = 1, cols = 1;
  std::string why_or_flags;  // the header's second block
  size_t status_cols = 0;    // characters of a panel's status line
  int status_lines = 3, small_h = 9, caption_h = 0;
  std::vector<double> cxk, cyk;  // the column's centre per slice (canonical index)
  // The slice a view row shows.
  int sliceOfRow(const QcFrame& F, int py) const {
    return std::clamp(static_cast<int>((vh - 1 - py) * mm / F.sz), 0, F.nz - 1);
  }
  // View pixel of a physical point: coronal (x, z) and sagittal (y, z).
  std::array<double, 2> toView(const QcFrame& F, const std::array<double, 3>& p, bool sagittal) const {
    const auto ci = F.index(p);
    const double py = top + vh - 1 - ci[2] * F.sz / mm;
    const double px = sagittal ? cw + 12 + ci[1] * F.sy / mm : ci[0] * F.sx / mm;
    return {px, py};
  }
};

// The column's centre per slice (canonical index), from the centreline; the image centre
// where there is none.
void columnCentres(const QcFrame& F, const LocalizeResult& loc, QcLayout& L) {
  L.cxk.assign(F.nz, (F.nx - 1) / 2.0);
  L.cyk.assign(F.nz, (F.ny - 1) / 2.0);
  std::vector<std::array<double, 3>> cl;
  for (const auto& p : loc.centerline) cl.push_back(F.index(p));
  if (cl.empty()) return;
  for (int k = 0; k < F.nz; ++k) {
    double best = 1e30;
    for (const auto& c : cl)
      if (std::abs(c[2] - k) < best) {
        best = std::abs(c[2] - k);
        L.cxk[k] = c[0];
        L.cyk[k] = c[1];
      }
  }
}

QcLayout layoutFor(const QcFrame& F, const LocalizeResult& loc, const QcExtras& extra) {
  QcLayout L;
  columnCentres(F, loc, L);
  // Scale: the taller of the two views about 640 px, both at true aspect ratio, never a strip.
  const double wmm = F.nx * F.sx + F.ny * F.sy, hmm = F.nz * F.sz;
  L.mm = std::clamp(std::max(hmm / 640.0, wmm / 1100.0), 0.25, 3.0);
  L.cw = static_cast<int>(F.nx * F.sx / L.mm);
  L.sw = static_cast<int>(F.ny * F.sy / L.mm);
  L.vh = std::max(1, static_cast<int>(hmm / L.mm));
  L.line_h = 9 * L.scale;
  int named = 0;
  for (const auto& l : loc.levels) named += l.status != LevelStatus::Missing;
  L.W = std::max(L.cw + L.sw + 12, 6 * (L.panel + 8) + 8);  // six axial panels fit in a row
  L.panels_per_row = std::max(1, (L.W - 8) / (L.panel + 8));
  L.cols = (L.W - 16) / (6 * L.scale);
  // The header's second block: why nothing is named, or every flag, wrapped to the width.
  std::string flags;
  for (const auto& f : loc.flags) flags += (flags.empty() ? "" : " ") + f;
  for (const auto& f : extra.case_flags)
    if (flags.find(f) == std::string::npos) flags += (flags.empty() ? "" : " ") + f;
  L.why_or_flags = loc.status != SpineStatus::Named
                       ? "WHY: " + loc.reason
                       : "FLAGS: " + (flags.empty() ? std::string("NONE") : flags);
  const int block_lines =
      static_cast<int>(wrapText(L.why_or_flags, static_cast<size_t>(std::max(1, L.cols))).size());
  L.top = 8 + (2 + block_lines) * L.line_h + 8;
  // Under each axial panel: the name (scale 2) beside up to three lines of validity (scale 1,
  // full statuses such as "unusable:suspected_fracture+suspected_merge"), then HU and BMD.
  L.status_cols = static_cast<size_t>((L.panel - 40) / 6);
  L.caption_h = 4 + L.status_lines * L.small_h + 2 + L.small_h + 4;
  const int rows_axial = named ? (named + L.panels_per_row - 1) / L.panels_per_row : 0;
  L.H = L.top + L.vh + 8 + rows_axial * (L.panel + L.caption_h + 8) + 8;
  return L;
}

// The header: case, status, anchors, flags, legend (or why nothing is named).
void drawHeader(Canvas& cv, const QcLayout& L, const Scan& scan, const LocalizeResult& loc,
                const QcExtras& extra) {
  cv.text(8, 8,
          (extra.case_id.empty() ? scan.info.path.filename().string() : extra.case_id) + "   STATUS " +
              toString(loc.status) + "   ANCHORS " +
              (loc.anchors.used.empty() ? std::string("none") : loc.anchors.used),
          kWhite, L.scale);
  int y = 8 + L.line_h;
  y = cv.wrapped(8, y, L.why_or_flags, loc.status != SpineStatus::Named ? kUnusable : kWhite, L.scale,
                 L.cols);
  int x = 8;
  for (const auto& [c, t] : std::vector<std::pair<Rgb, std::string>>{{kFound, "FOUND"},
                                                                     {kPartial, "PARTIAL"},
                                                                     {kUnusable, "UNUSABLE"},
                                                                     {kDisc, "DISC PLANES"},
                                                                     {kRoi, "ROI"},
                                                                     {kAnchor, "ANCHOR"}}) {
    cv.rect(x, y, 12, 12, c);
    cv.text(x + 16, y, t, kWhite, L.scale);
    x += 16 + static_cast<int>(t.size()) * 6 * L.scale + 16;
  }
  cv.text(x, y, "HU WINDOW -250..1000", kGrey, L.scale);
}

// A coronal and a sagittal slice through the column (not projections): curved planar
// reformats, at each height through the column's centre in that slice (linear interpolation
// across it), so a curved or scoliotic spine stays in view and nothing in front of or behind
// the plane (ribs, the pelvis, bowel) is drawn over the discs.
void drawColumnViews(Canvas& cv, const QcLayout& L, const QcFrame& F) {
  auto lerp = [](int a, int b, double t) { return static_cast<int>(std::lround(a + (b - a) * t)); };
  for (int py = 0; py < L.vh; ++py) {
    const int k = L.sliceOfRow(F, py);
    const double yc = std::clamp(L.cyk[k], 0.0, F.ny - 1.0), xc = std::clamp(L.cxk[k], 0.0, F.nx - 1.0);
    const int j0 = static_cast<int>(std::floor(yc)), i0 = static_cast<int>(std::floor(xc));
    for (int px = 0; px < L.cw; ++px) {
      const int i = std::clamp(static_cast<int>(px * L.mm / F.sx), 0, F.nx - 1);
      const uint8_t g = greyOf(lerp(F.hu(i, j0, k), F.hu(i, j0 + 1, k), yc - j0));
      cv.px(px, L.top + py, {g, g, g});
    }
    for (int px = 0; px < L.sw; ++px) {
      const int j = std::clamp(static_cast<int>(px * L.mm / F.sy), 0, F.ny - 1);
      const uint8_t g = greyOf(lerp(F.hu(i0, j, k), F.hu(i0 + 1, j, k), xc - i0));
      cv.px(L.cw + 12 + px, L.top + py, {g, g, g});
    }
  }
}

// Body outlines from the segmentation in both views, in each level's colour: boundary pixels
// of the label in the same plane.
void drawBodyOutlines(Canvas& cv, const QcLayout& L, const QcFrame& F, const LabelImage* seg,
                      const std::map<int, Rgb>& colour_of) {
  if (!seg) return;
  auto labelView = [&](bool sagittal, int px, int py) -> int {
    if (px < 0 || py < 0 || py >= L.vh || px >= (sagittal ? L.sw : L.cw)) return 0;
    const int k = L.sliceOfRow(F, py);
    const int ic = static_cast<int>(std::lround(L.cxk[k])), jc = static_cast<int>(std::lround(L.cyk[k]));
    if (sagittal)
      return QcFrame::labelAt(seg, F.can, ic, std::clamp(static_cast<int>(px * L.mm / F.sy), 0, F.ny - 1), k);
    return QcFrame::labelAt(seg, F.can, std::clamp(static_cast<int>(px * L.mm / F.sx), 0, F.nx - 1), jc, k);
  };
  for (int sag = 0; sag < 2; ++sag) {
    const int w = sag ? L.sw : L.cw, x0 = sag ? L.cw + 12 : 0;
    std::vector<int> lab(static_cast<size_t>(w) * L.vh);
    for (int py = 0; py < L.vh; ++py)
      for (int px = 0; px < w; ++px) lab[static_cast<size_t>(py) * w + px] = labelView(sag, px, py);
    for (int py = 1; py + 1 < L.vh; ++py)
      for (int px = 1; px + 1 < w; ++px) {
        const int l = lab[static_cast<size_t>(py) * w + px];
        const auto it = colour_of.find(l);
        if (!l || it == colour_of.end()) continue;
        const bool edge = lab[static_cast<size_t>(py - 1) * w + px] != l ||
                          lab[static_cast<size_t>(py + 1) * w + px] != l ||
                          lab[static_cast<size_t>(py) * w + px - 1] != l ||
                          lab[static_cast<size_t>(py) * w + px + 1] != l;
        if (edge) cv.px(x0 + px, L.top + py, it->second);
      }
  }
}

// Disc planes (each level's endplate planes) as 50 mm lines in both views, then the names.
void drawDiscPlanes(Canvas& cv, const QcLayout& L, const QcFrame& F, const LocalizeResult& loc,
                    const std::map<int, Rgb>& colour_of) {
  for (const auto& l : loc.levels) {
    if (l.status == LevelStatus::Missing) continue;
    const auto& col = colour_of.at(l.label);
    for (const auto& [pt, n] :
         {std::pair{l.superior_point, l.superior_normal}, std::pair{l.inferior_point, l.inferior_normal}}) {
      for (int sag = 0; sag < 2; ++sag) {
        // direction in the view's plane perpendicular to the normal
        std::array<double, 3> d =
            sag ? std::array<double, 3>{0, n[2], -n[1]} : std::array<double, 3>{n[2], 0, -n[0]};
        const double dn = std::hypot(d[0], d[1], d[2]);
        if (dn < 1e-9) continue;
        std::array<double, 3> a, b;
        for (int q = 0; q < 3; ++q) {
          a[q] = pt[q] - 25 * d[q] / dn;
          b[q] = pt[q] + 25 * d[q] / dn;
        }
        const auto va = L.toView(F, a, sag), vb = L.toView(F, b, sag);
        cv.line(va[0], va[1], vb[0], vb[1], kDisc);
      }
    }
    for (int sag = 0; sag < 2; ++sag) {
      const auto v = L.toView(F, l.center_mm, sag);
      cv.cross(static_cast<int>(v[0]), static_cast<int>(v[1]), 4, col);
      cv.text(static_cast<int>(v[0]) + (sag ? -44 : 30), static_cast<int>(v[1]) - 6, l.name, col, L.scale);
    }
  }
}

// Anchors: the last rib-bearing vertebra, the sacrum, T1 when the rib pairs were counted; a
// T13 or L6 only when a count from T1 named it. Then the views' orientation labels.
void drawAnchors(Canvas& cv, const QcLayout& L, const QcFrame& F, const LocalizeResult& loc) {
  auto anchorMark = [&](int idx, const std::string& what) {
    if (idx < 0) return;
    for (const auto& v : loc.vertebrae)
      if (v.index == idx) {
        const auto p = L.toView(F, v.center_mm, false);
        cv.text(static_cast<int>(p[0]) - 12 - static_cast<int>(what.size()) * 6 * L.scale,
                static_cast<int>(p[1]) - 6, what, kAnchor, L.scale);
        return;
      }
  };
  if (loc.status == SpineStatus::Named && loc.anchors.naming) {
    const auto& n = *loc.anchors.naming;
    if (loc.anchors.used.find("rib") != std::string::npos) anchorMark(n.last_rib_bearing_index, "LAST RIB");
    if (n.sacrum_seen) anchorMark(n.sacrum_index, "SACRUM");
    if (n.first_rib_in_view) anchorMark(n.first_rib_index, "T1");
    for (const auto& v : loc.vertebrae)
      if (n.first_rib_in_view && (v.label == kT13 || v.label == kL6)) {
        const auto p = L.toView(F, v.center_mm, false);
        cv.cross(static_cast<int>(p[0]), static_cast<int>(p[1]), 4, kAnchor);
        cv.text(static_cast<int>(p[0]) + 30, static_cast<int>(p[1]) - 6, levelName(v.label), kAnchor,
                L.scale);
      }
  }
  cv.text(4, L.top + 4, "R", kGrey, L.scale);
  cv.text(L.cw - 16, L.top + 4, "L", kGrey, L.scale);
  cv.text(L.cw + 16, L.top + 4, "A", kGrey, L.scale);
  cv.text(L.cw + L.sw, L.top + 4, "P", kGrey, L.scale);
  cv.text(4, L.top + L.vh - 20, "CORONAL SLICE", kGrey, L.scale);
  cv.text(L.cw + 16, L.top + L.vh - 20, "SAGITTAL SLICE", kGrey, L.scale);
}

// One axial panel per level through its centre: body and ROI outlines, status, HU and BMD.
void drawAxialPanels(Canvas& cv, const QcLayout& L, const QcFrame& F, const LocalizeResult& loc,
                     const QcExtras& extra) {
  const int panel = L.panel;
  int n_panel = 0;
  for (const auto& l : loc.levels) {
    if (l.status == LevelStatus::Missing) continue;
    const int col = n_panel % L.panels_per_row, row = n_panel / L.panels_per_row;
    ++n_panel;
    const int x0 = 8 + col * (panel + 8), y0 = L.top + L.vh + 8 + row * (panel + L.caption_h + 8);
    const auto c = F.index(l.center_mm);
    const int k = std::clamp(static_cast<int>(std::lround(c[2])), 0, F.nz - 1);
    const double pmm = 90.0 / panel;  // 90 mm across
    std::vector<uint8_t> body(static_cast<size_t>(panel) * panel), roi(body.size());
    for (int py = 0; py < panel; ++py)
      for (int px = 0; px < panel; ++px) {
        const int i = static_cast<int>(std::lround(c[0] + (px - panel / 2) * pmm / F.sx));
        const int j = static_cast<int>(std::lround(c[1] + (py - panel / 2) * pmm / F.sy));
        const uint8_t g = greyOf(F.hu(i, j, k));
        cv.px(x0 + px, y0 + py, {g, g, g});
        if (i < 0 || j < 0 || i >= F.nx || j >= F.ny) continue;
        body[static_cast<size_t>(py) * panel + px] =
            QcFrame::labelAt(extra.segmentation, F.can, i, j, k) == l.label;
        roi[static_cast<size_t>(py) * panel + px] = QcFrame::labelAt(extra.roi, F.can, i, j, k) == l.label;
      }
    const auto lv = levelView(l, extra.bmd);
    for (int py = 1; py + 1 < panel; ++py)
      for (int px = 1; px + 1 < panel; ++px) {
        auto edge = [&](const std::vector<uint8_t>& m) {
          const size_t q = static_cast<size_t>(py) * panel + px;
          return m[q] && (!m[q - 1] || !m[q + 1] || !m[q - panel] || !m[q + panel]);
        };
        if (edge(body)) cv.px(x0 + px, y0 + py, lv.colour);
        if (edge(roi)) cv.px(x0 + px, y0 + py, kRoi);
      }
    cv.text(x0, y0 + panel + 4, l.name, lv.colour, L.scale);
    int sy = y0 + panel + 4;
    for (const auto& line : wrapText(lv.status, L.status_cols, L.status_lines)) {
      cv.text(x0 + 40, sy, line, lv.colour, 1);
      sy += L.small_h;
    }
    std::string meas;
    if (extra.bmd)
      if (const LevelBmd* b = extra.bmd->find(l.label); b && b->voxels > 0) {
        char buf[80];
        std::snprintf(buf, sizeof buf, "%.0f HU  %.0f MG/CM3", b->hu, b->bmd);
        meas = buf;
      }
    cv.text(x0, y0 + panel + 4 + L.status_lines * L.small_h + 2,
            meas.empty() ? std::string("NOT MEASURED") : meas, kWhite, 1);
  }
}
}  // namespace

RgbImage renderCaseQc(const Scan& scan, const LocalizeResult& loc, const QcExtras& extra) {
  const auto& can = canonicalOf(scan).image;
  auto sz = can->GetLargestPossibleRegion().GetSize();
  const QcFrame F{can.GetPointer(),        static_cast<int>(sz[0]), static_cast<int>(sz[1]),
                  static_cast<int>(sz[2]), can->GetSpacing()[0],    can->GetSpacing()[1],
                  can->GetSpacing()[2]};
  const QcLayout L = layoutFor(F, loc, extra);
  Canvas cv;
  cv.img.width = L.W;
  cv.img.height = L.H;
  cv.img.rgb.assign(static_cast<size_t>(L.W) * L.H * 3, 0);
  std::map<int, Rgb> colour_of;
  for (const auto& l : loc.levels) colour_of[l.label] = levelView(l, extra.bmd).colour;
  drawHeader(cv, L, scan, loc, extra);
  drawColumnViews(cv, L, F);
  drawBodyOutlines(cv, L, F, extra.segmentation, colour_of);
  drawDiscPlanes(cv, L, F, loc, colour_of);
  drawAnchors(cv, L, F, loc);
  drawAxialPanels(cv, L, F, loc, extra);
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
