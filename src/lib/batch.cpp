#include "ctbmd/batch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <tuple>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/model_card.hpp"
#include "ctbmd/progress.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/report.hpp"
#include "ctbmd/threads.hpp"
#include "ctbmd/version.hpp"
#include "internal/parallel.hpp"

namespace ctbmd::batch {

using nlohmann::json;

namespace {

constexpr const char* kRecordName = "case.json";
constexpr const char* kRecordSchema = "ctbmd.case";
constexpr const char* kManifestSchema = "ctbmd.shard";
constexpr size_t kIdHashDigits = 8;   // 32 bits of sha256: collisions need ~65,000 altered names
constexpr size_t kMaxIdLength = 200;  // leaves room in a 255-byte file name for ctbmd's temporaries

bool idChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool validId(const std::string& id) {
  return !id.empty() && id.size() <= kMaxIdLength && id != "." && id != ".." &&
         std::all_of(id.begin(), id.end(), idChar);
}

std::string shortHash(const std::string& s) { return sha256Hex(s).substr(0, kIdHashDigits); }

// Under `root` (lexically)? Both made absolute and normal first.
bool isUnder(const fs::path& p, const fs::path& root) {
  auto rel = p.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

fs::path absNormal(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  return (ec ? p : a).lexically_normal();
}

uint64_t bytesOf(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return fs::file_size(p, ec);
  uint64_t n = 0;
  if (fs::is_directory(p, ec))
    for (const auto& e : fs::directory_iterator(p, ec))
      if (std::error_code eq; e.is_regular_file(eq)) n += e.file_size(eq);
  return n;
}

json rowObject(const std::vector<std::string>& header, const std::string& line) {
  const auto fields = splitCsvLine(line);
  json o = json::object();
  for (size_t i = 0; i < header.size() && i < fields.size(); ++i) o[header[i]] = fields[i];
  return o;
}

std::string fixed2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

// ---- case ids ---------------------------------------------------------------------------
std::string caseId(const fs::path& input, const fs::path& root, const std::string& series_uid) {
  const fs::path in = absNormal(input), r = absNormal(root);
  fs::path rel;
  if (in != r && isUnder(in, r)) rel = in.lexically_relative(r);
  if (rel.empty()) rel = in.filename().empty() ? in.parent_path().filename() : in.filename();
  std::vector<std::string> parts;
  for (const auto& c : rel)
    if (!c.empty() && c != "." && c != "/") parts.push_back(c.string());
  if (parts.empty()) parts.push_back("case");
  bool altered = false;
  std::error_code ec;
  if (!fs::is_directory(in, ec)) {
    const std::string stem = imageStem(parts.back());
    if (!stem.empty()) parts.back() = stem;
  }
  std::string id;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string p = parts[i];
    if (p.find("__") != std::string::npos) altered = true;
    for (char& c : p)
      if (!idChar(c)) {
        c = '_';
        altered = true;
      }
    id += (i ? "__" : "") + p;
  }
  if (altered) id += "-" + shortHash(rel.generic_string());
  if (!series_uid.empty()) id += "-s" + shortHash(series_uid);
  if (id.size() > kMaxIdLength)  // keep the end (the file's own name) and a hash of the whole path
    id = id.substr(id.size() - (kMaxIdLength - kIdHashDigits - 1)) + "-" + shortHash(rel.generic_string());
  if (id == "." || id == "..") id = "case-" + shortHash(rel.generic_string());
  return id;
}

std::vector<CaseInput> discoverCases(const std::vector<fs::path>& roots,
                                     const std::vector<std::string>& exclude, const std::string& series_uid) {
  const auto found = discoverInputs(roots, exclude);
  std::vector<fs::path> abs_roots;
  for (const auto& r : roots) abs_roots.push_back(absNormal(r));
  std::vector<CaseInput> cases;
  for (const auto& p : found) {
    const fs::path a = absNormal(p);
    // the root it was found under: itself when named, else the nearest folder root above it
    fs::path root = p;
    size_t best = 0;
    for (size_t k = 0; k < roots.size(); ++k) {
      if (abs_roots[k] == a) {
        root = p;
        best = std::string::npos;
        break;
      }
      const size_t len = abs_roots[k].native().size();
      if (isUnder(a, abs_roots[k]) && len > best) {
        best = len;
        root = roots[k];
      }
    }
    cases.push_back({p, caseId(p, root, series_uid), bytesOf(p)});
  }
  return cases;
}

std::vector<CaseInput> readCaseList(const fs::path& list, const std::string& series_uid) {
  std::ifstream in(list);
  if (!in) throw InputError("cannot open the case list '" + list.string() + "'");
  const fs::path base = absNormal(list).parent_path();
  std::vector<CaseInput> cases;
  std::string line;
  long n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::string path = line, id;
    // the last tab, else the last comma (an id holds neither: a path may hold commas when a
    // tab separates it)
    size_t sep = line.rfind('\t');
    if (sep == std::string::npos) sep = line.rfind(',');
    if (sep != std::string::npos) {
      path = line.substr(0, sep);
      id = line.substr(sep + 1);
      while (!id.empty() && (id.back() == ' ' || id.back() == '\t')) id.pop_back();
      while (!id.empty() && (id.front() == ' ' || id.front() == '\t')) id.erase(0, 1);
    }
    while (!path.empty() && path.back() == ' ') path.pop_back();
    path.erase(0, path.find_first_not_of(' '));
    if (cases.empty() && (path == "path" || path == "input") && (id.empty() || id == "id" || id == "case_id"))
      continue;  // a header row
    const std::string where = "case list '" + list.string() + "' line " + std::to_string(n);
    if (path.empty()) throw InputError(where + ": no path before the comma");
    if (!id.empty() && !validId(id))
      throw InputError(where + ": the case id '" + id + "' is not 1-" + std::to_string(kMaxIdLength) +
                       " characters of A-Z a-z 0-9 . _ - (it names the case's folder)");
    fs::path p(path);
    if (p.is_relative()) p = base / p;
    p = p.lexically_normal();
    if (id.empty()) id = caseId(p, isUnder(p, base) ? base : fs::path("/"), series_uid);
    cases.push_back({p, id, bytesOf(p)});
  }
  if (cases.empty()) throw InputError("the case list '" + list.string() + "' names no input");
  return cases;
}

void writeCaseList(const fs::path& list, const std::vector<CaseInput>& cases, bool force) {
  std::string text = "path\tid\n";
  for (const auto& c : cases) {
    const std::string p = absNormal(c.path).string();
    if (p.find_first_of("\t\n\r") != std::string::npos)
      throw InputError("'" + p + "': a path with a tab or line break cannot go into a case list; rename it");
    text += p + "\t" + c.id + "\n";
  }
  writeTextFile(list, text, force);
}

void checkUniqueIds(const std::vector<CaseInput>& cases) {
  std::map<std::string, const CaseInput*> seen;
  for (const auto& c : cases) {
    auto [it, fresh] = seen.emplace(c.id, &c);
    if (!fresh)
      throw UsageError("two inputs have the case id '" + c.id + "': '" + it->second->path.string() +
                       "' and '" + c.path.string() +
                       "' (ids come from paths relative to the folder given; name the inputs by a "
                       "common parent folder, or give --case-list with an id column)");
  }
}

// ---- shards -----------------------------------------------------------------------------
Shard Shard::parse(const std::string& text) {
  Shard s;
  const size_t slash = text.find('/');
  auto bad = [&]() {
    return UsageError("--shard '" + text +
                      "': expected I/N with 0 <= I < N (I counts from 0, as SLURM_ARRAY_TASK_ID), e.g. 0/4");
  };
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size()) throw bad();
  try {
    size_t a = 0, b = 0;
    const std::string i = text.substr(0, slash), n = text.substr(slash + 1);
    s.index = std::stoi(i, &a);
    s.count = std::stoi(n, &b);
    if (a != i.size() || b != n.size()) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (s.count < 1 || s.count > 100000 || s.index < 0 || s.index >= s.count) throw bad();
  return s;
}

std::string Shard::tag() const { return std::to_string(index) + "-of-" + std::to_string(count); }

std::vector<CaseInput> selectShard(std::vector<CaseInput> cases, const Shard& shard) {
  std::sort(cases.begin(), cases.end(), [](const CaseInput& a, const CaseInput& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.id < b.id;
  });
  // (bytes so far, cases so far, index): the least loaded part on top
  using Part = std::tuple<uint64_t, size_t, int>;
  std::priority_queue<Part, std::vector<Part>, std::greater<Part>> parts;
  for (int k = 0; k < shard.count; ++k) parts.emplace(0, 0, k);
  std::vector<CaseInput> mine;
  for (auto& c : cases) {
    auto [load, n, k] = parts.top();
    parts.pop();
    parts.emplace(load + c.bytes, n + 1, k);
    if (k == shard.index) mine.push_back(std::move(c));
  }
  std::sort(mine.begin(), mine.end(), [](const CaseInput& a, const CaseInput& b) { return a.id < b.id; });
  return mine;
}

// ---- fingerprints -----------------------------------------------------------------------
std::string inputSha256(const fs::path& input) {
  std::error_code ec;
  if (!fs::is_directory(input, ec)) return sha256File(input);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(input, ec))
    if (std::error_code eq; e.is_regular_file(eq)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::string cat;
  for (const auto& f : files) cat += f.filename().string() + '\0' + sha256File(f) + "\n";
  return sha256Hex(cat);
}

json pipelineParameters(const PipelineOptions& o) {
  auto fileSha = [](const fs::path& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) ? sha256File(p) : std::string();
  };
  auto modelOf = [](const std::string& folder, const char* task) -> json {
    if (folder.empty()) return nullptr;
    try {
      return ModelCard::load(folder, task, false).provenance();
    } catch (const Error&) {
      return {{"folder", folder}};
    }
  };
  json p = {
      {"localize", {{"method", o.localize.method}, {"level_hint", o.localize.level_hint}}},
      {"segment", {{"method", o.segment.method}, {"fracture_ratio", o.segment.fracture_ratio}}},
      {"roi",
       {{"protocol", o.roi.protocol},
        {"min_voxels", o.roi.min_voxels},
        {"crop3d", o.roi.crop3d},
        {"crop3d_spacing_mm", o.roi.crop3d_spacing_mm},
        {"crop3d_size", o.roi.crop3d_size}}},
      {"bmd", {{"method", o.bmd.method}, {"statistic", o.bmd.statistic}}},
      {"classify", {{"rule", o.classify.rule}, {"contrast_phase", o.classify.contrast_phase}}},
      {"calibrate", o.calibrate},
      {"read", {{"series_uid", o.read.series_uid}}},
  };
  if (o.classify.ref_mean) p["classify"]["ref_mean"] = *o.classify.ref_mean;
  if (o.classify.ref_sd) p["classify"]["ref_sd"] = *o.classify.ref_sd;
  if (!o.localize.model.empty()) {
    json st = json::array();
    for (const char* s : {"stage1", "stage2"})
      st.push_back(modelOf((fs::path(o.localize.model) / s).string(), "localize"));
    p["localize"]["model"] = st;
  }
  if (!o.segment.model.empty()) p["segment"]["model"] = modelOf(o.segment.model, "segment");
  if (!o.bmd.model.empty()) p["bmd"]["model"] = modelOf(o.bmd.model, "bmd-regress");
  if (!o.classify.model.empty())
    p["classify"]["model"] =
        modelOf(o.classify.model, o.classify.rule == "radiomics-rf" ? "radiomics-classify" : "classify");
  if (o.calibration)
    p["calibration"] = {{"path", o.calibration->string()}, {"sha256", fileSha(*o.calibration)}};
  if (o.calibrate == "rods") {
    const std::string sha = fileSha(o.phantom);
    p["phantom"] = sha.empty() ? json(o.phantom) : json{{"path", o.phantom}, {"sha256", sha}};
  }
  if (o.calibrate == "internal" && o.tissues)
    p["tissues"] = {{"path", o.tissues->string()}, {"sha256", fileSha(*o.tissues)}};
  return p;
}

