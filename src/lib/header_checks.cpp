// ctbmd's own header checks, made before a third-party reader sees a file (see
// internal/header_checks.hpp).
#include "internal/header_checks.hpp"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "ctbmd/errors.hpp"

namespace fs = std::filesystem;

namespace ctbmd::detail {

namespace {

// deflate emits at least one bit per 258 output bytes in the best case; zlib's documentation
// gives 1032:1 as the largest possible compression ratio.
constexpr double kDeflateMaxRatio = 1032.0;

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

[[noreturn]] void refuse(const fs::path& p, const std::string& why) { throw InputError(q(p) + " " + why); }

std::string gib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
  return b;
}

uint64_t fileSize(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  if (ec) throw InputError("cannot read " + q(p) + ": " + ec.message());
  return n;
}

void checkVoxelCount(const fs::path& p, long double voxels) {
  if (voxels > static_cast<long double>(maxVoxels()))
    refuse(p, "claims " + std::to_string(static_cast<unsigned long long>(std::min(voxels, 1e19L))) +
                  " voxels, more than ctbmd's ceiling of " + std::to_string(maxVoxels()) +
                  " (a damaged header?); if the scan is real, set CTBMD_MAX_VOXELS higher");
}

// The claimed uncompressed size must fit what the file can hold.
void checkClaimedSize(const fs::path& p, uint64_t claimed, uint64_t offset_in_file, bool compressed) {
  const uint64_t have = fileSize(p);
  if (compressed) {
    const double most = kDeflateMaxRatio * static_cast<double>(have) + 65536.0;
    if (static_cast<double>(claimed) > most)
      refuse(p, "claims " + std::to_string(claimed) + " bytes of image data (" + gib(claimed) +
                    ") but is only " + std::to_string(have) +
                    " bytes compressed, which cannot hold that much (deflate compresses at most 1032:1); "
                    "the header is damaged: export the scan again");
  } else if (offset_in_file + claimed > have) {
    refuse(p, "is truncated: its header announces " + std::to_string(offset_in_file + claimed) +
                  " bytes but the file holds " + std::to_string(have) + "; copy it again");
  }
}

// NIfTI datatype code -> bits per voxel (0: not a type ctbmd reads).
int niftiBits(int datatype) {
  switch (datatype) {
    case 2:
    case 256:
      return 8;  // uint8, int8
    case 4:
    case 512:
      return 16;  // int16, uint16
    case 8:
    case 16:
    case 768:
      return 32;  // int32, float32, uint32
    case 64:
    case 1024:
    case 1280:
      return 64;  // float64, int64, uint64
    case 128:
      return 24;  // RGB24 (refused later as non-scalar)
    case 2304:
      return 32;  // RGBA32
    case 32:
      return 64;  // complex64
    case 1792:
      return 128;  // complex128
    default:
      return 0;
  }
}

}  // namespace

uint64_t maxVoxels() {
  if (const char* e = std::getenv("CTBMD_MAX_VOXELS")) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(e, &end, 10);
    if (end && *end == 0 && v > 0) return v;
  }
  return uint64_t{1} << 31;
}

