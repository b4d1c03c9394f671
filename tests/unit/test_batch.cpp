// [tier: unit] The batch layer (ctbmd/batch.hpp): stable case ids, case lists, shards that
// cover a list exactly once and balance it by size, records that round-trip, staleness, the
// tables built from records, and duplicate detection across folders.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "ctbmd/batch.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/progress.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/supervise.hpp"
#include "ctbmd/version.hpp"

namespace ctbmd::batch {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    path = fs::temp_directory_path() /
           ("ctbmd-batch-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
  static inline int counter = 0;
};

void touch(const fs::path& p, size_t bytes = 1) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << std::string(bytes, 'x');
}

TEST(CaseId, RelativePathWithFoldersJoined) {
  EXPECT_EQ(caseId("/data/p01/ct.nii.gz", "/data"), "p01__ct");
  EXPECT_EQ(caseId("/data/p01/image", "/data"), "p01__image");
  EXPECT_EQ(caseId("/data/p02/image", "/data"), "p02__image");  // two folders both named image
  EXPECT_EQ(caseId("/data/case7.nrrd", "/data"), "case7");
  // a file named itself: its stem
  EXPECT_EQ(caseId("/data/p01/ct.nii.gz", "/data/p01/ct.nii.gz"), "ct");
  // relative and absolute spellings of one input give one id
  TempDir t;
  touch(t.path / "a" / "b.nii.gz");
  const fs::path cwd = fs::current_path();
  fs::current_path(t.path);
  EXPECT_EQ(caseId("a/b.nii.gz", "."), caseId(t.path / "a" / "b.nii.gz", t.path));
  EXPECT_EQ(caseId("./a/b.nii.gz", "./"), "a__b");
  fs::current_path(cwd);
}

TEST(CaseId, AlteredNamesCarryAHashSoTheyNeverCollide) {
  const std::string a = caseId("/d/my scan.nii.gz", "/d"), b = caseId("/d/my_scan.nii.gz", "/d");
  EXPECT_EQ(b, "my_scan");
  EXPECT_EQ(a.rfind("my_scan-", 0), 0u) << a;
  EXPECT_EQ(a.size(), std::string("my_scan-").size() + 8);
  EXPECT_NE(a, b);
  // "__" in a name is ambiguous with a folder boundary: hashed
  EXPECT_NE(caseId("/d/a__b.nii.gz", "/d"), caseId("/d/a/b.nii.gz", "/d"));
  // every id is a plain folder name
  for (const char* p : {"/d/ü/x y.nii", "/d/..x/.nii.gz", "/d/a,b\"c.mha"}) {
    const std::string id = caseId(p, "/d");
    EXPECT_FALSE(id.empty());
    for (char c : id)
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') << id;
  }
  // --series adds the UID's hash
  EXPECT_NE(caseId("/d/s", "/d", "1.2.3"), caseId("/d/s", "/d", "1.2.4"));
  EXPECT_EQ(caseId("/d/s", "/d", "1.2.3").rfind("s-s", 0), 0u);
}

TEST(CaseId, LongPathsStayWithinAFileName) {
  std::string deep = "/d";
  for (int i = 0; i < 40; ++i) deep += "/folder" + std::to_string(i);
  const std::string id = caseId(deep + "/scan.nii.gz", "/d");
  EXPECT_LE(id.size(), 200u);
  EXPECT_NE(id.find("scan"), std::string::npos);
  EXPECT_NE(id, caseId(deep + "/scan2.nii.gz", "/d"));
}

TEST(CaseList, PathsIdsCommentsAndHeader) {
  TempDir t;
  touch(t.path / "x" / "a.nii.gz", 10);
  touch(t.path / "b.nii.gz", 20);
  std::ofstream(t.path / "list.csv") << "path,id\n# a comment\n\nx/a.nii.gz\n"
                                     << (t.path / "b.nii.gz").string() << ", subject-b \n";
  const auto cases = readCaseList(t.path / "list.csv");
  ASSERT_EQ(cases.size(), 2u);
  EXPECT_EQ(cases[0].id, "x__a");
  EXPECT_EQ(cases[0].path, (t.path / "x" / "a.nii.gz").lexically_normal());
  EXPECT_EQ(cases[0].bytes, 10u);
  EXPECT_EQ(cases[1].id, "subject-b");
  EXPECT_EQ(cases[1].bytes, 20u);
  std::ofstream(t.path / "bad.csv") << "x/a.nii.gz,has space\n";
  try {
    readCaseList(t.path / "bad.csv");
    FAIL() << "an id with a space was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
  std::ofstream(t.path / "empty.csv") << "# nothing\n";
  EXPECT_THROW(readCaseList(t.path / "empty.csv"), InputError);
}

TEST(CaseIds, DuplicatesAreRefusedNamingBothInputs) {
  std::vector<CaseInput> c = {{"/a/x.nii.gz", "x", 1}, {"/b/x.nii.gz", "x", 1}};
  try {
    checkUniqueIds(c);
    FAIL();
  } catch (const UsageError& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("/a/x.nii.gz"), std::string::npos);
    EXPECT_NE(w.find("/b/x.nii.gz"), std::string::npos);
  }
}