std::string parametersSha256(const json& params) { return sha256Hex(params.dump()); }

// ---- case records -------------------------------------------------------------------------
CaseRecord CaseRecord::fromResult(const CaseResult& r, const std::string& input_sha256,
                                  const json& parameters) {
  CaseRecord rec;
  rec.case_id = r.case_id;
  rec.input = r.input;
  rec.input_sha256 = input_sha256;
  rec.parameters = parameters;
  rec.params_sha256 = parametersSha256(parameters);
  rec.version = versionString();
  rec.threads = runContext().threads;
  rec.status = r.status;
  rec.exit_code = r.exit_code;
  rec.seconds = r.seconds;
  rec.stage_seconds = r.stage_seconds;
  static const auto rh = splitCsvLine(resultsCsvHeader());
  static const auto lh = splitCsvLine(levelsCsvHeader());
  rec.results = rowObject(rh, resultsCsvRow(r));
  for (const char* c : {"seconds", "ctbmd_version"}) rec.results.erase(c);
  const std::string rows = levelsCsvRows(r);
  size_t pos = 0;
  while (pos < rows.size()) {
    const size_t e = rows.find('\n', pos);
    rec.levels.push_back(rowObject(lh, rows.substr(pos, e - pos)));
    if (e == std::string::npos) break;
    pos = e + 1;
  }
  return rec;
}