// ---- NIfTI ------------------------------------------------------------------------------
NiftiFacts checkNiftiHeader(const fs::path& path) {
  NiftiFacts f;
  const std::string name = path.filename().string();
  f.gz = name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0;
  unsigned char h[540] = {};
  int n = 0;
  {
    gzFile g = gzopen(path.c_str(), "rb");
    if (!g) throw InputError("cannot open " + q(path) + ": no such file or not readable");
    n = gzread(g, h, sizeof h);
    gzclose(g);
  }
  if (n < 348) refuse(path, "is too short to be a NIfTI file (" + std::to_string(std::max(n, 0)) + " bytes)");
  int32_t sz;
  std::memcpy(&sz, h, 4);
  const int32_t swapped = static_cast<int32_t>(__builtin_bswap32(static_cast<uint32_t>(sz)));
  if (sz == 540 || swapped == 540)
    refuse(path,
           "is a NIfTI-2 file, which ctbmd's reader (ITK 5.2) cannot read; convert it to NIfTI-1 "
           "(e.g. nibabel.Nifti1Image(img.dataobj, img.affine, img.header) in Python)");
  if (sz != 348 && swapped != 348) refuse(path, "is not a NIfTI-1 file (its header size field is not 348)");
  const bool swap = sz != 348;
  f.swap = swap;
  auto i16 = [&](int off) {
    uint16_t u;
    std::memcpy(&u, h + off, 2);
    return static_cast<int>(static_cast<int16_t>(swap ? __builtin_bswap16(u) : u));
  };
  auto f32 = [&](int off) {
    uint32_t u;
    std::memcpy(&u, h + off, 4);
    if (swap) u = __builtin_bswap32(u);
    float v;
    std::memcpy(&v, &u, 4);
    return static_cast<double>(v);
  };
  const int ndim = i16(40);
  if (ndim < 1 || ndim > 7) refuse(path, "has an invalid NIfTI header: dim[0] = " + std::to_string(ndim));
  long double voxels = 1;
  for (int d = 1; d <= ndim; ++d) {
    f.dim[d] = i16(40 + 2 * d);
    if (f.dim[d] < 1)
      refuse(path, "has an invalid NIfTI header: dimension " + std::to_string(d) + " has size " +
                       std::to_string(f.dim[d]));
    voxels *= static_cast<long double>(f.dim[d]);
  }
  checkVoxelCount(path, voxels);
  f.voxels = static_cast<uint64_t>(voxels);
  f.datatype = i16(70);
  f.bitpix = niftiBits(f.datatype);
  if (f.bitpix == 0) refuse(path, "has an unknown NIfTI datatype code " + std::to_string(f.datatype));
  for (int d = 1; d <= std::min(ndim, 3); ++d) {
    const double p = f32(76 + 4 * d);
    if (!std::isfinite(p) || p == 0.0)
      refuse(path, "has an invalid voxel size along axis " + std::to_string(d) + " (pixdim[" +
                       std::to_string(d) + "] = " + std::to_string(p) +
                       "); the geometry is unknown, fix the header");
  }
  const int qform = i16(252), sform = i16(254);
  if (qform > 0) {
    for (int off : {76, 256, 260, 264, 268, 272, 276})
      if (!std::isfinite(f32(off)))
        refuse(path, "has a non-finite number in its qform (orientation); fix the header");
  }
  if (sform > 0) {
    for (int k = 0; k < 12; ++k)
      if (!std::isfinite(f32(280 + 4 * k)))
        refuse(path, "has a non-finite number in its sform (orientation matrix); fix the header");
    // Its 3x3 part must span space: a zero-length or (nearly) parallel axis has no geometry,
    // and ITK's reader would take it apart by SVD (printing VNL's "suspicious return value").
    double m[3][3], len[3] = {0, 0, 0};
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) {
        m[r][c] = f32(280 + 16 * r + 4 * c);
        len[c] += m[r][c] * m[r][c];
      }
    const double det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
                       m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
                       m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    const double scale = std::sqrt(len[0] * len[1] * len[2]);
    if (!(scale > 0) || !std::isfinite(det) || std::abs(det) < 1e-3 * scale)
      refuse(path, "has a degenerate sform (its axes are of zero length or (nearly) parallel, determinant " +
                       std::to_string(det) +
                       "): the geometry is unknown; fix the header (or set sform_code 0 "
                       "to use the qform)");
  }
  const double slope = f32(112), inter = f32(116);
  f.scaled = std::isfinite(slope) && slope != 0.0 && !(slope == 1.0 && (inter == 0.0 || std::isnan(inter)));
  if (f.scaled && !std::isfinite(inter)) refuse(path, "has a non-finite scl_inter (intensity scaling)");
  const double off = f32(108);
  if (!std::isfinite(off) || off < 0 || off > 1e9)
    refuse(path, "has an invalid vox_offset (" + std::to_string(off) + ")");
  f.vox_offset = std::max<uint64_t>(348, static_cast<uint64_t>(off));
  f.data_bytes = f.voxels * static_cast<uint64_t>(f.bitpix) / 8;
  if (std::memcmp(h + 344, "ni1", 4) == 0)
    refuse(path, "is the header of a NIfTI pair (.hdr/.img); ctbmd reads single-file NIfTI (.nii, .nii.gz)");
  checkClaimedSize(path, f.data_bytes, f.vox_offset, f.gz);
  return f;
}

