#include "ctbmd/fileio.hpp"

#include <openssl/evp.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>
#include <vector>

#include "ctbmd/errors.hpp"
#include "internal/parallel.hpp"

namespace fs = std::filesystem;

namespace ctbmd {

// ---- SHA-256: OpenSSL's libcrypto (EVP) -------------------------------------------------
namespace {
struct Sha256 {
  Sha256() : ctx(EVP_MD_CTX_new()) {
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* p, size_t n) {
    if (n && EVP_DigestUpdate(ctx, p, n) != 1) throw std::runtime_error("SHA-256: EVP_DigestUpdate failed");
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, md, &len) != 1)
      throw std::runtime_error("SHA-256: EVP_DigestFinal_ex failed");
    static const char* const digits = "0123456789abcdef";
    std::string h(2 * len, '0');
    for (unsigned int i = 0; i < len; ++i) {
      h[2 * i] = digits[md[i] >> 4];
      h[2 * i + 1] = digits[md[i] & 15];
    }
    return h;
  }
  EVP_MD_CTX* ctx;
};
}  // namespace

std::string sha256Hex(const std::string& bytes) {
  Sha256 s;
  s.update(bytes.data(), bytes.size());
  return s.hex();
}

std::string sha256File(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open '" + path.string() + "' to compute its checksum");
  Sha256 s;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    s.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return s.hex();
}

// ---- outputs -----------------------------------------------------------------------------
void checkWritable(const fs::path& path, bool force) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw UsageError("output '" + path.string() + "' is a folder; give a file name inside it (e.g. '" +
                     (path / "out.json").string() + "')");
  if (!force && fs::exists(path, ec))
    throw UsageError("output '" + path.string() +
                     "' already exists; remove it or pass --force to overwrite it");
  // Outputs are written to a temporary name beside the file (".<stem>.tmp-<pid>-<n><ext>",
  // up to ~24 characters more) and renamed: the name must leave room for that.
  const std::string name = path.filename().string();
  if (name.size() + 24 > 255)
    throw UsageError("output '" + path.string() + "': its file name has " + std::to_string(name.size()) +
                     " characters; at most 231 (ctbmd writes through a temporary name beside it)");
  // The nearest existing folder above must let us create files (the missing ones are made).
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  while (!dir.empty() && !fs::exists(dir, ec) && dir != dir.parent_path()) dir = dir.parent_path();
  if (!dir.empty() && fs::is_directory(dir, ec) && ::access(dir.c_str(), W_OK | X_OK) != 0)
    throw UsageError("output '" + path.string() + "': the folder '" + dir.string() + "' is not writable (" +
                     std::strerror(errno) + "); choose another output place");
}

namespace {
std::string splitExtensions(const std::string& name, std::string& ext) {
  static const char* doubles[] = {".nii.gz", ".tar.gz"};
  for (const char* d : doubles) {
    size_t n = std::strlen(d);
    if (name.size() > n && name.compare(name.size() - n, n, d) == 0) {
      ext = d;
      return name.substr(0, name.size() - n);
    }
  }
  auto dot = name.find_last_of('.');
  if (dot == std::string::npos || dot == 0) {
    ext.clear();
    return name;
  }
  ext = name.substr(dot);
  return name.substr(0, dot);
}
}  // namespace

fs::path temporarySibling(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  std::string ext;
  std::string stem = splitExtensions(path.filename().string(), ext);
  std::string name =
      "." + stem + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + ext;
  return path.parent_path() / name;
}

void atomicWrite(const fs::path& path, bool force, const std::function<void(const fs::path&)>& write) {
  checkWritable(path, force);
  if (!path.parent_path().empty()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) throw UsageError("cannot create folder '" + path.parent_path().string() + "': " + ec.message());
  }
  fs::path tmp = temporarySibling(path);
  try {
    write(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void writeTextFile(const fs::path& path, const std::string& text, bool force) {
  atomicWrite(path, force, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) throw ProcessingError("failed writing '" + tmp.string() + "' (disk full?)");
  });
}

void writeJsonFile(const fs::path& path, const nlohmann::json& j, bool force) {
  writeTextFile(path, j.dump(2) + "\n", force);
}

std::string jsonProblem(const std::exception& e) {
  std::string w = e.what();
  if (w.rfind("[json.exception.", 0) == 0) {
    const auto close = w.find("] ");
    if (close != std::string::npos) w = w.substr(close + 2);
  }
  return w;
}

std::string quotedFile(const std::string& file) { return file.empty() ? std::string() : "'" + file + "' "; }

nlohmann::json readJsonFile(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw InputError("'" + path.string() + "' is a folder; give the JSON file a ctbmd stage wrote inside it");
  std::ifstream in(path);
  if (!in) throw InputError("cannot open '" + path.string() + "': no such file or not readable");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InputError("'" + path.string() + "' is not valid JSON (" + jsonProblem(e) +
                     "); was it written completely by a ctbmd stage?");
  } catch (const std::exception& e) {
    throw InputError("cannot read '" + path.string() + "': " + e.what());
  }
}