json CaseRecord::toJson() const {
  json j = {{"case_id", case_id},
            {"input", input.string()},
            {"input_sha256", input_sha256},
            {"params_sha256", params_sha256},
            {"status", status},
            {"exit_code", exit_code},
            {"results", results},
            {"levels", levels},
            {"timing", {{"seconds", seconds}, {"stages", stage_seconds}}}};
  json inputs = {{"ct", {{"path", input.string()}, {"sha256", input_sha256}}}};
  stamp(j, kRecordSchema, 1, makeProvenance(inputs, parameters));
  // the version that made the case (makeProvenance stamps this build's; a record read and
  // written again keeps its own)
  j["provenance"]["ctbmd_version"] = version;
  if (threads > 0) j["provenance"]["threads"] = threads;
  return j;
}

CaseRecord CaseRecord::fromJson(const json& j, const std::string& file) {
  checkStageFile(j, file, kRecordSchema, 1, "", "");
  try {
    CaseRecord r;
    r.case_id = j.at("case_id").get<std::string>();
    r.input = j.at("input").get<std::string>();
    r.input_sha256 = j.at("input_sha256").get<std::string>();
    r.params_sha256 = j.at("params_sha256").get<std::string>();
    r.status = parseCaseStatus(j.at("status").get<std::string>(), file);
    r.exit_code = j.value("exit_code", 0);
    r.results = j.at("results");
    r.levels = j.at("levels");
    if (!r.results.is_object() || !r.levels.is_array()) throw InputError("results/levels of the wrong type");
    r.seconds = j.at("timing").value("seconds", 0.0);
    r.stage_seconds = j.at("timing").value("stages", json::object());
    r.version = j.at("provenance").value("ctbmd_version", std::string());
    r.threads = j.at("provenance").value("threads", 0);
    r.parameters = j.at("provenance").value("parameters", json::object());
    return r;
  } catch (const json::exception& e) {
    throw InputError("case record '" + file + "' is incomplete or malformed (" + e.what() +
                     "); run the case again (ctbmd-run --resume does)");
  }
}