// ---- MetaImage ----------------------------------------------------------------------------
void checkMetaImageHeader(const fs::path& path) {
  constexpr size_t kMaxHeader = 1 << 16, kMaxKey = 64, kMaxValue = 250;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + q(path) + ": no such file or not readable");
  std::string head(kMaxHeader, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.size() >= 8 && std::memcmp(head.data(), "\x89PNG\r\n\x1a\n", 8) == 0)
    refuse(path, "is a PNG picture, not a MetaImage volume, despite its name");
  std::map<std::string, std::string> kv;
  size_t pos = 0, header_end = std::string::npos;
  while (pos < head.size()) {
    size_t eol = head.find('\n', pos);
    if (eol == std::string::npos) break;
    std::string line = head.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    for (unsigned char c : line)
      if (c != '\t' && (c < 0x20 || c > 0x7e))
        refuse(path, "is not a MetaImage file (its header holds binary bytes before ElementDataFile)");
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      refuse(path, "has a malformed MetaImage header line (no '='): " + line.substr(0, 60));
    auto trim = [](std::string s) {
      const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key.empty() || key.size() > kMaxKey ||
        !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; }))
      refuse(path, "has a malformed MetaImage header key: '" + key.substr(0, 60) + "'");
    if (value.size() > kMaxValue)
      refuse(path, "has a MetaImage header value longer than " + std::to_string(kMaxValue) + " characters (" +
                       key + ")");
    if (!kv.emplace(key, value).second) refuse(path, "names the MetaImage header key " + key + " twice");
    if (key == "ElementDataFile") {
      header_end = pos;
      break;
    }
  }
  if (header_end == std::string::npos)
    refuse(path, "is not a readable MetaImage file (no ElementDataFile line in its header)");
  auto numbers = [&](const std::string& key, size_t count, bool positive) {
    std::vector<double> v;
    auto it = kv.find(key);
    if (it == kv.end()) return v;
    std::istringstream s(it->second);
    std::string tok;
    while (s >> tok) {
      char* end = nullptr;
      const double x = std::strtod(tok.c_str(), &end);
      if (!end || *end || !std::isfinite(x) || (positive && !(x > 0)))
        refuse(path,
               "has an invalid " + key + " in its MetaImage header ('" + it->second.substr(0, 60) + "')");
      v.push_back(x);
    }
    if (v.size() != count)
      refuse(path, "has " + std::to_string(v.size()) + " values for " + key +
                       " in its MetaImage header, expected " + std::to_string(count));
    return v;
  };
  auto ot = kv.find("ObjectType");
  if (ot == kv.end() || ot->second != "Image")
    refuse(path, "is not a MetaImage image (ObjectType is not Image)");
  const auto nd = numbers("NDims", 1, true);
  if (nd.empty() || nd[0] != std::floor(nd[0]) || nd[0] < 2 || nd[0] > 4)
    refuse(path, "has an invalid NDims in its MetaImage header");
  const auto ndims = static_cast<size_t>(nd[0]);
  const auto dims = numbers("DimSize", ndims, true);
  if (dims.empty()) refuse(path, "has no DimSize in its MetaImage header");
  long double voxels = 1;
  for (double d : dims) {
    if (d != std::floor(d)) refuse(path, "has a non-integer DimSize in its MetaImage header");
    voxels *= d;
  }
  checkVoxelCount(path, voxels);
  for (const char* k : {"ElementSpacing", "ElementSize"}) numbers(k, ndims, true);
  for (const char* k : {"Offset", "Position", "Origin", "CenterOfRotation"}) numbers(k, ndims, false);
  for (const char* k : {"TransformMatrix", "Orientation", "Rotation"}) numbers(k, ndims * ndims, false);
  static const std::map<std::string, int> kBytes = {
      {"MET_UCHAR", 1},     {"MET_CHAR", 1},       {"MET_SHORT", 2}, {"MET_USHORT", 2},
      {"MET_INT", 4},       {"MET_UINT", 4},       {"MET_LONG", 4},  {"MET_ULONG", 4},
      {"MET_LONG_LONG", 8}, {"MET_ULONG_LONG", 8}, {"MET_FLOAT", 4}, {"MET_DOUBLE", 8}};
  auto et = kv.find("ElementType");
  if (et == kv.end() || !kBytes.count(et->second))
    refuse(path, "has an unknown ElementType in its MetaImage header");
  double channels = 1;
  if (kv.count("ElementNumberOfChannels")) {
    channels = numbers("ElementNumberOfChannels", 1, true)[0];
    if (channels != std::floor(channels) || channels > 16)
      refuse(path, "has an invalid ElementNumberOfChannels in its MetaImage header");
  }
  auto isTrue = [&](const char* k) {
    auto it = kv.find(k);
    return it != kv.end() && (it->second == "True" || it->second == "true" || it->second == "1");
  };
  const bool compressed = isTrue("CompressedData");
  const auto claimed = static_cast<uint64_t>(voxels * kBytes.at(et->second) * channels);
  const std::string data = kv["ElementDataFile"];
  if (data == "LOCAL") {
    if (compressed) {
      const uint64_t have = fileSize(path) - header_end;
      if (static_cast<double>(claimed) > kDeflateMaxRatio * static_cast<double>(have) + 65536.0)
        refuse(path, "claims " + std::to_string(claimed) + " bytes of image data but holds only " +
                         std::to_string(have) + " compressed; the header is damaged: export the scan again");
    } else {
      checkClaimedSize(path, claimed, header_end, false);
    }
    return;
  }
  if (data == "LIST" || data.find('%') != std::string::npos)
    refuse(path, "keeps its slices in several data files (ElementDataFile " + data.substr(0, 40) +
                     "); ctbmd reads a single data file: convert the volume to .mha or NIfTI");
  const fs::path raw = path.parent_path() / data;
  std::error_code ec;
  if (!fs::is_regular_file(raw, ec))
    refuse(path, "names a data file '" + raw.string() + "' that does not exist; copy it beside the header");
  if (compressed) {
    if (static_cast<double>(claimed) > kDeflateMaxRatio * static_cast<double>(fileSize(raw)) + 65536.0)
      refuse(path, "claims more image data than its compressed data file '" + raw.string() + "' can hold");
  } else if (fileSize(raw) < claimed) {
    refuse(path, "is truncated: its data file '" + raw.string() + "' holds " + std::to_string(fileSize(raw)) +
                     " bytes, the header announces " + std::to_string(claimed) + "; copy it again");
  }
}

