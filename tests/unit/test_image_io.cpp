// Geometry survives read -> write -> read for every format and orientation, DICOM comes
// out on the grid another tool wrote, and what cannot be represented is refused.
#include <gtest/gtest.h>
#include <itkImageRegionConstIteratorWithIndex.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "internal/header_checks.hpp"
#include "test_support.hpp"

using namespace ctbmd;
using ctbmd::test::TempDir;
namespace fs = std::filesystem;

namespace {
template <typename A, typename B>
void expectSameGeometry(const A* a, const B* b) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a->GetLargestPossibleRegion().GetSize()[i], b->GetLargestPossibleRegion().GetSize()[i]);
    EXPECT_NEAR(a->GetSpacing()[i], b->GetSpacing()[i], 1e-5);
    EXPECT_NEAR(a->GetOrigin()[i], b->GetOrigin()[i], 1e-4);
    for (int j = 0; j < 3; ++j) EXPECT_NEAR(a->GetDirection()[i][j], b->GetDirection()[i][j], 1e-6);
  }
}
}  // namespace

TEST(Orientation, CodesRoundTrip) {
  const char* codes[] = {"RAS", "LPS", "PIR", "LAS", "RPI", "ASL", "IRP", "SLA"};
  for (const char* c : codes) EXPECT_EQ(orientationCode(directionFromCode(c)), c);
  EXPECT_THROW(directionFromCode("LLS"), UsageError);
  EXPECT_THROW(directionFromCode("XYZ"), UsageError);
}