fs::path recordPath(const fs::path& case_dir) { return case_dir / kRecordName; }

void writeRecord(const fs::path& case_dir, const CaseRecord& rec) {
  writeJsonFile(recordPath(case_dir), rec.toJson(), true);
}

std::optional<CaseRecord> readRecord(const fs::path& case_dir, std::string* why) {
  const fs::path p = recordPath(case_dir);
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  try {
    auto r = CaseRecord::fromJson(readJsonFile(p), p.string());
    r.dir = case_dir;
    return r;
  } catch (const Error& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

std::string staleReason(const CaseRecord& rec, const std::string& input_sha256,
                        const std::string& params_sha256, bool retry_errors) {
  if (rec.input_sha256 != input_sha256)
    return rec.input_sha256.empty()
               ? "its input could not be read before"
               : (input_sha256.empty() ? "its input cannot be read now" : "its input changed");
  if (rec.params_sha256 != params_sha256) return "the parameters differ from the record's";
  if (rec.version != versionString())
    return "it was made by ctbmd " + rec.version + ", this is " + versionString();
  if (retry_errors && rec.status == CaseStatus::Error) return "it failed (--retry-errors)";
  return "";
}

void clearCaseOutputs(const fs::path& dir) {
  static const char* const kFixed[] = {kRecordName,
                                       "localize.json",
                                       "localize_qc.png",
                                       "segmentation.nii.gz",
                                       "segmentation.json",
                                       "roi.nii.gz",
                                       "roi.json",
                                       "calibration.json",
                                       "bmd.json",
                                       "classification.json",
                                       "classification_qc.png",
                                       "qc.png"};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const char* n : kFixed) fs::remove(dir / n, ec);
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const bool ours =
        n.find(".tmp-") != std::string::npos ||
        ((n.rfind("mosaic_", 0) == 0 || n.rfind("crop3d_", 0) == 0) &&
         (n.size() > 7 && (n.substr(n.size() - 7) == ".nii.gz" || n.substr(n.size() - 4) == ".png")));
    if (ours) fs::remove(e.path(), ec);
  }
}