// ---- NRRD -----------------------------------------------------------------------------------
void checkNrrdHeader(const fs::path& path) {
  constexpr size_t kMaxHeader = 1 << 16, kMaxLine = 1024;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open " + q(path) + ": no such file or not readable");
  std::string head(kMaxHeader, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.size() < 8 || head.compare(0, 4, "NRRD") != 0 ||
      !std::isdigit(static_cast<unsigned char>(head[4])))
    refuse(path, "is not a NRRD file (it does not start with NRRD000x)");
  std::map<std::string, std::string> kv;
  size_t pos = head.find('\n');
  size_t header_end = std::string::npos;
  while (pos != std::string::npos && pos + 1 < head.size()) {
    ++pos;
    const size_t eol = head.find('\n', pos);
    if (eol == std::string::npos) break;
    std::string line = head.substr(pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {  // the blank line ends the header; the data follows (attached)
      header_end = eol + 1;
      break;
    }
    pos = eol;
    if (line.size() > kMaxLine)
      refuse(path, "has a NRRD header line longer than " + std::to_string(kMaxLine));
    for (unsigned char c : line)
      if (c != '\t' && (c < 0x20 || c > 0x7e))
        refuse(path, "is not a NRRD file (binary bytes in its header)");
    if (line[0] == '#') continue;
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) continue;  // key:=value pairs and the like: not geometry
    std::string key = line.substr(0, colon), value = line.substr(colon + 2);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!kv.emplace(key, value).second) refuse(path, "names the NRRD field '" + key + "' twice");
  }
  auto get = [&](const char* k) -> const std::string* {
    auto it = kv.find(k);
    return it == kv.end() ? nullptr : &it->second;
  };
  const bool detached = get("data file") || get("datafile");
  if (header_end == std::string::npos && !detached)
    refuse(path, "is not a complete NRRD file (no blank line ends its header)");
  const std::string* dim = get("dimension");
  const std::string* sizes = get("sizes");
  const std::string* type = get("type");
  const std::string* enc = get("encoding");
  if (!dim || !sizes || !type || !enc)
    refuse(path, "lacks a required NRRD field (dimension, sizes, type, encoding)");
  char* end = nullptr;
  const long nd = std::strtol(dim->c_str(), &end, 10);
  if (!end || *end || nd < 2 || nd > 4)
    refuse(path, "has an invalid NRRD dimension '" + dim->substr(0, 20) + "'");
  std::istringstream ss(*sizes);
  std::string tok;
  long double voxels = 1;
  long count = 0;
  while (ss >> tok) {
    const long long v = std::strtoll(tok.c_str(), &end, 10);
    if (!end || *end || v < 1) refuse(path, "has an invalid NRRD size '" + tok.substr(0, 20) + "'");
    voxels *= static_cast<long double>(v);
    ++count;
  }
  if (count != nd)
    refuse(path, "has " + std::to_string(count) + " NRRD sizes for dimension " + std::to_string(nd));
  checkVoxelCount(path, voxels);
  static const std::map<std::string, int> kBytes = {{"signed char", 1},
                                                    {"int8", 1},
                                                    {"int8_t", 1},
                                                    {"uchar", 1},
                                                    {"unsigned char", 1},
                                                    {"uint8", 1},
                                                    {"uint8_t", 1},
                                                    {"short", 2},
                                                    {"short int", 2},
                                                    {"signed short", 2},
                                                    {"signed short int", 2},
                                                    {"int16", 2},
                                                    {"int16_t", 2},
                                                    {"ushort", 2},
                                                    {"unsigned short", 2},
                                                    {"unsigned short int", 2},
                                                    {"uint16", 2},
                                                    {"uint16_t", 2},
                                                    {"int", 4},
                                                    {"signed int", 4},
                                                    {"int32", 4},
                                                    {"int32_t", 4},
                                                    {"uint", 4},
                                                    {"unsigned int", 4},
                                                    {"uint32", 4},
                                                    {"uint32_t", 4},
                                                    {"longlong", 8},
                                                    {"long long", 8},
                                                    {"long long int", 8},
                                                    {"signed long long", 8},
                                                    {"signed long long int", 8},
                                                    {"int64", 8},
                                                    {"int64_t", 8},
                                                    {"ulonglong", 8},
                                                    {"unsigned long long", 8},
                                                    {"unsigned long long int", 8},
                                                    {"uint64", 8},
                                                    {"uint64_t", 8},
                                                    {"float", 4},
                                                    {"double", 8}};
  auto bt = kBytes.find(*type);
  if (bt == kBytes.end()) refuse(path, "has an unknown NRRD type '" + type->substr(0, 30) + "'");
  const auto claimed = static_cast<uint64_t>(voxels * bt->second);
  for (const char* k : {"space origin", "space directions", "spacings"}) {
    const std::string* v = get(k);
    if (!v) continue;
    std::string t = *v;
    for (char& c : t)
      if (c == '(' || c == ')' || c == ',') c = ' ';
    std::istringstream vs(t);
    while (vs >> tok) {
      if (tok == "none" || tok == "nan" || tok == "NaN") {
        if (tok != "none") refuse(path, "has a non-finite number in its NRRD '" + std::string(k) + "'");
        continue;
      }
      const double x = std::strtod(tok.c_str(), &end);
      if (!end || *end || !std::isfinite(x))
        refuse(path,
               "has an invalid number in its NRRD '" + std::string(k) + "' ('" + tok.substr(0, 20) + "')");
    }
  }
  if (detached) return;  // the data file's size is ITK's to check (ctbmd writes attached .nrrd only)
  const uint64_t have = fileSize(path) - header_end;
  if (*enc == "raw") {
    if (have < claimed)
      refuse(path, "is truncated: it holds " + std::to_string(have) +
                       " bytes of image data, its header announces " + std::to_string(claimed) +
                       "; copy it again");
  } else if (*enc == "gzip" || *enc == "gz") {
    if (static_cast<double>(claimed) > kDeflateMaxRatio * static_cast<double>(have) + 65536.0)
      refuse(path, "claims " + std::to_string(claimed) + " bytes of image data but holds only " +
                       std::to_string(have) + " compressed; the header is damaged: export the scan again");
  } else if (*enc == "ascii" || *enc == "text" || *enc == "txt" || *enc == "hex") {
    if (static_cast<long double>(have) < voxels)  // at least one character per voxel
      refuse(path, "is truncated: fewer characters of " + *enc + " data than voxels");
  } else {
    refuse(path, "has NRRD encoding '" + enc->substr(0, 20) +
                     "', which ctbmd does not read (raw, gzip, ascii, hex)");
  }
}