void gzipFile(const fs::path& in, const fs::path& out, int level, int threads, bool run_length) {
  // One gzip member made of raw deflate chunks compressed in parallel (each chunk ends on a
  // byte boundary with a sync flush; the last one finishes the stream), as pigz does. The
  // trailer's CRC32 and size are the whole file's, so readers can check completeness.
  std::ifstream src(in, std::ios::binary);
  if (!src) throw ProcessingError("cannot read '" + in.string() + "' to compress it");
  std::ofstream dst(out, std::ios::binary);
  if (!dst) throw ProcessingError("cannot create '" + out.string() + "'");
  const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  dst.write(reinterpret_cast<const char*>(header), 10);
  const size_t block = 8u << 20;
  threads = std::max(1, threads);
  std::vector<std::string> raw(threads), packed(threads);
  std::vector<uLong> crcs(threads);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t total = 0;
  std::string next(block, '\0');
  src.read(next.data(), static_cast<std::streamsize>(block));
  next.resize(static_cast<size_t>(src.gcount()));
  bool done = false;
  while (!done) {
    int n = 0;
    for (; n < threads && !done; ++n) {
      raw[n].swap(next);
      next.assign(block, '\0');
      src.read(next.data(), static_cast<std::streamsize>(block));
      next.resize(static_cast<size_t>(src.gcount()));
      if (next.empty()) done = true;  // raw[n] is the last chunk
    }
    std::vector<int> rc(n, Z_OK);
    // chunk t on any worker (parallelFor: a failure inside one, or a thread that cannot be
    // started, is an exception here, never an abort)
    parallelFor(n, [&](int t) {
      bool last = done && t == n - 1;
      z_stream zs{};
      rc[t] = deflateInit2(&zs, level, Z_DEFLATED, -15, 8, run_length ? Z_RLE : Z_DEFAULT_STRATEGY);
      if (rc[t] != Z_OK) return;
      packed[t].resize(deflateBound(&zs, raw[t].size()) + 64);
      zs.next_in = reinterpret_cast<Bytef*>(raw[t].data());
      zs.avail_in = static_cast<uInt>(raw[t].size());
      zs.next_out = reinterpret_cast<Bytef*>(packed[t].data());
      zs.avail_out = static_cast<uInt>(packed[t].size());
      int r = deflate(&zs, last ? Z_FINISH : Z_SYNC_FLUSH);
      packed[t].resize(zs.total_out);
      deflateEnd(&zs);
      rc[t] = (last ? r == Z_STREAM_END : r == Z_OK) ? Z_OK : Z_STREAM_ERROR;
      crcs[t] = crc32(0L, reinterpret_cast<const Bytef*>(raw[t].data()), static_cast<uInt>(raw[t].size()));
    });
    for (int t = 0; t < n; ++t) {
      if (rc[t] != Z_OK) throw ProcessingError("compressing '" + out.string() + "' failed");
      dst.write(packed[t].data(), static_cast<std::streamsize>(packed[t].size()));
      crc = crc32_combine(crc, crcs[t], static_cast<z_off_t>(raw[t].size()));
      total += raw[t].size();
    }
  }
  unsigned char trailer[8];
  for (int i = 0; i < 4; ++i) trailer[i] = static_cast<unsigned char>(crc >> (8 * i));
  for (int i = 0; i < 4; ++i) trailer[4 + i] = static_cast<unsigned char>(total >> (8 * i));
  dst.write(reinterpret_cast<const char*>(trailer), 8);
  dst.flush();
  if (!dst) throw ProcessingError("failed writing '" + out.string() + "' (disk full?)");
}

std::string imageStem(const fs::path& p) {
  std::string name = p.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    size_t n = std::strlen(ext);
    if (name.size() > n && name.compare(name.size() - n, n, ext) == 0) return name.substr(0, name.size() - n);
  }
  return name;
}

std::string shellQuote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./=:,+@%") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) {
    if (c == '"')
      o += "\"\"";
    else if (c == '\n')
      o += ' ';
    else
      o += c;
  }
  return o + "\"";
}

std::vector<std::string> splitCsvLine(const std::string& line) {
  std::vector<std::string> f;
  std::string cur;
  bool q = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (q) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        q = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      q = true;
    } else if (c == ',') {
      f.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  f.push_back(cur);
  for (auto& s : f) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    s = a == std::string::npos ? "" : s.substr(a, b - a + 1);
  }
  return f;
}

CsvTable readCsv(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read CSV file '" + path.string() + "'");
  CsvTable t;
  std::string line;
  long n = 0;
  while (std::getline(in, line)) {
    ++n;
    // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first column's name.
    if (n == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    if (t.header.empty()) {
      t.header = splitCsvLine(line);
      continue;
    }
    t.rows.push_back(splitCsvLine(line));
    t.line_numbers.push_back(n);
    // A row that ends the file without a newline and has fewer fields than the header was cut
    // off in writing (a killed batch, a full disk): its last field may be a number cut short
    // ("13" for 132.85), so it is refused rather than read.
    if (in.eof() && t.rows.back().size() < t.header.size())
      throw InputError("CSV file '" + path.string() + "' line " + std::to_string(n) + " is cut off (" +
                       std::to_string(t.rows.back().size()) + " of " + std::to_string(t.header.size()) +
                       " fields, no line end): the file is truncated; write it again (for a killed "
                       "ctbmd-run, use its results.partial.csv or rerun)");
  }
  if (t.header.empty()) throw InputError("CSV file '" + path.string() + "' is empty (no header row)");
  return t;
}

int CsvTable::column(std::initializer_list<const char*> names) const {
  for (const char* n : names)
    for (size_t i = 0; i < header.size(); ++i) {
      std::string h = header[i], m = n;
      std::transform(h.begin(), h.end(), h.begin(), ::tolower);
      std::transform(m.begin(), m.end(), m.begin(), ::tolower);
      if (h == m) return static_cast<int>(i);
    }
  return -1;
}

const std::string& CsvTable::cell(size_t row, int col) const {
  static const std::string empty;
  if (col < 0 || row >= rows.size() || static_cast<size_t>(col) >= rows[row].size()) return empty;
  return rows[row][static_cast<size_t>(col)];
}

}  // namespace ctbmd
