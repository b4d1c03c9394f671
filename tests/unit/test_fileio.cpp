#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <random>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "test_support.hpp"

using namespace ctbmd;
using ctbmd::test::TempDir;

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, FileEqualsBytes) {
  TempDir d;
  std::string s(3 * 1024 * 1024 + 17, '\0');
  std::mt19937 g(1);
  for (auto& c : s) c = static_cast<char>(g());
  std::ofstream(d / "f", std::ios::binary) << s;
  EXPECT_EQ(sha256File(d / "f"), sha256Hex(s));
}

TEST(AtomicWrite, KeepsExtensionAndRenames) {
  TempDir d;
  auto tmp = temporarySibling(d / "seg.nii.gz");
  EXPECT_EQ(tmp.parent_path(), d.path());
  EXPECT_TRUE(tmp.filename().string().rfind(".seg.tmp-", 0) == 0);
  EXPECT_EQ(tmp.filename().string().substr(tmp.filename().string().size() - 7), ".nii.gz");
  writeTextFile(d / "sub" / "a.txt", "hello", false);
  std::ifstream in(d / "sub" / "a.txt");
  std::string s;
  in >> s;
  EXPECT_EQ(s, "hello");
}

TEST(AtomicWrite, FailureLeavesNothing) {
  TempDir d;
  writeTextFile(d / "keep.json", "old", false);
  EXPECT_THROW(atomicWrite(d / "keep.json", true,
                           [](const std::filesystem::path& tmp) {
                             std::ofstream(tmp) << "partial";
                             throw ProcessingError("boom");
                           }),
               ProcessingError);
  EXPECT_THROW(atomicWrite(d / "new.json", false,
                           [](const std::filesystem::path& tmp) {
                             std::ofstream(tmp) << "partial";
                             throw ProcessingError("boom");
                           }),
               ProcessingError);
  std::vector<std::string> names;
  for (auto& e : std::filesystem::directory_iterator(d.path())) names.push_back(e.path().filename());
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0], "keep.json");
  std::ifstream in(d / "keep.json");
  std::string s;
  in >> s;
  EXPECT_EQ(s, "old");
}

TEST(AtomicWrite, RefusesToOverwriteWithoutForce) {
  TempDir d;
  writeTextFile(d / "x", "1", false);
  try {
    writeTextFile(d / "x", "2", false);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos);
    EXPECT_EQ(e.code(), ExitCode::Usage);
  }
  EXPECT_NO_THROW(writeTextFile(d / "x", "2", true));
}

TEST(Gzip, ParallelMembersRoundTrip) {
  TempDir d;
  std::string s(40 * 1024 * 1024 + 123, '\0');  // several 16 MiB blocks
  std::mt19937 g(7);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>((i % 97 < 50) ? g() % 7 : i % 13);
  std::ofstream(d / "raw", std::ios::binary) << s;
  gzipFile(d / "raw", d / "raw.gz", 1, 2);
  gzFile f = gzopen((d / "raw.gz").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string back(s.size() + 10, '\0');
  int n = gzread(f, back.data(), static_cast<unsigned>(back.size()));
  gzclose(f);
  ASSERT_EQ(static_cast<size_t>(n), s.size());
  back.resize(n);
  EXPECT_TRUE(back == s);
}

TEST(Names, ImageStem) {
  EXPECT_EQ(imageStem("a/b/case01.nii.gz"), "case01");
  EXPECT_EQ(imageStem("x.nrrd"), "x");
  EXPECT_EQ(imageStem("x.mha"), "x");
  EXPECT_EQ(imageStem("folder"), "folder");
}