// ---- DICOM ----------------------------------------------------------------------------------
void checkDicomFile(const fs::path& path) {
  const uint64_t size = fileSize(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open DICOM slice " + q(path));
  // Read up to 64 KiB: the meta group and the elements before the pixel data normally fit.
  std::vector<unsigned char> b(static_cast<size_t>(std::min<uint64_t>(size, 1 << 16)));
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  const std::string cut = "DICOM slice " + q(path) + " is truncated or damaged (";
  const std::string fix = "); copy the series again or remove that file";
  if (b.size() < 132 + 12 || std::memcmp(b.data() + 128, "DICM", 4) != 0)
    throw InputError(cut + "no complete part-10 preamble" + fix);
  auto u16 = [&](size_t o) { return static_cast<uint32_t>(b[o] | (b[o + 1] << 8)); };
  auto u32 = [&](size_t o) {
    return static_cast<uint32_t>(b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) |
           (static_cast<uint32_t>(b[o + 3]) << 24);
  };
  auto longVr = [](const unsigned char* vr) {
    static const char* kLong[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                  "SV", "UC", "UN", "UR", "UT", "UV"};
    for (const char* l : kLong)
      if (vr[0] == l[0] && vr[1] == l[1]) return true;
    return false;
  };
  // An explicit VR must be one of DICOM's: GDCM reads an unknown one ("Ds") with a length from
  // the wrong bytes and allocates up to 4 GiB for it (a fuzzer's one flipped bit: 20 s, 1.2 GB).
  auto knownVr = [](const unsigned char* vr) {
    static const char* kVr[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT",
                                "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST",
                                "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"};
    for (const char* v : kVr)
      if (vr[0] == v[0] && vr[1] == v[1]) return true;
    return false;
  };
  auto tag = [](uint32_t group, uint32_t elem) {
    char t[16];
    std::snprintf(t, sizeof t, "(%04X,%04X)", group, elem);
    return std::string(t);
  };
  auto printable = [](const std::string& v) {
    std::string n;
    for (unsigned char c : v) {
      char e[8];
      std::snprintf(e, sizeof e, std::isprint(c) ? "%c" : "\\x%02X", c);
      n += e;
    }
    return n;
  };
  auto vrName = [&](const unsigned char* vr) { return printable(std::string(vr, vr + 2)); };
  // The elements GDCM reads through gdcm::Attribute to build an image must carry their
  // dictionary's VR (or UN): GDCM asserts otherwise (ImagePositionPatient as "DT" aborted the
  // process: a fuzzer finding). Real files use these VRs; another one is damage.
  auto vrMismatch = [](uint32_t group, uint32_t elem, const unsigned char* vr) -> const char* {
    struct Want {
      uint16_t g, e;
      const char* vr;
    };
    static const Want kWant[] = {
        {0x0002, 0x0000, "UL"}, {0x0002, 0x0001, "OB"}, {0x0002, 0x0002, "UI"}, {0x0002, 0x0003, "UI"},
        {0x0002, 0x0010, "UI"}, {0x0002, 0x0012, "UI"}, {0x0002, 0x0013, "SH"}, {0x0002, 0x0016, "AE"},
        {0x0008, 0x0008, "CS"}, {0x0008, 0x0016, "UI"}, {0x0008, 0x0018, "UI"}, {0x0008, 0x0060, "CS"},
        {0x0018, 0x0050, "DS"}, {0x0018, 0x0088, "DS"}, {0x0018, 0x1164, "DS"}, {0x0020, 0x000D, "UI"},
        {0x0020, 0x000E, "UI"}, {0x0020, 0x0013, "IS"}, {0x0020, 0x0032, "DS"}, {0x0020, 0x0037, "DS"},
        {0x0028, 0x0002, "US"}, {0x0028, 0x0004, "CS"}, {0x0028, 0x0006, "US"}, {0x0028, 0x0008, "IS"},
        {0x0028, 0x0009, "AT"}, {0x0028, 0x0010, "US"}, {0x0028, 0x0011, "US"}, {0x0028, 0x0030, "DS"},
        {0x0028, 0x0034, "IS"}, {0x0028, 0x0100, "US"}, {0x0028, 0x0101, "US"}, {0x0028, 0x0102, "US"},
        {0x0028, 0x0103, "US"}, {0x0028, 0x1050, "DS"}, {0x0028, 0x1051, "DS"}, {0x0028, 0x1052, "DS"},
        {0x0028, 0x1053, "DS"}, {0x3004, 0x000C, "DS"}};
    if (vr[0] == 'U' && vr[1] == 'N') return nullptr;
    for (const auto& w : kWant)
      if (w.g == group && w.e == elem) return vr[0] == w.vr[0] && vr[1] == w.vr[1] ? nullptr : w.vr;
    if (group == 0x7FE0 && elem == 0x0010 && !(vr[0] == 'O' && (vr[1] == 'B' || vr[1] == 'W')))
      return "OB or OW";
    return nullptr;
  };
  auto checkVr = [&](uint32_t group, uint32_t elem, const unsigned char* vr) {
    if (const char* want = vrMismatch(group, elem, vr))
      throw InputError(cut + "element " + tag(group, elem) + " has the value representation '" + vrName(vr) +
                       "' where DICOM has " + want + fix);
  };
  // File meta group (0002): always explicit VR little endian.
  size_t p = 132;
  std::string ts;
  while (true) {
    if (p + 8 > b.size()) {
      if (b.size() == size) throw InputError(cut + "the file ends inside its meta header" + fix);
      return;  // a meta group longer than 64 KiB: leave it to GDCM
    }
    if (u16(p) != 0x0002) break;
    if (!knownVr(b.data() + p + 4))
      throw InputError(cut + "its meta header has an element with the unknown value representation '" +
                       vrName(b.data() + p + 4) + "'" + fix);
    checkVr(0x0002, u16(p + 2), b.data() + p + 4);
    const bool lv = longVr(b.data() + p + 4);
    if (lv && p + 12 > b.size()) {  // a long VR's 4-byte length lies beyond what was read
      if (b.size() == size) throw InputError(cut + "the file ends inside its meta header" + fix);
      return;
    }
    const uint64_t len = lv ? u32(p + 8) : u16(p + 6);
    const size_t hdr = lv ? 12 : 8;
    if (len == 0xFFFFFFFFu || p + hdr + len > size)
      throw InputError(cut + "an element of its meta header runs past the end of the file" + fix);
    if (u16(p + 2) == 0x0010 && p + hdr + len <= b.size())
      ts.assign(reinterpret_cast<const char*>(b.data() + p + hdr), static_cast<size_t>(len));
    p += hdr + static_cast<size_t>(len);
  }
  // A part-10 file starts its data with the file meta group (0002): without it GDCM guesses the
  // encoding, and a guess on damage asserted (a fuzzer finding).
  if (p == 132) throw InputError(cut + "it has no file meta group (0002) after 'DICM'" + fix);
  while (!ts.empty() && (ts.back() == '\0' || ts.back() == ' ')) ts.pop_back();
  const bool implicit = ts == "1.2.840.10008.1.2";
  // Explicit VR big endian (retired, still in old archives): the same walk with the bytes
  // swapped (GDCM otherwise allocated 3.4 GB for a 385-byte file, a fuzzer finding).
  const bool big = ts == "1.2.840.10008.1.2.2";
  auto d16 = [&](size_t o) { return big ? static_cast<uint32_t>((b[o] << 8) | b[o + 1]) : u16(o); };
  auto d32 = [&](size_t o) {
    return big ? (static_cast<uint32_t>(b[o]) << 24) | static_cast<uint32_t>(b[o + 1] << 16) |
                     static_cast<uint32_t>(b[o + 2] << 8) | b[o + 3]
               : u32(o);
  };
  // Top-level data set elements up to the pixel data must fit in the file.
  int bits_allocated = 0, bits_stored = 0;  // (0028,0100) and (0028,0101) once seen
  while (p + 8 <= b.size()) {
    const uint32_t group = d16(p), elem = d16(p + 2);
    uint64_t len;
    size_t hdr;
    if (implicit) {
      len = d32(p + 4);
      hdr = 8;
    } else {
      if (!knownVr(b.data() + p + 4))
        throw InputError(cut + "element " + tag(group, elem) + " has the unknown value representation '" +
                         vrName(b.data() + p + 4) + "'" + fix);
      checkVr(group, elem, b.data() + p + 4);
      const bool lv = longVr(b.data() + p + 4);
      if (lv && p + 12 > b.size()) {
        if (b.size() == size) throw InputError(cut + "the file ends inside a data element" + fix);
        return;
      }
      len = lv ? d32(p + 8) : d16(p + 6);
      hdr = lv ? 12 : 8;
    }
    if (len == 0xFFFFFFFFu) {
      // Undefined length: DICOM allows it for a sequence (SQ, or UN holding one) and for
      // encapsulated pixel data (OB/OW); GDCM asserts on any other (an OB element: a fuzzer
      // finding). The rest of the file is left to GDCM.
      const unsigned char* vr = b.data() + p + 4;
      const bool seq = (vr[0] == 'S' && vr[1] == 'Q') || (vr[0] == 'U' && vr[1] == 'N');
      if (group == 0x7FE0 && elem == 0x0010) {
        // Encapsulated pixel data: only in a compressed transfer syntax, and it starts with an
        // item (FFFE,E000), the basic offset table (GDCM asserts otherwise: a fuzzer finding).
        const bool native = ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.1" || big;
        const size_t v = p + hdr;
        if (native || (v + 4 <= b.size() && !(d16(v) == 0xFFFE && d16(v + 2) == 0xE000)))
          throw InputError(cut + "its pixel data has an undefined length but " +
                           (native ? "the transfer syntax is uncompressed" : "does not start with an item") +
                           fix);
        return;
      }
      if (!implicit && !seq)
        throw InputError(cut + "element " + tag(group, elem) +
                         " has an undefined length with the value representation '" + vrName(vr) + "'" + fix);
      return;
    }
    if (p + hdr + len > size)
      throw InputError(cut + "element " + tag(group, elem) + " runs past the end of the file" + fix);
    if (group == 0x7FE0 && elem == 0x0010) {
      // Elements after the pixel data are read by GDCM too (junk there made it ask for 3.8 GB:
      // a fuzzer finding): walk up to 64 KiB of them, read from the file's tail.
      const uint64_t end = p + hdr + len;
      if (end >= size) return;
      if (end + 8 > b.size()) {
        const auto tail = static_cast<size_t>(std::min<uint64_t>(size - end, 1 << 16));
        b.assign(static_cast<size_t>(end) + tail, 0);  // only bytes from `end` on are used
        in.clear();
        in.seekg(static_cast<std::streamoff>(end));
        in.read(reinterpret_cast<char*>(b.data() + end), static_cast<std::streamsize>(tail));
        if (in.gcount() != static_cast<std::streamsize>(tail)) return;
      }
      p = static_cast<size_t>(end);
      continue;
    }
    // The pixel format, before GDCM's PixelFormat asserts on it (SamplesPerPixel > 4 aborts):
    // a CT slice has one sample per pixel of 8, 16 or 32 bits.
    if (group == 0x0028 && len == 2 && p + hdr + 2 <= b.size()) {
      const uint32_t v = d16(p + hdr);
      const std::string bad = "DICOM slice " + q(path) + " has an invalid pixel format: ";
      if (elem == 0x0002 && v != 1)
        throw InputError(bad + "SamplesPerPixel " + std::to_string(v) +
                         " (CT has 1: a colour or damaged image); remove that file from the series");
      if (elem == 0x0100 && v != 8 && v != 16 && v != 32)
        throw InputError(bad + "BitsAllocated " + std::to_string(v) +
                         " (CT: 16); remove that file from the series");
      // Bits Stored and High Bit (CT: 12-16 bits stored, the high bit one below): ITK's reader
      // asserts when they make the stored type larger than the one it chose (SIGABRT on Bits
      // Stored 1: a fuzzer finding).
      if (elem == 0x0100) bits_allocated = static_cast<int>(v);
      if (elem == 0x0101 && (v < 8 || (bits_allocated > 0 && static_cast<int>(v) > bits_allocated)))
        throw InputError(bad + "BitsStored " + std::to_string(v) + " with BitsAllocated " +
                         std::to_string(bits_allocated) +
                         " (CT: 12 to 16 of 16); remove that file from the series");
      if (elem == 0x0101) bits_stored = static_cast<int>(v);
      if (elem == 0x0102 && bits_stored > 0 && static_cast<int>(v) != bits_stored - 1)
        throw InputError(bad + "HighBit " + std::to_string(v) + " with BitsStored " +
                         std::to_string(bits_stored) +
                         " (DICOM: one less than BitsStored); remove that file from the series");
      if (elem == 0x0103 && v > 1)
        throw InputError(bad + "PixelRepresentation " + std::to_string(v) +
                         " (0 unsigned or 1 signed); remove that file from the series");
    }
    // Photometric Interpretation: a CT slice is greyscale, MONOCHROME2 (or MONOCHROME1). GDCM
    // asserts on a palette image without its colour tables (SIGABRT: a fuzzer finding), and a
    // colour image is no CT ctbmd can measure.
    if (group == 0x0028 && elem == 0x0004 && p + hdr + len <= b.size()) {
      std::string v(reinterpret_cast<const char*>(b.data() + p + hdr), static_cast<size_t>(len));
      while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
      if (v != "MONOCHROME2" && v != "MONOCHROME1")
        throw InputError("DICOM slice " + q(path) + " has the photometric interpretation '" +
                         printable(v.substr(0, 16)) +
                         "' (CT is greyscale: MONOCHROME2); remove that file from the series");
    }
    // Recognition Code (0008,0010), retired with ACR-NEMA: GDCM asserts that a file carrying one
    // whose SOP class it does not know is ACR-NEMA 1/2 or MIPS 2.0 (SIGABRT otherwise: a fuzzer
    // finding). Real files carry "ACR-NEMA 2.0" or similar; any other value is damage.
    if (group == 0x0008 && elem == 0x0010 && len > 0 && p + hdr + len <= b.size()) {
      const std::string v(reinterpret_cast<const char*>(b.data() + p + hdr), static_cast<size_t>(len));
      if (v.rfind("ACR-NEMA", 0) != 0 && v.rfind("ACRNEMA", 0) != 0 && v.rfind("MIPS 2.0", 0) != 0)
        throw InputError(cut + "element (0008,0010), the retired ACR-NEMA Recognition Code, holds '" +
                         printable(v.substr(0, 16)) + "'" + fix);
    }
    p += hdr + static_cast<size_t>(len);
  }
  if (b.size() == size && p != size && p + 8 > size)
    throw InputError(cut + "the file ends inside a data element" + fix);
}

// ---- gzip -----------------------------------------------------------------------------------
std::string verifyGzip(const fs::path& path, uint64_t expected, std::string& note, const ByteSink& sink) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open it";
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return "zlib could not be initialised";
  std::vector<unsigned char> ibuf(1 << 18), obuf(1 << 18);
  uint64_t total = 0;
  int members = 0;
  bool in_member = true, eof = false;
  std::string why;
  while (why.empty()) {
    if (zs.avail_in == 0 && !eof) {
      in.read(reinterpret_cast<char*>(ibuf.data()), static_cast<std::streamsize>(ibuf.size()));
      zs.next_in = ibuf.data();
      zs.avail_in = static_cast<uInt>(in.gcount());
      eof = in.gcount() == 0 || in.eof();
    }
    if (zs.avail_in == 0) {
      if (in_member) why = "truncated: the gzip stream ends early";
      break;
    }
    if (!in_member) {
      // Another member starts, or bytes that are no gzip data follow the last member.
      if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
        inflateReset(&zs);
        in_member = true;
      } else {
        note = "bytes after the end of its gzip data were ignored";
        break;
      }
    }
    zs.next_out = obuf.data();
    zs.avail_out = static_cast<uInt>(obuf.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t got = obuf.size() - zs.avail_out;
    if (sink && got) sink(obuf.data(), got);
    total += got;
    if (rc == Z_STREAM_END) {
      in_member = false;
      ++members;
    } else if (rc == Z_DATA_ERROR) {
      why = std::string("corrupt: ") + (zs.msg ? zs.msg : "invalid deflate data");
    } else if (rc == Z_MEM_ERROR) {
      why = "out of memory while decompressing";
    } else if (rc == Z_BUF_ERROR && zs.avail_in == 0 && eof) {
      why = "truncated: the gzip stream ends early";
    }
    if (total > expected + (uint64_t{64} << 20)) {  // far more than announced: stop early
      note = "its gzip data hold more than the header announces (ignored)";
      break;
    }
  }
  inflateEnd(&zs);
  if (!why.empty()) return why;
  if (total < expected)
    return "truncated: it decompresses to " + std::to_string(total) + " bytes, the header announces " +
           std::to_string(expected);
  if (total > expected && note.empty()) note = "its gzip data hold more than the header announces (ignored)";
  (void)members;
  return "";
}