TEST(Shard, ParseAndRefuse) {
  const auto s = Shard::parse("2/5");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 5);
  EXPECT_EQ(s.tag(), "2-of-5");
  for (const char* bad : {"5/5", "-1/3", "1/0", "a/3", "1/3x", "1", "/3", "1/", "1/200000"})
    EXPECT_THROW(Shard::parse(bad), UsageError) << bad;
}

TEST(Shard, PartsCoverEveryCaseOnceAndBalanceBySize) {
  std::mt19937 rng(7);
  std::vector<CaseInput> cases;
  for (int i = 0; i < 997; ++i)
    cases.push_back({"/d/c" + std::to_string(i), "c" + std::to_string(i), 1000 + rng() % 400000000});
  for (int n : {1, 2, 3, 16, 2000}) {
    std::map<std::string, int> seen;
    std::vector<uint64_t> load;
    for (int i = 0; i < n; ++i) {
      const auto part = selectShard(cases, {i, n});
      uint64_t b = 0;
      for (const auto& c : part) {
        ++seen[c.id];
        b += c.bytes;
      }
      load.push_back(b);
      EXPECT_TRUE(std::is_sorted(part.begin(), part.end(),
                                 [](const CaseInput& a, const CaseInput& c) { return a.id < c.id; }));
    }
    ASSERT_EQ(seen.size(), cases.size()) << n;
    for (const auto& [id, k] : seen) ASSERT_EQ(k, 1) << id << " in " << k << " of " << n << " shards";
    if (n <= 16) {
      // greedy largest-first: no part exceeds the mean by more than the largest case
      const double mean = std::accumulate(load.begin(), load.end(), 0.0) / n;
      const uint64_t biggest = std::max_element(cases.begin(), cases.end(), [](auto& a, auto& b) {
                                 return a.bytes < b.bytes;
                               })->bytes;
      for (uint64_t l : load) EXPECT_LE(static_cast<double>(l), mean + static_cast<double>(biggest)) << n;
    }
  }
  // the same parts whatever order the list came in
  auto shuffled = cases;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const auto a = selectShard(cases, {1, 3}), b = selectShard(shuffled, {1, 3});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].id, b[i].id);
}

TEST(InputSha256, FileAndFolder) {
  TempDir t;
  touch(t.path / "f.nii", 5);
  EXPECT_EQ(inputSha256(t.path / "f.nii"), sha256File(t.path / "f.nii"));
  touch(t.path / "s" / "1.dcm", 3);
  touch(t.path / "s" / "2.dcm", 4);
  const std::string h = inputSha256(t.path / "s");
  EXPECT_EQ(h.size(), 64u);
  touch(t.path / "s" / "2.dcm", 5);  // one slice changed
  EXPECT_NE(inputSha256(t.path / "s"), h);
}

CaseResult someResult(const std::string& id, const std::string& status) {
  CaseResult r;
  r.case_id = id;
  r.input = "/d/" + id + ".nii.gz";
  r.status = parseCaseStatus(status);
  if (status == "error") r.error = "'x': broken, \"quoted\", with commas";
  r.seconds = 1.25;
  r.stage_seconds["read"] = 0.5;
  return r;
}