// ---- tables -------------------------------------------------------------------------------
Tables buildTables(std::vector<CaseRecord> records) {
  std::sort(records.begin(), records.end(),
            [](const CaseRecord& a, const CaseRecord& b) { return a.case_id < b.case_id; });
  const auto rh = splitCsvLine(resultsCsvHeader()), lh = splitCsvLine(levelsCsvHeader());
  Tables t;
  t.results = resultsCsvHeader() + "\n";
  t.levels = levelsCsvHeader() + "\n";
  t.results.reserve(records.size() * 600);
  t.levels.reserve(records.size() * 900);
  auto cell = [](const json& row, const std::string& col) -> std::string {
    const auto it = row.find(col);
    return it != row.end() && it->is_string() ? csvField(it->get<std::string>()) : std::string();
  };
  for (const auto& r : records) {
    for (size_t i = 0; i < rh.size(); ++i) {
      if (i) t.results += ',';
      if (rh[i] == "seconds")
        t.results += fixed2(r.seconds);
      else if (rh[i] == "ctbmd_version")
        t.results += csvField(r.version);
      else
        t.results += cell(r.results, rh[i]);
    }
    t.results += '\n';
    for (const auto& row : r.levels) {
      for (size_t i = 0; i < lh.size(); ++i) {
        if (i) t.levels += ',';
        t.levels += cell(row, lh[i]);
      }
      t.levels += '\n';
    }
  }
  return t;
}

std::vector<CaseRecord> collectRecords(const std::vector<fs::path>& dirs, size_t* unreadable) {
  struct Found {
    fs::path dir;
    size_t folder;
  };
  std::vector<Found> found;
  for (size_t k = 0; k < dirs.size(); ++k) {
    std::error_code ec;
    if (!fs::is_directory(dirs[k], ec)) throw InputError("'" + dirs[k].string() + "' is not a folder");
    for (const auto& e : fs::directory_iterator(dirs[k], ec))
      if (std::error_code eq; e.is_directory(eq) && fs::exists(recordPath(e.path()), eq))
        found.push_back({e.path(), k});
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.dir < b.dir; });
  std::vector<std::optional<CaseRecord>> recs(found.size());
  std::vector<std::string> why(found.size());
  parallelFor(static_cast<int>(found.size()), [&](int i) {
    recs[static_cast<size_t>(i)] =
        readRecord(found[static_cast<size_t>(i)].dir, &why[static_cast<size_t>(i)]);
  });
  std::vector<CaseRecord> out;
  std::map<std::string, size_t> where;  // case id -> index into found
  size_t bad = 0;
  for (size_t i = 0; i < found.size(); ++i) {
    if (!recs[i]) {
      spdlog::warn("skipped '{}': {}", recordPath(found[i].dir).string(), why[i]);
      ++bad;
      continue;
    }
    if (recs[i]->case_id != found[i].dir.filename().string()) {
      spdlog::warn("skipped '{}': it records the case '{}', not its folder's",
                   recordPath(found[i].dir).string(), recs[i]->case_id);
      ++bad;
      continue;
    }
    auto [it, fresh] = where.emplace(recs[i]->case_id, i);
    if (!fresh)
      throw UsageError("the case '" + recs[i]->case_id + "' is in two output folders: '" +
                       found[it->second].dir.string() + "' and '" + found[i].dir.string() +
                       "'; remove one (the same case run twice, or two inputs with one id)");
    out.push_back(std::move(*recs[i]));
  }
  if (unreadable) *unreadable = bad;
  return out;
}

