// VerSe-layout datasets: the reader on the real VerSe masks in the shared reference folder,
// the phantom writer's round trip, and the training samples cut from a case.
#include <gtest/gtest.h>

#include <cmath>

#include "ctbmd/dataset.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/levels.hpp"
#include "ctbmd/phantom.hpp"
#include "ctbmd/training_data.hpp"
#include "test_support.hpp"

namespace ctbmd {
namespace {

TEST(VerseDataset, FindsTheSubjectsOfTheRealVerseLayout) {
  if (!test::haveReference()) GTEST_SKIP() << "shared reference data not found";
  auto root = test::reference("verse_masks/indvertseg");
  auto subjects = scanVerseDataset(root);
  ASSERT_EQ(subjects.size(), 4u);
  std::map<std::string, VerseSubject> by;
  for (const auto& s : subjects) by[s.key] = s;
  ASSERT_TRUE(by.count("sub-verse004"));
  ASSERT_TRUE(by.count("sub-gl003_dir-ax"));  // an entity in the file name
  EXPECT_EQ(by["sub-gl003_dir-ax"].subject, "sub-gl003");
  EXPECT_EQ(by["sub-verse004"].split, "Verse19/dataset-verse19training");
  for (const auto& s : subjects) {
    EXPECT_TRUE(s.ct.empty()) << s.key;  // the images are not distributed here
    EXPECT_FALSE(s.centroids.empty()) << s.key;
  }
  // No CT: loading says so, naming the subject.
  try {
    loadVerseCase(by["sub-verse004"]);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("sub-verse004"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("no CT"), std::string::npos);
  }
}

// Every VerSe centroid (a vertebral-body centroid) must fall on its own vertebra's mask:
// proof that the voxel axes and the grid were read the same way as VerSe wrote them.
TEST(VerseDataset, CentroidsLieOnTheirVertebrae) {
  if (!test::haveReference()) GTEST_SKIP() << "shared reference data not found";
  for (const char* rel :
       {"verse_masks/indvertseg/Verse19/dataset-verse19training/derivatives/sub-verse004/",
        "verse_masks/indvertseg/Verse19/dataset-verse19validation/derivatives/sub-verse010/"}) {
    auto dir = test::reference(rel);
    std::string key = dir.parent_path().filename().string();
    auto mask = readLabels(dir / (key + "_seg-vert_msk.nii.gz"));
    auto c = readVerseCentroids(dir / (key + "_seg-subreg_ctd.json"));
    EXPECT_EQ(c.axes, "PIR");
    auto phys = centroidsToPhysical(c, mask.GetPointer(), key);
    ASSERT_GE(phys.size(), 5u);
    for (const auto& [label, p] : phys) {
      LabelImage::PointType pt;
      for (int a = 0; a < 3; ++a) pt[a] = p[a];
      LabelImage::IndexType idx;
      ASSERT_TRUE(mask->TransformPhysicalPointToIndex(pt, idx)) << key << " " << label;
      // the body centroid lies inside the vertebra or within 2 voxels of it (concave bodies)
      bool near = false;
      for (int dz = -2; dz <= 2 && !near; ++dz)
        for (int dy = -2; dy <= 2 && !near; ++dy)
          for (int dx = -2; dx <= 2 && !near; ++dx) {
            auto q = idx;
            q[0] += dx, q[1] += dy, q[2] += dz;
            near = mask->GetLargestPossibleRegion().IsInside(q) && mask->GetPixel(q) == label;
          }
      EXPECT_TRUE(near) << key << " label " << label;
    }
    // Read on the wrong axes, the same file is refused.
    c.axes = "LPS";
    EXPECT_THROW(centroidsToPhysical(c, mask.GetPointer(), key), InputError);
  }
}

TEST(VerseDataset, PhantomRoundTripThroughTheLayout) {
  test::TempDir tmp;
  std::string cmd =
      test::binary("ctbmd-phantom").string() + " -q -o " + tmp.path().string() +
      " --layout verse --subject t1 --seed 3 --size 192x192 --pixel 1.5 --slice 3 --orientation PIR";
  ASSERT_EQ(test::run(cmd), 0);
  auto subjects = scanVerseDataset(tmp.path());
  ASSERT_EQ(subjects.size(), 1u);
  EXPECT_EQ(subjects[0].key, "sub-t1");
  ASSERT_FALSE(subjects[0].ct.empty());
  ASSERT_FALSE(subjects[0].subreg_mask.empty());
  auto c = loadVerseCase(subjects[0]);
  EXPECT_TRUE(c.bodies_from_subregions);
  // The bodies from the sub-regions are exactly the phantom's body labels.
  auto truth = readLabels(tmp.path() / "derivatives/sub-t1/sub-t1_seg-ctbmd_msk.nii.gz");
  const uint8_t* t = truth->GetBufferPointer();
  const uint8_t* b = c.bodies->GetBufferPointer();
  size_t n = truth->GetLargestPossibleRegion().GetNumberOfPixels(), diff = 0, body = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t want = (t[i] >= 1 && t[i] <= 25) || t[i] == kT13 ? t[i] : 0;
    diff += b[i] != want;
    body += want != 0;
  }
  EXPECT_GT(body, 1000u);
  EXPECT_EQ(diff, 0u);
  // Centroids (from the file) equal the bodies' centres of mass (from the map) within 0.1 mm.
  for (int label : {kL1, kL3, kL5}) {
    ASSERT_TRUE(c.centroids.count(label));
    double s[3] = {0, 0, 0}, cnt = 0;
    auto sz = truth->GetLargestPossibleRegion().GetSize();
    for (size_t i = 0; i < n; ++i)
      if (t[i] == label) {
        LabelImage::IndexType idx = {{static_cast<long>(i % sz[0]), static_cast<long>((i / sz[0]) % sz[1]),
                                      static_cast<long>(i / (sz[0] * sz[1]))}};
        LabelImage::PointType p;
        truth->TransformIndexToPhysicalPoint(idx, p);
        for (int a = 0; a < 3; ++a) s[a] += p[a];
        ++cnt;
      }
    for (int a = 0; a < 3; ++a) EXPECT_NEAR(c.centroids[label][a], s[a] / cnt, 0.1) << label;
  }
  // Training samples from it: shapes, and the body share of the targets is plausible.
  training::Samples S;
  training::SegmentSampling ss;
  addSegmentSamples(c, ss, S);
  ASSERT_GT(S.images.size(), 20u);  // T12-L5 plus margins every 2 mm at 3 mm slices
  double fg = 0, tot = 0;
  for (const auto& y : S.targets) {
    ASSERT_EQ(y.shape, (std::vector<int64_t>{64, 64}));
    for (float v : y.data) fg += v, tot += 1;
  }
  // A ~40 x 30 mm body in an 80 x 80 mm patch on most slices: 5-25 % of the pixels.
  EXPECT_GT(fg / tot, 0.05);
  EXPECT_LT(fg / tot, 0.25);
  training::Samples M;
  training::MipSampling ms;
  ASSERT_TRUE(addMipSamples(c, ms, M));
  ASSERT_EQ(M.targets.size(), 1u);
  EXPECT_EQ(M.images[0].shape, (std::vector<int64_t>{2, 128, 64}));
  // Target: mm from the scan's top edge to L1's top; T11..S1 phantom: between 1 and 2.5
  // vertebrae (25-110 mm).
  EXPECT_GT(M.targets[0].data[0], 25.f);
  EXPECT_LT(M.targets[0].data[0], 110.f);
}

TEST(VerseDataset, RefusesAFolderWithoutSubjects) {
  test::TempDir tmp;
  EXPECT_THROW(scanVerseDataset(tmp.path()), InputError);
  EXPECT_THROW(scanVerseDataset(tmp / "nope"), InputError);
}

}  // namespace
}  // namespace ctbmd