TEST(CaseRecord, RoundTripsAndRebuildsTheRowsExactly) {
  PipelineOptions o;
  const auto params = pipelineParameters(o);
  TempDir t;
  std::vector<CaseRecord> recs;
  for (const auto& [id, st] : std::vector<std::pair<std::string, std::string>>{
           {"b", "no_spine"}, {"a", "error"}, {"c", "levels_not_named"}}) {
    const auto r = someResult(id, st);
    auto rec = CaseRecord::fromResult(r, "abc", params);
    writeRecord(t.path / id, rec);
    const auto back = readRecord(t.path / id);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->case_id, id);
    EXPECT_EQ(toString(back->status), st);
    EXPECT_EQ(back->params_sha256, parametersSha256(params));
    EXPECT_EQ(back->version, versionString());
    EXPECT_DOUBLE_EQ(back->seconds, 1.25);
    recs.push_back(*back);
    // the row built from the record is the row of the result, the timing column included
    const auto t1 = buildTables({*back});
    EXPECT_EQ(t1.results, resultsCsvHeader() + "\n" + resultsCsvRow(r) + "\n");
    EXPECT_EQ(t1.levels, levelsCsvHeader() + "\n" + levelsCsvRows(r));
  }
  // rows in id order
  const auto tab = buildTables(recs);
  EXPECT_LT(tab.results.find("\na,"), tab.results.find("\nb,"));
  EXPECT_LT(tab.results.find("\nb,"), tab.results.find("\nc,"));
  const auto all = collectRecords({t.path});
  EXPECT_EQ(all.size(), 3u);
  // a missing or broken record is an incomplete case
  EXPECT_FALSE(readRecord(t.path / "none"));
  std::ofstream(recordPath(t.path / "b")) << "{\"schema\": {\"name\": \"ctbmd.case\", \"version\": 1}";
  std::string why;
  EXPECT_FALSE(readRecord(t.path / "b", &why));
  EXPECT_FALSE(why.empty());
  size_t unreadable = 0;
  EXPECT_EQ(collectRecords({t.path}, &unreadable).size(), 2u);
  EXPECT_EQ(unreadable, 1u);
}

TEST(CaseRecord, StaleWhenInputParametersOrVersionDiffer) {
  PipelineOptions o;
  auto rec = CaseRecord::fromResult(someResult("a", "ok"), "h1", pipelineParameters(o));
  const std::string ps = parametersSha256(pipelineParameters(o));
  EXPECT_EQ(staleReason(rec, "h1", ps, false), "");
  EXPECT_NE(staleReason(rec, "h2", ps, false), "");
  PipelineOptions o2;
  o2.roi.protocol = "erode-4mm";
  EXPECT_NE(parametersSha256(pipelineParameters(o2)), ps);
  EXPECT_NE(staleReason(rec, "h1", parametersSha256(pipelineParameters(o2)), false), "");
  rec.version = "0.0.1";
  EXPECT_NE(staleReason(rec, "h1", ps, false).find("0.0.1"), std::string::npos);
  rec.version = versionString();
  rec.status = CaseStatus::Error;
  EXPECT_EQ(staleReason(rec, "h1", ps, false), "");
  EXPECT_NE(staleReason(rec, "h1", ps, true), "");
}

TEST(Records, ACaseInTwoFoldersIsRefused) {
  TempDir a, b;
  PipelineOptions o;
  const auto rec = CaseRecord::fromResult(someResult("x", "ok"), "h", pipelineParameters(o));
  writeRecord(a.path / "x", rec);
  writeRecord(b.path / "x", rec);
  EXPECT_EQ(collectRecords({a.path}).size(), 1u);
  EXPECT_THROW(collectRecords({a.path, b.path}), UsageError);
}

TEST(ClearCaseOutputs, RemovesOnlyWhatCtbmdWrites) {
  TempDir t;
  for (const char* f : {"case.json", "localize.json", "qc.png", "mosaic_L1.png", "mosaic_L1.nii.gz",
                        "crop3d_L2.nii.gz", ".bmd.tmp-12-1.json", "notes.txt", "mosaic_notes.txt"})
    touch(t.path / f);
  clearCaseOutputs(t.path);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(t.path)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"notes.txt", "mosaic_notes.txt"}));
}