// ---- manifests ----------------------------------------------------------------------------
fs::path manifestPath(const fs::path& out, const Shard& shard) {
  return out / "shards" / (shard.tag() + ".json");
}

void writeManifest(const fs::path& out, const Shard& shard, const std::vector<CaseInput>& cases,
                   size_t cases_total, const std::string& params_sha256) {
  json list = json::array();
  for (const auto& c : cases) list.push_back({{"id", c.id}, {"input", c.path.string()}, {"bytes", c.bytes}});
  json j = {{"shard", {{"index", shard.index}, {"count", shard.count}}},
            {"cases_total", cases_total},
            {"params_sha256", params_sha256},
            {"cases", list}};
  stamp(j, kManifestSchema, 1, makeProvenance(json::object(), json::object()));
  writeJsonFile(manifestPath(out, shard), j, true);
}

// ---- the batch ----------------------------------------------------------------------------
namespace {

// What one case's worker sends back: its record as JSON.
std::string runOneCase(const CaseInput& c, const BatchOptions& o, const json& params, bool force) {
  const fs::path dir = o.out / c.id;
  CaseResult r = runCase(c.path, c.id, dir, o.pipeline, o.calibration, force);
  if (o.on_case) o.on_case(r);
  std::string sha;
  std::error_code ec;
  if (fs::is_regular_file(c.path, ec) && !r.scan.sha256.empty()) {
    sha = r.scan.sha256;  // readScan hashed the file already
  } else {
    try {
      sha = inputSha256(c.path);
    } catch (const Error&) {
    }
  }
  return CaseRecord::fromResult(r, sha, params).toJson().dump();
}

CaseRecord failedRecord(const CaseInput& c, const std::string& failure, double seconds, const json& params) {
  CaseResult r;
  r.case_id = c.id;
  r.input = c.path;
  r.status = CaseStatus::Error;
  r.error = "'" + c.path.string() + "': the case's worker " + failure;
  r.exit_code = static_cast<int>(ExitCode::Processing);
  r.seconds = seconds;
  logSummary(r);
  std::string sha;
  try {
    sha = inputSha256(c.path);
  } catch (const Error&) {
  }
  return CaseRecord::fromResult(r, sha, params);
}

std::string rowsOf(const CaseRecord& rec, bool levels) {
  return levels ? buildTables({rec}).levels.substr(levelsCsvHeader().size() + 1)
                : buildTables({rec}).results.substr(resultsCsvHeader().size() + 1);
}

}  // namespace

