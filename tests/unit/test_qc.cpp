// The QC picture's captions: nothing a person needs to judge a level is cut off.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "ctbmd/phantom.hpp"
#include "ctbmd/qc.hpp"
#include "test_support.hpp"

using namespace ctbmd;

namespace {
std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l;
  return s;
}
}  // namespace

TEST(QcText, WrapsAtSeparatorsAndKeepsEveryCharacter) {
  const std::string status = "unusable:suspected_fracture+suspected_merge+contrast_enhanced";
  const auto lines = wrapText(status, 23);
  ASSERT_EQ(lines.size(), 4u);  // unusable: | suspected_fracture+ | suspected_merge+ | contrast_enhanced
  for (const auto& l : lines) EXPECT_LE(l.size(), 23u) << l;
  EXPECT_EQ(lines[0], "unusable:");
  EXPECT_EQ(lines[1], "suspected_fracture+");
  EXPECT_EQ(joined(lines), status);  // only breaks were added: nothing lost
}

TEST(QcText, SpacesAreDroppedAtBreaksAndLongWordsSplit) {
  const auto lines = wrapText("FLAGS: contrast_enhanced   suspected_merge", 16);
  for (const auto& l : lines) {
    EXPECT_LE(l.size(), 16u) << l;
    EXPECT_FALSE(l.empty());
    EXPECT_NE(l.front(), ' ') << l;
    EXPECT_NE(l.back(), ' ') << l;
  }
  const auto hard = wrapText(std::string(50, 'x'), 20);
  ASSERT_EQ(hard.size(), 3u);
  EXPECT_EQ(hard[0].size(), 20u);
  EXPECT_EQ(hard[2].size(), 10u);
}

TEST(QcText, ACutIsMarked) {
  const std::string status = "unusable:suspected_fracture+suspected_merge+contrast_enhanced+metal+too_small";
  const auto lines = wrapText(status, 23, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_LE(lines.back().size(), 23u);
  EXPECT_EQ(lines.back().substr(lines.back().size() - 3), "...");
  EXPECT_TRUE(wrapText("", 10).empty());
}

// The picture itself: a level whose validity lists three flags shows more of it than one with
// one flag. Under the old 23-character cut both read "UNUSABLE:SUSPECTED_FRAC" and painted the
// same number of pixels in the unusable colour.
TEST(QcPicture, LongValidityIsShownWhole) {
  auto p = test::smallPhantom(3);
  auto ph = makePhantom(p);
  Scan scan;
  scan.image = ph.ct;
  scan.info.path = "phantom.nii.gz";
  LocalizeResult loc;
  LevelLocation l1;
  l1.label = 20;
  l1.name = "L1";
  l1.status = LevelStatus::Found;
  const auto& t = ph.truth["levels"]["L1"];
  ASSERT_TRUE(t.contains("centroid_mm")) << t.dump();
  for (int i = 0; i < 3; ++i) l1.center_mm[i] = t["centroid_mm"][i].get<double>();
  loc.levels.push_back(l1);
  auto redPixels = [&](const std::vector<std::string>& flags) {
    BmdResult bmd;
    LevelBmd b;
    b.label = 20;
    b.name = "L1";
    b.status = LevelStatus::Found;
    b.usable = false;
    b.flags = flags;
    bmd.levels.push_back(b);
    QcExtras extra;
    extra.bmd = &bmd;
    const RgbImage img = renderCaseQc(scan, loc, extra);
    long n = 0;
    for (size_t q = 0; q + 2 < img.rgb.size(); q += 3)
      n += img.rgb[q] == 255 && img.rgb[q + 1] == 70 && img.rgb[q + 2] == 50;
    return n;
  };
  const long one = redPixels({"suspected_fracture"});
  const long three = redPixels({"suspected_fracture", "suspected_merge", "contrast_enhanced"});
  // "unusable:suspected_fracture" is 27 characters, the three-flag status 61: the text alone
  // paints at least ~8 pixels per character at scale 1, so the difference exceeds 30 characters' worth.
  EXPECT_GT(three - one, 30 * 8) << "one flag: " << one << " px, three: " << three << " px";
}