// ctbmd-run's request (prepareRun): option combinations refused before any work, the cases
// found with ctbmd's own outputs skipped, and the automatic jobs bounded by the cases.
TEST(RunRequest, CombinationsAreRefusedBeforeAnyWork) {
  TempDir d;
  touch(d.path / "in" / "a.nii.gz");
  auto base = [&] {
    RunRequest r;
    r.inputs = {(d.path / "in").string()};
    r.out = d.path / "out";
    return r;
  };
  auto refused = [&](RunRequest r, const std::string& words) {
    try {
      prepareRun(std::move(r));
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  RunRequest r = base();
  r.inputs.clear();
  EXPECT_TRUE(refused(r, "give the CT files"));
  r = base();
  r.retry_errors = true;
  EXPECT_TRUE(refused(r, "goes with --resume"));
  r.resume = r.force = true;
  EXPECT_TRUE(refused(r, "give one of them"));
  r = base();
  r.pipeline.bmd.method = "mosaic-cnn";
  EXPECT_TRUE(refused(r, "add --protocol mosaic-392"));
  r = base();
  r.pipeline.segment.method = "unet2d";
  EXPECT_TRUE(refused(r, "needs --segment-model"));
  r = base();
  r.calibration = (d.path / "cal.json").string();
  r.pipeline.calibrate = "internal";
  EXPECT_TRUE(refused(r, "not both"));
  EXPECT_FALSE(fs::exists(d.path / "out"));  // nothing written by a refusal
}

TEST(RunRequest, CasesJobsAndLimits) {
  TempDir d;
  touch(d.path / "in" / "a.nii.gz");
  touch(d.path / "in" / "a_seg.nii.gz");  // a label map beside the scan: skipped by default
  RunRequest r;
  r.inputs = {(d.path / "in").string()};
  r.out = d.path / "out";
  auto run = prepareRun(r);
  ASSERT_EQ(run.cases.size(), 1u);
  EXPECT_EQ(run.options.jobs, 1);  // one case: one worker, whatever the threads
  EXPECT_TRUE(run.options.supervised);
  EXPECT_GT(run.options.limits.memory_bytes, 0u);
  EXPECT_LE(run.options.limits.memory_bytes, physicalMemoryBytes());
  r.default_excludes = false;
  EXPECT_EQ(prepareRun(r).cases.size(), 2u);
  r.case_memory_gib = 2;
  r.jobs = 3;
  auto two = prepareRun(r);
  EXPECT_EQ(two.options.jobs, 3);
  EXPECT_EQ(two.options.limits.memory_bytes, uint64_t(2) << 30);
}

}  // namespace
}  // namespace ctbmd::batch

namespace ctbmd {
namespace {
TEST(Progress, LineSaysRateAndTimeLeft) {
  EXPECT_EQ(progressLine("cases", 370, 1000, 777.0), "cases: 37 % (370/1000), 2.1 s/case, ETA 22 min");
  EXPECT_EQ(progressLine("slices", 50, 200, 1.0), "slices: 25 % (50/200), 50 slices/s, ETA 3.0 s");
  EXPECT_EQ(progressLine("cases", 0, 10, 5.0), "cases: 0 % (0/10)");
  EXPECT_EQ(progressLine("cases", 9000, 10000, 9000 * 3.0),
            "cases: 90 % (9000/10000), 3.0 s/case, ETA 50 min");
  EXPECT_EQ(progressLine("cases", 10, 10, 30.0), "cases: 100 % (10/10), 3.0 s/case, ETA 0 s");
  EXPECT_EQ(progressLine("cases", 100, 10000, 100 * 4.0), "cases: 1 % (100/10000), 4.0 s/case, ETA 11.0 h");
}
}  // namespace
}  // namespace ctbmd

#include "ctbmd/fileio.hpp"
#include "ctbmd/slurm.hpp"

namespace ctbmd::slurm {
namespace {
TEST(Slurm, ShellQuoteSurvivesAShell) {
  for (const std::string s : {"plain", "with space", "it's", "$HOME `x` \"q\"", "", "a/b.nii.gz", "*.dcm"}) {
    const std::string cmd = "printf %s " + shellQuote(s);
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {0};
    const size_t n = fread(buf, 1, sizeof buf - 1, p);
    pclose(p);
    EXPECT_EQ(std::string(buf, n), s);
  }
}

TEST(Slurm, ArrayScriptNamesNoNodeOrPartitionUnlessGiven) {
  SubmitOptions o;
  o.out = "/data/out";
  o.bin_dir = "/opt/ctbmd/bin";
  o.max_running = 4;
  o.cpus_per_task = 3;
  o.run_args = {"-p", "erode-4mm", "--tissues", "my file.json"};
  std::string s = arrayScript(o, 16, "/data/out/slurm/cases.tsv");
  EXPECT_NE(s.find("#SBATCH --array=0-15%4\n"), std::string::npos) << s;
  EXPECT_NE(s.find("#SBATCH --cpus-per-task=3\n"), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --output=/data/out/slurm/logs/%A_%a.log\n"), std::string::npos);
  EXPECT_NE(s.find("--shard \"${SLURM_ARRAY_TASK_ID}/16\" --resume -o /data/out -p erode-4mm"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("--tissues 'my file.json'"), std::string::npos);
  EXPECT_EQ(s.find("--partition"), std::string::npos);
  EXPECT_EQ(s.find("--nodelist"), std::string::npos);
  o.partition = "short";
  o.max_running = 0;
  s = arrayScript(o, 1, "/x.tsv");
  EXPECT_NE(s.find("#SBATCH --partition=short\n"), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --array=0\n"), std::string::npos) << s;
  const std::string m = mergeScript(o);
  EXPECT_NE(m.find("exec /opt/ctbmd/bin/ctbmd-merge /data/out\n"), std::string::npos) << m;
}
}  // namespace
}  // namespace ctbmd::slurm