BatchSummary runBatch(const std::vector<CaseInput>& all_cases, const BatchOptions& o) {
  if (o.resume && o.force)
    throw UsageError("--resume keeps the finished cases and --force runs them all again: give one of them");
  checkUniqueIds(all_cases);
  const auto cases = o.shard.whole() ? all_cases : selectShard(all_cases, o.shard);
  const json params = pipelineParameters(o.pipeline);
  const std::string params_sha = parametersSha256(params);
  const fs::path csv = o.out / "results.csv", levels_csv = o.out / "levels.csv";
  // Before any work: outputs of this run's cases in the folder need --resume or --force.
  if (!o.resume && !o.force) {
    size_t with_outputs = 0;
    std::string example;
    for (const auto& c : cases) {
      std::error_code ec;
      if (fs::is_directory(o.out / c.id, ec) && !fs::is_empty(o.out / c.id, ec)) {
        if (example.empty()) example = (o.out / c.id).string();
        ++with_outputs;
      }
    }
    if (with_outputs)
      throw UsageError(
          std::to_string(with_outputs) + " of the " + std::to_string(cases.size()) +
          " cases already have outputs in '" + o.out.string() + "' (e.g. '" + example +
          "'): pass --resume to keep the finished ones and run the rest, or --force to run every "
          "case again");
    if (o.shard.whole()) {
      checkWritable(csv, false);
      checkWritable(levels_csv, false);
    }
  }
  fs::create_directories(o.out);
  if (!o.shard.whole()) writeManifest(o.out, o.shard, cases, all_cases.size(), params_sha);
  spdlog::info(
      "{} case(s){} -> {}{}", cases.size(),
      o.shard.whole() ? ""
                      : " (shard " + std::to_string(o.shard.index) + "/" + std::to_string(o.shard.count) +
                            " of " + std::to_string(all_cases.size()) + ")",
      o.out.string(), o.supervised ? "" : " (cases run in this process: --supervise on isolates them)");
  // Rows are also appended, as each case ends, to the partial tables: a batch killed by the
  // scheduler keeps them beside the records. At the end they go.
  const std::string suffix = o.shard.whole() ? "" : "." + o.shard.tag();
  const fs::path partial = o.out / ("results" + suffix + ".partial.csv"),
                 levels_partial = o.out / ("levels" + suffix + ".partial.csv");
  std::ofstream part(partial, std::ios::trunc), lpart(levels_partial, std::ios::trunc);
  if (!part || !lpart)
    throw ProcessingError("cannot write '" + partial.string() +
                          "' (is the output folder writable? disk full?)");
  part << resultsCsvHeader() << "\n" << std::flush;
  lpart << levelsCsvHeader() << "\n" << std::flush;
  BatchSummary s;
  s.cases = cases.size();
  Progress prog("cases", static_cast<long>(cases.size()));
  size_t finished = 0;
  // What every case ends with, in this (the parent's) thread: its record, its rows, the counts.
  auto finish = [&](const CaseRecord& rec, bool ran) {
    if (ran) {
      fs::create_directories(o.out / rec.case_id);
      writeRecord(o.out / rec.case_id, rec);  // the case's last file: from here on it is complete
      ++s.ran;
    }
    if (rec.status == CaseStatus::Error) ++s.failed;
    if (rec.status == CaseStatus::NoSpine || rec.status == CaseStatus::LevelsNotNamed) ++s.unnamed;
    part << rowsOf(rec, false) << std::flush;
    lpart << rowsOf(rec, true) << std::flush;
    prog.set(static_cast<long>(++finished));
  };
  // Which cases run: with --resume, those whose record does not stand.
  std::vector<const CaseInput*> to_run;
  for (const auto& c : cases) {
    const fs::path dir = o.out / c.id;
    std::optional<CaseRecord> rec;
    if (o.resume) {
      std::string why;
      rec = readRecord(dir, &why);
      if (rec) {
        std::string sha;
        try {
          sha = inputSha256(c.path);
        } catch (const Error&) {
        }
        const std::string stale = staleReason(*rec, sha, params_sha, o.retry_errors);
        if (!stale.empty()) {
          spdlog::info("{}: runs again: {}", c.id, stale);
          rec.reset();
        }
      } else if (!why.empty()) {
        spdlog::warn("{}: runs again: {}", c.id, why);
      }
    }
    if (rec) {
      ++s.skipped;
      spdlog::debug("{}: finished before (--resume), kept", c.id);
      finish(*rec, false);
      continue;
    }
    // A case runs from a clean folder: what an earlier, killed or different run left goes.
    if (o.resume || o.force) clearCaseOutputs(dir);
    to_run.push_back(&c);
  }
  const bool force = o.resume || o.force;
  const std::string record_name = kRecordName;
  if (!o.supervised) {
    for (const auto* c : to_run)
      finish(CaseRecord::fromJson(json::parse(runOneCase(*c, o, params, force)),
                                  (o.out / c->id / record_name).string()),
             true);
  } else {
    // Up to `jobs` workers at once, each with its share of the threads.
    const int jobs = std::max(1, std::min<int>(o.jobs, static_cast<int>(to_run.size())));
    const int threads_each = std::max(1, runContext().threads / jobs);
    runSupervisedPool(
        to_run.size(), jobs,
        [&](size_t k) {
          if (jobs > 1) {
            runContext().threads = threads_each;
            setThreads(threads_each);
          }
          return runOneCase(*to_run[k], o, params, force);
        },
        [&](size_t k, const ChildOutcome& child) {
          const CaseInput& c = *to_run[k];
          if (child.ok) {
            finish(CaseRecord::fromJson(json::parse(child.answer), (o.out / c.id / record_name).string()),
                   true);
          } else {
            clearCaseOutputs(o.out / c.id);
            finish(failedRecord(c, child.failure, child.seconds, params), true);
          }
        },
        o.limits);
  }
  prog.finish();
  part.close();
  lpart.close();
  if (o.shard.whole()) {
    const auto all = collectRecords({o.out});
    report::writeCohortReport(o.out, all, "ctbmd cohort: " + absNormal(o.out).filename().string());
    const auto t = buildTables(all);
    writeTextFile(csv, t.results, true);
    writeTextFile(levels_csv, t.levels, true);
    s.results = csv;
    s.in_tables = static_cast<size_t>(std::count(t.results.begin(), t.results.end(), '\n')) - 1;
  }
  std::error_code ec;
  fs::remove(partial, ec);
  fs::remove(levels_partial, ec);
  return s;
}