TEST(Canonical, PermutationIsExactAndKeepsWorldPositions) {
  for (const char* code : {"RAS", "PIR", "LAS", "IAR", "LPS"}) {
    auto img = CtImage::New();
    CtImage::SizeType sz;
    sz[0] = 7;
    sz[1] = 5;
    sz[2] = 4;
    img->SetRegions(CtImage::RegionType(sz));
    CtImage::SpacingType sp;
    sp[0] = 0.7;
    sp[1] = 1.3;
    sp[2] = 2.5;
    img->SetSpacing(sp);
    CtImage::PointType o;
    o[0] = 10.5;
    o[1] = -20.25;
    o[2] = 33;
    img->SetOrigin(o);
    img->SetDirection(directionFromCode(code));
    img->Allocate();
    for (size_t i = 0; i < img->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
      img->GetBufferPointer()[i] = static_cast<int16_t>(i * 7 % 1000);
    auto m = canonicalAxisMap(img);
    auto can = toCanonical<int16_t>(img.GetPointer(), m);
    EXPECT_EQ(orientationCode(can->GetDirection()), "LPS") << code;
    // every voxel keeps its world position and value
    itk::ImageRegionConstIteratorWithIndex<CtImage> it(img, img->GetLargestPossibleRegion());
    for (; !it.IsAtEnd(); ++it) {
      CtImage::PointType p;
      img->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      CtImage::IndexType ci;
      ASSERT_TRUE(can->TransformPhysicalPointToIndex(p, ci));
      EXPECT_EQ(can->GetPixel(ci), it.Get());
    }
    auto back = fromCanonical<int16_t>(can.GetPointer(), m);
    expectSameGeometry(img.GetPointer(), back.GetPointer());
    EXPECT_EQ(0, std::memcmp(back->GetBufferPointer(), img->GetBufferPointer(),
                             img->GetLargestPossibleRegion().GetNumberOfPixels() * 2));
  }
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(RoundTrip, GeometryAndValuesSurvive) {
  if (!test::haveReference()) GTEST_SKIP() << "reference data not available";
  auto [ext, code] = GetParam();
  // The PIR L3 cut-out, stored in each orientation by an exact permutation.
  Scan src = readScan(test::reference("tptbox/sub-ct_label-22_ct.nii.gz"));
  ASSERT_EQ(src.info.orientation, "PIR");
  auto can = toCanonical<int16_t>(src.image.GetPointer(), canonicalAxisMap(src.image.GetPointer()));
  auto target = fromCanonical<int16_t>(can.GetPointer(), axisMapForCode(can.GetPointer(), code));
  EXPECT_EQ(orientationCode(target->GetDirection()), code);
  TempDir d;
  fs::path f = d / ("img" + ext);
  writeImage(target.GetPointer(), f, false);
  Scan back = readScan(f);
  EXPECT_EQ(back.info.orientation, code);
  expectSameGeometry(target.GetPointer(), back.image.GetPointer());
  EXPECT_EQ(0, std::memcmp(back.image->GetBufferPointer(), target->GetBufferPointer(),
                           target->GetLargestPossibleRegion().GetNumberOfPixels() * 2));
  // Labels too.
  auto lab =
      readLabels(test::reference("tptbox/sub-ct_seg-vert_label-22_msk.nii.gz"), src.image.GetPointer());
  auto lcan = toCanonical<uint8_t>(lab.GetPointer(), canonicalAxisMap(lab.GetPointer()));
  auto ltarget = fromCanonical<uint8_t>(lcan.GetPointer(), axisMapForCode(lcan.GetPointer(), code));
  writeImage(ltarget.GetPointer(), d / ("lab" + ext), false);
  auto lback = readLabels(d / ("lab" + ext), back.image.GetPointer());
  EXPECT_EQ(0, std::memcmp(lback->GetBufferPointer(), ltarget->GetBufferPointer(),
                           ltarget->GetLargestPossibleRegion().GetNumberOfPixels()));
}

INSTANTIATE_TEST_SUITE_P(FormatsAndOrientations, RoundTrip,
                         ::testing::Combine(::testing::Values(".nii", ".nii.gz", ".nrrd", ".mha"),
                                            ::testing::Values("RAS", "LPS", "PIR", "LAS")),
                         [](const auto& info) {
                           std::string e = std::get<0>(info.param).substr(1);
                           for (auto& c : e)
                             if (c == '.') c = '_';
                           return e + "_" + std::get<1>(info.param);
                         });

TEST(ImageIo, Int32NiftiKeepsHu) {
  if (!test::haveReference()) GTEST_SKIP();
  Scan s = readScan(test::reference("totalsegmentator/example_ct.nii.gz"));
  EXPECT_EQ(s.info.disk_pixel_type, "int");
  EXPECT_EQ(s.info.orientation, "RAS");
  auto sz = s.image->GetLargestPossibleRegion().GetSize();
  EXPECT_EQ(sz[0], 122u);
  EXPECT_EQ(sz[1], 101u);
  EXPECT_EQ(sz[2], 112u);
  int16_t mn = 32767, mx = -32768;
  for (size_t i = 0; i < s.image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i) {
    mn = std::min(mn, s.image->GetBufferPointer()[i]);
    mx = std::max(mx, s.image->GetBufferPointer()[i]);
  }
  EXPECT_EQ(mn, -1207);  // the README's stated range
  EXPECT_EQ(mx, 3382);
  EXPECT_EQ(s.info.sha256, sha256File(test::reference("totalsegmentator/example_ct.nii.gz")));
}

TEST(ImageIo, DicomSeriesLandsOnTheGridOfTheOtherTool) {
  if (!test::haveReference()) GTEST_SKIP();
  // JPEG-2000 lossless series; TotalSegmentator wrote its labels from the same series.
  Scan s = readScan(test::reference("totalsegmentator/dicom_series"));
  EXPECT_EQ(s.info.format, "dicom");
  EXPECT_EQ(s.info.modality, "CT");
  EXPECT_EQ(s.info.kvp, "120");
  auto seg = readFloatImage(test::reference("totalsegmentator/ts_dicom_series_seg.nii.gz"));
  auto a = s.image->GetLargestPossibleRegion().GetSize(), b = seg->GetLargestPossibleRegion().GetSize();
  ASSERT_EQ(a[0] * a[1] * a[2], b[0] * b[1] * b[2]);
  // Same voxel-to-world mapping once the storage order is accounted for: every corner voxel
  // of the CT maps onto a voxel centre of the label map within 0.01 mm.
  double worst = 0;
  for (int ci = 0; ci < 8; ++ci) {
    CtImage::IndexType idx;
    for (int k = 0; k < 3; ++k) idx[k] = (ci >> k & 1) ? static_cast<long>(a[k]) - 1 : 0;
    CtImage::PointType p;
    s.image->TransformIndexToPhysicalPoint(idx, p);
    itk::ContinuousIndex<double, 3> c;
    seg->TransformPhysicalPointToContinuousIndex(p, c);
    FloatImage::IndexType r;
    for (int k = 0; k < 3; ++k) r[k] = std::lround(c[k]);
    FloatImage::PointType q;
    seg->TransformIndexToPhysicalPoint(r, q);
    for (int k = 0; k < 3; ++k) {
      worst = std::max(worst, std::abs(p[k] - q[k]));
      EXPECT_GE(r[k], 0);
      EXPECT_LT(r[k], static_cast<long>(b[k]));
    }
  }
  EXPECT_LT(worst, 0.01);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(s.image->GetSpacing()[k], seg->GetSpacing()[k], 0.01);
  // HU: rescale intercept -1024 applied (air outside the body near -1000).
  int16_t mn = 32767;
  for (size_t i = 0; i < s.image->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
    mn = std::min(mn, s.image->GetBufferPointer()[i]);
  EXPECT_LE(mn, -1000);
}

TEST(ImageIo, GantryTiltIsRefusedWithAReason) {
  if (!test::haveReference()) GTEST_SKIP();
  try {
    readScan(test::reference("dicom_gantry_tilt"));
    FAIL() << "a tilted series must not be read silently";
  } catch (const InputError& e) {
    std::string m = e.what();
    EXPECT_TRUE(m.find("gantry tilt") != std::string::npos ||
                m.find("uneven slice spacing") != std::string::npos)
        << m;
    EXPECT_NE(m.find("dicom_gantry_tilt"), std::string::npos) << m;
  }
}

TEST(ImageIo, TruncatedFileIsAnInputError) {
  if (!test::haveReference()) GTEST_SKIP();
  TempDir d;
  std::ifstream in(test::reference("totalsegmentator/example_ct.nii.gz"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(d / "cut.nii.gz", std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  try {
    readScan(d / "cut.nii.gz");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.nii.gz"), std::string::npos);
  }
  EXPECT_THROW(readScan(d / "missing.nii.gz"), InputError);
}

TEST(ImageIo, QformSformDisagreementIsWarned) {
  if (!test::haveReference()) GTEST_SKIP();
  TempDir d;
  Scan s = readScan(test::reference("tptbox/sub-ct_label-22_ct.nii.gz"));
  writeImage(s.image.GetPointer(), d / "a.nii", false);
  // Move the sform's x offset by 5 mm (srow_x[3] at byte 292), keep the qform.
  std::fstream f(d / "a.nii", std::ios::in | std::ios::out | std::ios::binary);
  short qcode, scode;
  f.seekg(252);
  f.read(reinterpret_cast<char*>(&qcode), 2);
  f.read(reinterpret_cast<char*>(&scode), 2);
  ASSERT_GT(qcode, 0);
  ASSERT_GT(scode, 0);
  float v;
  f.seekg(292);
  f.read(reinterpret_cast<char*>(&v), 4);
  v += 5.0f;
  f.seekp(292);
  f.write(reinterpret_cast<char*>(&v), 4);
  f.close();
  Scan t = readScan(d / "a.nii");
  ASSERT_FALSE(t.info.warnings.empty());
  EXPECT_NE(t.info.warnings[0].find("qform and sform"), std::string::npos);
}

TEST(ImageIo, ShearedAxesAreRefused) {
  TempDir d;
  std::ofstream h(d / "shear.mhd");
  h << "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
       "TransformMatrix = 1 0 0 0.3 1 0 0 0 1\nOffset = 0 0 0\nElementSpacing = 1 1 1\n"
       "DimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = shear.raw\n";
  h.close();
  std::ofstream r(d / "shear.raw", std::ios::binary);
  std::vector<int16_t> data(64, 40);
  r.write(reinterpret_cast<const char*>(data.data()), 128);
  r.close();
  try {
    readScan(d / "shear.mhd");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("non-orthogonal"), std::string::npos) << e.what();
  }
}

TEST(ImageIo, LabelMapOnAnotherGridIsRefused) {
  if (!test::haveReference()) GTEST_SKIP();
  Scan s = readScan(test::reference("tptbox/sub-ct_label-22_ct.nii.gz"));
  EXPECT_THROW(
      readLabels(test::reference("totalsegmentator/ts_vertebral_bodies.nii.gz"), s.image.GetPointer()),
      InputError);
}

TEST(ImageIo, DetachedHeaderOutputsAreRefused) {
  TempDir d;
  auto img = CtImage::New();
  CtImage::SizeType sz;
  sz.Fill(2);
  img->SetRegions(CtImage::RegionType(sz));
  img->Allocate();
  EXPECT_THROW(writeImage(img.GetPointer(), d / "x.mhd", false), UsageError);
}

TEST(ImageIo, MissingDicomSliceIsRefused) {
  if (!test::haveReference()) GTEST_SKIP();
  TempDir d;
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(test::reference("totalsegmentator/dicom_series")))
    files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 20u);
  for (size_t i = 0; i < files.size(); ++i)
    if (i != 9) fs::copy_file(files[i], d / files[i].filename());
  try {
    readScan(d.path());
    FAIL() << "a series with a missing slice must not be read as a regular grid";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("uneven slice spacing"), std::string::npos) << e.what();
  }
}

TEST(ImageIo, FolderWithSeveralSeriesTakesTheLargestOrTheChosenOne) {
  if (!test::haveReference()) GTEST_SKIP();
  TempDir d;
  for (auto& e : fs::directory_iterator(test::reference("totalsegmentator/dicom_series")))
    fs::copy_file(e.path(), d / ("a_" + e.path().filename().string()));
  for (auto& e : fs::directory_iterator(test::reference("dicom_gantry_tilt")))
    if (e.path().extension() == ".dcm") fs::copy_file(e.path(), d / ("b_" + e.path().filename().string()));
  // Default: the series with most slices. (GDCM splits the tilted series into two parts of
  // 14 slices, so the 20-slice abdominal series wins.)
  Scan ref = readScan(test::reference("totalsegmentator/dicom_series"));
  Scan def = readScan(d.path());
  EXPECT_EQ(def.info.series_uid, ref.info.series_uid);
  EXPECT_EQ(def.image->GetLargestPossibleRegion().GetSize()[2], 20u);
  // --series picks another one, by UID prefix: the tilted head CT, refused for its tilt.
  EXPECT_THROW(readScan(d.path(), {"1.2.826.0.1.3680043.9.4245"}), InputError);
  EXPECT_THROW(readScan(d.path(), {"1.2.3.4.5.no.such.series"}), InputError);
}

// int16 .nii.gz is inflated by libdeflate behind ITK's reading of the header; ITK's own reader
// (CTBMD_ITK_READ=1) must give the same geometry and the same voxels, bit for bit.
TEST(ImageIo, FastNiftiGzReadMatchesItk) {
  if (!test::haveReference()) GTEST_SKIP();
  TempDir d;
  // a non-axial orientation written by ctbmd, and real files written by nibabel
  Scan src = readScan(test::reference("tptbox/sub-ct_label-22_ct.nii.gz"));
  writeImage(src.image.GetPointer(), d / "copy.nii.gz", false);
  for (fs::path f :
       {fs::path(test::reference("tptbox/sub-ct_label-22_ct.nii.gz")),
        fs::path(test::reference("totalsegmentator/example_ct_small_bad_origin.nii.gz")),
        fs::path(test::reference("ts_chest_cta_crop/ct_chest_cta_crop.nii.gz")), d / "copy.nii.gz"}) {
    Scan fast = readScan(f);
    setenv("CTBMD_ITK_READ", "1", 1);
    Scan itk = readScan(f);
    unsetenv("CTBMD_ITK_READ");
    SCOPED_TRACE(f.string());
    ASSERT_EQ(fast.image->GetLargestPossibleRegion(), itk.image->GetLargestPossibleRegion());
    EXPECT_EQ(fast.image->GetSpacing(), itk.image->GetSpacing());
    EXPECT_EQ(fast.image->GetOrigin(), itk.image->GetOrigin());
    EXPECT_EQ(fast.image->GetDirection(), itk.image->GetDirection());
    const size_t n = fast.image->GetLargestPossibleRegion().GetNumberOfPixels();
    EXPECT_EQ(std::memcmp(fast.image->GetBufferPointer(), itk.image->GetBufferPointer(), n * sizeof(int16_t)),
              0);
    EXPECT_EQ(fast.info.sha256, itk.info.sha256);
  }
  // A truncated int16 stream is refused, not read as zeros.
  std::ifstream in(d / "copy.nii.gz", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(d / "cut.nii.gz", std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  EXPECT_THROW(readScan(d / "cut.nii.gz"), InputError);
}

// [tier: quick] Scaled integer NIfTI (int16/uint16 with scl_slope/scl_inter, the commonest CT
// export) is read with nibabel's values: nibabel writes the files and the scaled voxels
// (stored * slope + inter, as float64) beside them; ctbmd's HU must equal them rounded.
TEST(ImageIo, ScaledIntegerNiftiMatchesNibabel) {
  TempDir tmp;
  const std::string script = R"PY(
import sys, numpy as np, nibabel as nib
d = sys.argv[1]
rng = np.random.default_rng(7)
hu = rng.integers(-1024, 1500, size=(23, 19, 11)).astype(np.float64)
aff = np.diag([0.8, 0.8, 2.5, 1.0])
for name, dt, slope, inter in [("i16s2", np.int16, 2.0, -1024.0), ("u16s1", np.uint16, 1.0, -1024.0),
                               ("u16s05", np.uint16, 0.5, -1024.0), ("i16s1i0", np.int16, 1.0, 0.0)]:
    stored = np.round((hu - inter) / slope).astype(dt)
    img = nib.Nifti1Image(stored, aff)
    img.header.set_data_dtype(dt)
    img.header.set_slope_inter(slope, inter)
    nib.save(img, f"{d}/{name}.nii.gz")
    np.asarray(nib.load(f"{d}/{name}.nii.gz").get_fdata(), dtype="<f8").ravel(order="F").tofile(f"{d}/{name}.f64")
)PY";
  { std::ofstream(tmp.path() / "make.py") << script; }
  if (test::run("/usr/bin/python3 -c 'import nibabel' 2>/dev/null") != 0) GTEST_SKIP() << "nibabel missing";
  ASSERT_EQ(test::run("/usr/bin/python3 " + (tmp.path() / "make.py").string() + " " + tmp.path().string()),
            0);
  for (const char* name : {"i16s2", "u16s1", "u16s05", "i16s1i0"}) {
    SCOPED_TRACE(name);
    Scan s = readScan(tmp.path() / (std::string(name) + ".nii.gz"));
    const size_t n = s.image->GetLargestPossibleRegion().GetNumberOfPixels();
    ASSERT_EQ(n, 23u * 19u * 11u);
    std::vector<double> want(n);
    std::ifstream in(tmp.path() / (std::string(name) + ".f64"), std::ios::binary);
    in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(n * sizeof(double)));
    ASSERT_TRUE(in);
    size_t wrong = 0;
    for (size_t i = 0; i < n; ++i)
      if (std::abs(s.image->GetBufferPointer()[i] - std::nearbyint(want[i])) > 0) ++wrong;
    EXPECT_EQ(wrong, 0u) << "voxels differing from nibabel's scaled values";
  }
}

// An image element GDCM reads through gdcm::Attribute with a VR other than its dictionary's
// made GDCM assert (SIGABRT; a fuzzer finding): ctbmd's own check refuses the slice first and
// names the element. The untouched real slice passes the same check.
TEST(ImageIo, DicomElementWithTheWrongVrIsRefusedBeforeGdcm) {
  if (!test::haveReference()) GTEST_SKIP();
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(test::reference("totalsegmentator/dicom_series")))
    files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  EXPECT_NO_THROW(detail::checkDicomFile(files[0]));
  std::ifstream in(files[0], std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string ipp(
      "\x20\x00\x32\x00"
      "DS",
      6);  // (0020,0032) ImagePositionPatient, DS
  const size_t at = bytes.find(ipp);
  ASSERT_NE(at, std::string::npos) << "the slice is explicit VR little endian with a position";
  bytes[at + 5] = 'T';  // DS -> DT, a valid VR, the wrong one for this element
  TempDir d;
  const fs::path bad = d / "slice.dcm";
  std::ofstream(bad, std::ios::binary) << bytes;
  try {
    detail::checkDicomFile(bad);
    FAIL() << "ImagePositionPatient as DT must be refused";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("(0020,0032)"), std::string::npos) << m;
    EXPECT_NE(m.find("'DT'"), std::string::npos) << m;
    EXPECT_NE(m.find(bad.string()), std::string::npos) << m;
  }
}