uint64_t countNonFiniteNifti(const fs::path& path, const NiftiFacts& facts, std::string& gz_problem,
                             std::string& note) {
  const bool swap = facts.swap;
  const int width = facts.datatype == 16 ? 4 : facts.datatype == 64 ? 8 : 0;
  uint64_t bad = 0, pos = 0;
  unsigned char partial[8];
  int have = 0;
  auto value = [&](const unsigned char* e) {
    unsigned char b[8];
    for (int k = 0; k < width; ++k) b[k] = swap ? e[width - 1 - k] : e[k];
    if (width == 4) {
      float v;
      std::memcpy(&v, b, 4);
      return std::isfinite(v);
    }
    double v;
    std::memcpy(&v, b, 8);
    return std::isfinite(v);
  };
  const uint64_t begin = facts.vox_offset, end = facts.total();
  ByteSink sink = [&](const unsigned char* d, size_t n) {
    // the part of [pos, pos + n) that lies in the voxel data
    uint64_t a = std::max(pos, begin), z = std::min(pos + n, end);
    for (uint64_t i = a; i < z; ++i) {
      partial[have++] = d[i - pos];
      if (have == width) {
        if (!value(partial)) ++bad;
        have = 0;
      }
    }
    pos += n;
  };
  if (facts.gz) {
    gz_problem = verifyGzip(path, facts.total(), note, width ? sink : ByteSink{});
    return bad;
  }
  if (!width) return 0;
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> buf(1 << 20);
  while (in && pos < end) {
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() <= 0) break;
    sink(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return bad;
}

}  // namespace ctbmd::detail