// ---- merge --------------------------------------------------------------------------------
MergeSummary mergeOutputs(const std::vector<fs::path>& dirs, const fs::path& out, bool force) {
  if (dirs.empty()) throw UsageError("give the output folders to merge");
  checkWritable(out / "results.csv", force);
  checkWritable(out / "levels.csv", force);
  MergeSummary m;
  auto recs = collectRecords(dirs, &m.unreadable);
  std::set<std::string> have;
  for (const auto& r : recs) {
    have.insert(r.case_id);
    if (r.status == CaseStatus::Error) ++m.failed;
  }
  // Every shard manifest found: the cases each part owned, and whether the parts are all there.
  std::map<std::string, std::string> expected;  // id -> manifest
  std::map<int, std::set<int>> parts;           // count -> indices seen
  std::set<std::string> params_seen;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d / "shards", ec)) continue;
    for (const auto& e : fs::directory_iterator(d / "shards", ec)) {
      if (e.path().extension() != ".json") continue;
      const json j = readJsonFile(e.path());
      checkStageFile(j, e.path().string(), kManifestSchema, 1, "", "");
      try {
        parts[j.at("shard").at("count").get<int>()].insert(j.at("shard").at("index").get<int>());
        params_seen.insert(j.at("params_sha256").get<std::string>());
        for (const auto& c : j.at("cases"))
          expected.emplace(c.at("id").get<std::string>(), e.path().string());
      } catch (const json::exception& x) {
        throw InputError("shard manifest '" + e.path().string() + "' is malformed (" + x.what() + ")");
      }
    }
  }
  for (const auto& [count, seen] : parts)
    for (int i = 0; i < count; ++i)
      if (!seen.count(i))
        spdlog::warn("no manifest of shard {}/{}: its cases are not known to be missing (did it start?)", i,
                     count);
  if (params_seen.size() > 1)
    spdlog::warn("the shard manifests record {} different parameter sets: the shards were not run alike",
                 params_seen.size());
  for (const auto& [id, manifest] : expected)
    if (!have.count(id)) m.missing.push_back(id);
  m.expected = expected.size();
  m.cases = recs.size();
  fs::create_directories(out);
  report::writeCohortReport(out, recs, "ctbmd cohort: " + absNormal(out).filename().string());
  const auto t = buildTables(std::move(recs));
  writeTextFile(out / "results.csv", t.results, force);
  writeTextFile(out / "levels.csv", t.levels, force);
  json folders = json::array();
  for (const auto& d : dirs) folders.push_back(d.string());
  json j = {{"folders", folders},   {"cases", m.cases},   {"expected", m.expected},
            {"missing", m.missing}, {"failed", m.failed}, {"unreadable_records", m.unreadable}};
  stamp(j, "ctbmd.merge", 1, makeProvenance(json::object(), json::object()));
  writeJsonFile(out / "merge.json", j, true);
  return m;
}

}  // namespace ctbmd::batch
