// The one read path and the one write path for images (see include/ctbmd/image.hpp).
#include <fcntl.h>
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageIOFactory.h>
#include <itkImageSeriesReader.h>
#include <itkMetaDataObject.h>
#include <itkMultiThreaderBase.h>
#include <libdeflate.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <limits>
#include <new>
#include <numeric>
#include <sstream>

#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "internal/header_checks.hpp"
#include "internal/library_output.hpp"

namespace fs = std::filesystem;

namespace ctbmd {

// ---- orientation codes -------------------------------------------------------------------
std::string orientationCode(const CtImage::DirectionType& d) {
  // Column j of the direction matrix is the LPS world direction of index axis j.
  static const char pos[3] = {'L', 'P', 'S'}, neg[3] = {'R', 'A', 'I'};
  std::string code;
  for (unsigned j = 0; j < 3; ++j) {
    unsigned best = 0;
    for (unsigned i = 1; i < 3; ++i)
      if (std::abs(d[i][j]) > std::abs(d[best][j])) best = i;
    code.push_back(d[best][j] >= 0 ? pos[best] : neg[best]);
  }
  return code;
}

CtImage::DirectionType directionFromCode(const std::string& code) {
  if (code.size() != 3) throw UsageError("orientation code '" + code + "' must have 3 letters");
  CtImage::DirectionType d;
  d.Fill(0.0);
  bool used[3] = {false, false, false};
  for (unsigned j = 0; j < 3; ++j) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(code[j])));
    int axis = -1;
    double sign = 1;
    switch (c) {
      case 'L':
        axis = 0;
        break;
      case 'R':
        axis = 0;
        sign = -1;
        break;
      case 'P':
        axis = 1;
        break;
      case 'A':
        axis = 1;
        sign = -1;
        break;
      case 'S':
        axis = 2;
        break;
      case 'I':
        axis = 2;
        sign = -1;
        break;
      default:
        break;
    }
    if (axis < 0 || used[axis])
      throw UsageError("orientation code '" + code +
                       "' is not valid: use one of L/R, one of P/A and one of S/I, e.g. LPS");
    used[axis] = true;
    d[axis][j] = sign;
  }
  return d;
}

bool isImageFile(const fs::path& p) {
  std::string n = p.filename().string();
  auto ends = [&](const char* e) {
    size_t k = std::strlen(e);
    return n.size() > k && n.compare(n.size() - k, k, e) == 0;
  };
  return ends(".nii.gz") || ends(".nii") || ends(".nrrd") || ends(".nhdr") || ends(".mha") || ends(".mhd");
}

namespace {

bool hasDicmPreamble(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  char buf[132];
  if (!in.read(buf, 132)) return false;
  return std::memcmp(buf + 128, "DICM", 4) == 0;
}

}  // namespace

bool isDicomFile(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return false;
  std::string n = p.filename().string();
  for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return (n.size() > 4 && n.compare(n.size() - 4, 4, ".dcm") == 0) || hasDicmPreamble(p);
}

bool isDicomDirectory(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec)) return false;
  int checked = 0;
  for (const auto& e : fs::directory_iterator(p, ec)) {
    if (std::error_code eq; !e.is_regular_file(eq)) continue;
    if (hasDicmPreamble(e.path())) return true;
    if (++checked > 20) break;
  }
  return false;
}

namespace {

std::string componentName(itk::IOComponentEnum c) { return itk::ImageIOBase::GetComponentTypeAsString(c); }

// ---- NIfTI qform / sform check ---------------------------------------------------------
struct NiftiAffines {
  bool ok = false;
  double vox_offset = 352;
  int qform_code = 0, sform_code = 0;
  std::array<std::array<double, 4>, 3> q{}, s{};
};

NiftiAffines readNiftiAffines(const fs::path& path) {
  NiftiAffines r;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return r;
  unsigned char h[348];
  int n = gzread(f, h, sizeof(h));
  gzclose(f);
  if (n != 348) return r;
  int32_t sz;
  std::memcpy(&sz, h, 4);
  bool swap = false;
  if (sz != 348) {
    int32_t s2 = __builtin_bswap32(static_cast<uint32_t>(sz));
    if (s2 != 348) return r;  // NIfTI-2 or not NIfTI: nothing to check
    swap = true;
  }
  auto f32 = [&](int off) {
    uint32_t u;
    std::memcpy(&u, h + off, 4);
    if (swap) u = __builtin_bswap32(u);
    float v;
    std::memcpy(&v, &u, 4);
    return static_cast<double>(v);
  };
  auto i16 = [&](int off) {
    uint16_t u;
    std::memcpy(&u, h + off, 2);
    if (swap) u = __builtin_bswap16(u);
    return static_cast<int>(static_cast<int16_t>(u));
  };
  r.vox_offset = f32(108);
  r.qform_code = i16(252);
  r.sform_code = i16(254);
  double qfac = f32(76) < 0 ? -1.0 : 1.0;
  double dx = f32(80), dy = f32(84), dz = f32(88);
  double b = f32(256), c = f32(260), d = f32(264);
  double a = 1.0 - (b * b + c * c + d * d);
  a = a < 1e-7 ? 0.0 : std::sqrt(a);
  double R[3][3] = {{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
                    {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
                    {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}};
  double sp[3] = {dx, dy, dz * qfac};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) r.q[i][j] = R[i][j] * sp[j];
    r.q[i][3] = f32(268 + 4 * i);
    for (int j = 0; j < 4; ++j) r.s[i][j] = f32(280 + 16 * i + 4 * j);
  }
  r.ok = true;
  return r;
}

// Affine (RAS world, as NIfTI stores it) of an ITK image.
template <typename TImage>
std::array<std::array<double, 4>, 3> rasAffine(const TImage* img) {
  std::array<std::array<double, 4>, 3> m{};
  for (int i = 0; i < 3; ++i) {
    double flip = i < 2 ? -1.0 : 1.0;  // LPS -> RAS
    for (int j = 0; j < 3; ++j) m[i][j] = flip * img->GetDirection()[i][j] * img->GetSpacing()[j];
    m[i][3] = flip * img->GetOrigin()[i];
  }
  return m;
}

double affineDiff(const std::array<std::array<double, 4>, 3>& a,
                  const std::array<std::array<double, 4>, 3>& b) {
  double m = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) m = std::max(m, std::abs(a[i][j] - b[i][j]));
  return m;
}

template <typename TImage>
void checkNifti(const fs::path& path, const TImage* img, ScanInfo& info) {
  NiftiAffines n = readNiftiAffines(path);
  if (!n.ok || n.qform_code <= 0 || n.sform_code <= 0) return;
  double qs = affineDiff(n.q, n.s);
  if (qs <= 1e-3) return;
  auto itkAff = rasAffine(img);
  std::string used = affineDiff(itkAff, n.s) < affineDiff(itkAff, n.q) ? "sform" : "qform";
  std::ostringstream msg;
  msg << "NIfTI header of '" << path.string() << "' has qform and sform that disagree by up to " << qs
      << " mm; ctbmd uses ITK's choice, the " << used
      << ". Check the geometry of this file (e.g. with another viewer) before trusting positions.";
  spdlog::warn("{}", msg.str());
  info.warnings.push_back(msg.str());
}

template <typename TImage>
void checkOrthogonal(const TImage* img, const fs::path& path) {
  const auto& d = img->GetDirection();
  for (unsigned i = 0; i < 3; ++i)
    for (unsigned j = 0; j < 3; ++j) {
      double dot = 0;
      for (unsigned k = 0; k < 3; ++k) dot += d[k][i] * d[k][j];
      double expect = (i == j) ? 1.0 : 0.0;
      if (std::abs(dot - expect) > 1e-4)
        throw InputError("'" + path.string() +
                         "' has non-orthogonal or sheared voxel axes (direction matrix is not a "
                         "rotation); ctbmd cannot measure on it without resampling. Resample it "
                         "onto an orthogonal grid first (e.g. with ITK's ResampleImageFilter).");
    }
  for (unsigned i = 0; i < 3; ++i)
    if (!(img->GetSpacing()[i] > 0) || !std::isfinite(img->GetSpacing()[i]))
      throw InputError("'" + path.string() + "' has an invalid voxel spacing");
}

// Converts a float image to int16 HU, rounding; warns when values had to be clamped.
CtImage::Pointer toHu(const FloatImage* in, const fs::path& path, ScanInfo& info) {
  auto out = CtImage::New();
  out->CopyInformation(in);
  out->SetRegions(in->GetLargestPossibleRegion());
  out->Allocate();
  const float* s = in->GetBufferPointer();
  int16_t* d = out->GetBufferPointer();
  size_t n = in->GetLargestPossibleRegion().GetNumberOfPixels();
  size_t clamped = 0, nonfinite = 0;
  for (size_t i = 0; i < n; ++i) {
    float v = s[i];
    if (!std::isfinite(v)) {
      ++nonfinite;
      v = -1024.f;
    }
    float r = std::nearbyint(v);
    if (r < -32768.f) {
      r = -32768.f;
      ++clamped;
    } else if (r > 32767.f) {
      r = 32767.f;
      ++clamped;
    }
    d[i] = static_cast<int16_t>(r);
  }
  if (nonfinite > 0)
    throw InputError("'" + path.string() + "' contains " + std::to_string(nonfinite) +
                     " NaN or infinite voxel values; it is not a valid CT image");
  if (clamped > 0) {
    std::string m = "'" + path.string() + "': " + std::to_string(clamped) +
                    " voxel values outside the int16 HU range were clamped";
    spdlog::warn("{}", m);
    info.warnings.push_back(m);
  }
  return out;
}

// NIfTI-1 files whose sform is orthonormal only to float precision and whose qform is unset
// (VerSe, many resampled datasets) are refused by ITK 5.2 ("No orthonormal definition found").
// Such a file is read through a private copy whose qform is the orthonormalised sform (the
// nearest rotation, by SVD); the change of every voxel position is reported.
struct RepairedCopies {
  std::vector<fs::path> files;
  ~RepairedCopies() {
    std::error_code ec;
    for (const auto& f : files) fs::remove(f, ec);
  }
};
RepairedCopies g_repaired;

fs::path repairNiftiSform(const fs::path& path, std::string& note) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) return {};
  std::vector<char> buf;
  char chunk[1 << 16];
  int n;
  while ((n = gzread(in, chunk, sizeof chunk)) > 0) buf.insert(buf.end(), chunk, chunk + n);
  gzclose(in);
  int32_t hsize = 0;
  if (buf.size() < 352) return {};
  std::memcpy(&hsize, buf.data(), 4);
  if (hsize != 348) return {};  // byte-swapped or NIfTI-2: leave to ITK
  auto f32 = [&](size_t off) {
    float v;
    std::memcpy(&v, buf.data() + off, 4);
    return static_cast<double>(v);
  };
  auto put32 = [&](size_t off, double v) {
    float f = static_cast<float>(v);
    std::memcpy(buf.data() + off, &f, 4);
  };
  int16_t qcode = 0, scode = 0;
  std::memcpy(&qcode, buf.data() + 252, 2);
  std::memcpy(&scode, buf.data() + 254, 2);
  if (scode <= 0) return {};
  Eigen::Matrix3d M;
  Eigen::Vector3d t;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) M(r, c) = f32(280 + 16 * r + 4 * c);
    t(r) = f32(280 + 16 * r + 12);
  }
  Eigen::Vector3d sp(M.col(0).norm(), M.col(1).norm(), M.col(2).norm());
  if (sp.minCoeff() <= 0) return {};
  Eigen::Matrix3d R0 = M * sp.cwiseInverse().asDiagonal();
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(R0, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Matrix3d R = svd.matrixU() * svd.matrixV().transpose();
  const double dev = (R - R0).cwiseAbs().maxCoeff();
  if (dev > 1e-3) return {};  // really not a rotation: refuse (ITK's message stands)
  double qfac = 1;
  if (R.determinant() < 0) {
    qfac = -1;
    R.col(2) *= -1;
  }
  // nifti_mat44_to_quatern
  double r11 = R(0, 0), r12 = R(0, 1), r13 = R(0, 2), r21 = R(1, 0), r22 = R(1, 1), r23 = R(1, 2),
         r31 = R(2, 0), r32 = R(2, 1), r33 = R(2, 2), a = r11 + r22 + r33 + 1, b, c, d;
  if (a > 0.5) {
    a = 0.5 * std::sqrt(a);
    b = 0.25 * (r32 - r23) / a;
    c = 0.25 * (r13 - r31) / a;
    d = 0.25 * (r21 - r12) / a;
  } else {
    double xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * std::sqrt(xd);
      c = 0.25 * (r12 + r21) / b;
      d = 0.25 * (r13 + r31) / b;
      a = 0.25 * (r32 - r23) / b;
    } else if (yd > 1) {
      c = 0.5 * std::sqrt(yd);
      b = 0.25 * (r12 + r21) / c;
      d = 0.25 * (r23 + r32) / c;
      a = 0.25 * (r13 - r31) / c;
    } else {
      d = 0.5 * std::sqrt(zd);
      b = 0.25 * (r13 + r31) / d;
      c = 0.25 * (r23 + r32) / d;
      a = 0.25 * (r21 - r12) / d;
    }
    if (a < 0) b = -b, c = -c, d = -d;
  }
  put32(76, qfac);
  for (int k = 0; k < 3; ++k) put32(80 + 4 * k, sp(k));
  put32(256, b);
  put32(260, c);
  put32(264, d);
  for (int k = 0; k < 3; ++k) put32(268 + 4 * k, t(k));
  int16_t newq = scode, news = 0;
  std::memcpy(buf.data() + 252, &newq, 2);
  std::memcpy(buf.data() + 254, &news, 2);
  // largest displacement of a voxel centre: at the far corner of the grid
  int16_t dim[8];
  std::memcpy(dim, buf.data() + 40, 16);
  Eigen::Vector3d far(std::max(0, dim[1] - 1), std::max(0, dim[2] - 1), std::max(0, dim[3] - 1));
  if (qfac < 0) R.col(2) *= -1;
  double moved = ((R - R0) * sp.asDiagonal() * far).norm();
  const std::string tmpl = (fs::temp_directory_path() / "ctbmd-nifti-XXXXXX").string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back(0);
  int fd = mkstemp(name.data());
  if (fd < 0) return {};
  close(fd);
  fs::path out = std::string(name.data()) + ".nii";
  fs::rename(name.data(), out);
  std::ofstream o(out, std::ios::binary);
  o.write(buf.data(), static_cast<std::streamsize>(buf.size()));
  if (!o) return {};
  o.close();
  g_repaired.files.push_back(out);
  char msg[256];
  std::snprintf(msg, sizeof msg,
                "its sform is orthonormal only to %.1e (ITK 5.2 refuses it); read with the nearest rotation "
                "instead (voxel positions move by at most %.2g mm)",
                dev, moved);
  note = msg;
  return out;
}

template <typename TImage>
typename TImage::Pointer readFileAs(const fs::path& path, itk::ImageIOBase* io) {
  auto reader = itk::ImageFileReader<TImage>::New();
  // probeFile may have pointed the IO at a repaired private copy
  const char* probed = io ? io->GetFileName() : nullptr;
  reader->SetFileName(probed && *probed ? std::string(probed) : path.string());
  if (io) reader->SetImageIO(io);
  detail::LibraryOutput quiet(path.string());
  reader->Update();
  typename TImage::Pointer img = reader->GetOutput();
  img->DisconnectPipeline();
  return img;
}

std::string formatOf(const fs::path& p);

// The geometry ITK took from the header must describe a body: voxels of 0.001-1000 mm
// (CT: 0.1-10 mm), an origin within a kilometre, a finite direction matrix. A damaged header
// with 1e38 in its matrix otherwise sends every stage into loops over an astronomical extent
// (a 601-byte fuzzer input kept ctbmd-localize busy for over 2 minutes).
void checkPlausibleGeometry(const itk::ImageIOBase& io, const fs::path& path) {
  for (unsigned d = 0; d < 3; ++d) {
    const double sp = io.GetSpacing(d), o = io.GetOrigin(d);
    if (!std::isfinite(sp) || sp < 1e-3 || sp > 1e3)
      throw InputError("'" + path.string() + "' has an implausible voxel size along axis " +
                       std::to_string(d + 1) + " (" + std::to_string(sp) +
                       " mm; CT voxels are 0.1-10 mm): the header is damaged, fix it");
    if (!std::isfinite(o) || std::abs(o) > 1e6)
      throw InputError("'" + path.string() + "' has an implausible origin (" + std::to_string(o) +
                       " mm along axis " + std::to_string(d + 1) + "): the header is damaged, fix it");
    for (double c : io.GetDirection(d))
      if (!std::isfinite(c))
        throw InputError("'" + path.string() +
                         "' has a non-finite direction matrix: the header is damaged, fix it");
  }
}

// ctbmd's own header checks (internal/header_checks.hpp) run before ITK sees the file: its
// readers abort or allocate what a damaged header claims. `nifti` receives what a NIfTI
// header says.
itk::ImageIOBase::Pointer probeFile(const fs::path& path, detail::NiftiFacts* nifti = nullptr) {
  if (!fs::exists(path)) throw InputError("input '" + path.string() + "' does not exist");
  if (!fs::is_regular_file(path)) throw InputError("input '" + path.string() + "' is not a regular file");
  const std::string format = formatOf(path);
  if (format == "nifti") {
    auto facts = detail::checkNiftiHeader(path);
    if (nifti) *nifti = facts;
  } else if (format == "metaimage") {
    detail::checkMetaImageHeader(path);
  } else if (format == "nrrd") {
    detail::checkNrrdHeader(path);
  }
  auto io = itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::IOFileModeEnum::ReadMode);
  if (!io)
    throw InputError("'" + path.string() +
                     "' is not an image format ctbmd reads (NIfTI .nii/.nii.gz, NRRD, MetaImage "
                     ".mha/.mhd, or a DICOM series folder)");
  try {
    io->SetFileName(path.string());
    detail::LibraryOutput quiet(path.string());
    io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    std::string what = e.GetDescription(), note;
    fs::path fixed;
    if (what.find("orthonormal") != std::string::npos) fixed = repairNiftiSform(path, note);
    if (fixed.empty()) throw InputError("cannot read the header of '" + path.string() + "': " + what);
    spdlog::warn("'{}': {}", path.string(), note);
    try {
      io->SetFileName(fixed.string());
      detail::LibraryOutput quiet(path.string());
      io->ReadImageInformation();
    } catch (const itk::ExceptionObject& e2) {
      throw InputError("cannot read the header of '" + path.string() + "': " + what);
    }
  }
  unsigned dims = io->GetNumberOfDimensions();
  if (dims < 3) {
    throw InputError("'" + path.string() + "' is a " + std::to_string(dims) +
                     "-D image; ctbmd needs a 3-D volume");
  }
  for (unsigned d = 3; d < dims; ++d)
    if (io->GetDimensions(d) > 1)
      throw InputError("'" + path.string() + "' is a " + std::to_string(dims) +
                       "-D image with several volumes; extract one 3-D volume first");
  if (io->GetNumberOfComponents() != 1)
    throw InputError("'" + path.string() + "' has " + std::to_string(io->GetNumberOfComponents()) +
                     " components per voxel; ctbmd needs a scalar (grey-value) image");
  checkPlausibleGeometry(*io, path);
  return io;
}

std::string formatOf(const fs::path& p) {
  std::string n = p.filename().string();
  if (n.find(".nii") != std::string::npos) return "nifti";
  if (n.find(".nrrd") != std::string::npos || n.find(".nhdr") != std::string::npos) return "nrrd";
  if (n.find(".mh") != std::string::npos) return "metaimage";
  return "unknown";
}

// The common case, a gzip-compressed NIfTI-1 of int16 voxels without scaling, read in one
// piece: the file into memory, inflated by libdeflate (about three times zlib's speed; the
// gzip trailer's CRC and length are checked), the voxels copied behind ITK's own reading of
// the header, so the geometry is exactly what ITK's reader gives. Anything else (other voxel
// types, scaling, several gzip members, over 4 GiB, a repaired header) returns null and goes
// through ITK's reader.
namespace {
// A read-only mapping of a whole file (none when it cannot be mapped).
struct MappedFile {
  const uint8_t* data = nullptr;
  size_t size = 0;
  explicit MappedFile(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      void* m = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (m != MAP_FAILED) {
        data = static_cast<const uint8_t*>(m);
        size = static_cast<size_t>(st.st_size);
        ::madvise(m, size, MADV_SEQUENTIAL);
      }
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data) ::munmap(const_cast<uint8_t*>(data), size);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
};
}  // namespace

CtImage::Pointer readNiftiGzInt16(const fs::path& path, itk::ImageIOBase* io,
                                  const detail::NiftiFacts& facts) {
  // exactly three dimensions (a 4-D file, even with one volume, goes through ITK and its checks)
  if (path.extension() != ".gz" || io->GetNumberOfDimensions() != 3) return nullptr;
  if (std::string(io->GetFileName()) != path.string()) return nullptr;  // a repaired copy
  if (facts.datatype != 4 || facts.scaled || facts.total() > (uint64_t{1} << 32) - 1) return nullptr;
  const MappedFile packed(path);
  const size_t len = packed.size;
  if (!packed.data || len < 18 + 348) return nullptr;
  size_t nvox = 1;
  for (unsigned d = 0; d < io->GetNumberOfDimensions(); ++d) nvox *= io->GetDimensions(d);
  const size_t total = static_cast<size_t>(facts.total());
  if (total < 2 * nvox + 348) return nullptr;
  // One whole-volume buffer, written once: the image's own, with room in front of the voxels for
  // the header the gzip stream starts with; inflated into (the size the checked header
  // announces, never the gzip trailer's: a damaged file costs no more memory than a good one),
  // then the voxels moved down over the header, on pages already touched.
  auto img = CtImage::New();
  CtImage::RegionType region;
  CtImage::SpacingType sp;
  CtImage::PointType origin;
  CtImage::DirectionType dir;
  for (unsigned d = 0; d < 3; ++d) {
    region.SetSize(d, io->GetDimensions(d));
    sp[d] = io->GetSpacing(d);
    origin[d] = io->GetOrigin(d);
    const auto col = io->GetDirection(d);
    for (unsigned r = 0; r < 3; ++r) dir[r][d] = col[r];
  }
  img->SetRegions(region);
  img->SetSpacing(sp);
  img->SetOrigin(origin);
  img->SetDirection(dir);
  auto container = CtImage::PixelContainer::New();
  container->Reserve((total + 1) / 2, false);  // no zero fill: every byte is inflated into
  auto* buf = reinterpret_cast<uint8_t*>(container->GetBufferPointer());
  auto* dec = libdeflate_alloc_decompressor();
  if (!dec) return nullptr;
  size_t in_used = 0, out_used = 0;
  auto rc = libdeflate_gzip_decompress_ex(dec, packed.data, len, buf, total, &in_used, &out_used);
  libdeflate_free_decompressor(dec);
  const bool member_follows =
      in_used + 2 <= len && packed.data[in_used] == 0x1f && packed.data[in_used + 1] == 0x8b;
  if (rc == LIBDEFLATE_BAD_DATA)
    throw InputError("'" + path.string() +
                     "' is truncated or corrupt (its gzip data do not decompress, or their CRC-32 does not "
                     "match); copy it again");
  if (rc == LIBDEFLATE_SHORT_OUTPUT && !member_follows)
    throw InputError("'" + path.string() + "' is truncated: it decompresses to " + std::to_string(out_used) +
                     " bytes, its header announces " + std::to_string(total) + "; copy it again");
  if (rc != LIBDEFLATE_SUCCESS || out_used != total) return nullptr;  // longer, or several members
  if (in_used != len) {
    if (member_follows) return nullptr;  // several gzip members: zlib's path checks them all
    spdlog::warn("'{}': {} bytes after the end of its gzip data were ignored", path.string(), len - in_used);
  }
  // NIfTI-1 header fields, in the file's byte order
  int32_t hs;
  std::memcpy(&hs, buf, 4);
  const bool swap = hs != 348;
  if (swap && static_cast<int32_t>(__builtin_bswap32(static_cast<uint32_t>(hs))) != 348) return nullptr;
  auto i16 = [&](size_t off) {
    uint16_t u;
    std::memcpy(&u, buf + off, 2);
    return static_cast<int16_t>(swap ? __builtin_bswap16(u) : u);
  };
  auto f32 = [&](size_t off) {
    uint32_t u;
    std::memcpy(&u, buf + off, 4);
    if (swap) u = __builtin_bswap32(u);
    float v;
    std::memcpy(&v, &u, 4);
    return v;
  };
  const float slope = f32(112), inter = f32(116), vox_offset = f32(108);
  if (i16(70) != 4 || i16(72) != 16) return nullptr;  // DT_INT16
  if (!(slope == 0.f || slope == 1.f || std::isnan(slope)) || !(inter == 0.f || std::isnan(inter)))
    return nullptr;
  const auto off = static_cast<size_t>(vox_offset);
  if (vox_offset < 348 || off != vox_offset || off + 2 * nvox != total) return nullptr;
  std::memmove(buf, buf + off, 2 * nvox);
  container->Reserve(nvox, false);  // the voxels' size; the capacity stays (no reallocation)
  img->SetPixelContainer(container);
  int16_t* dst = img->GetBufferPointer();
  if (swap)
    for (size_t q = 0; q < nvox; ++q)
      dst[q] = static_cast<int16_t>(__builtin_bswap16(static_cast<uint16_t>(dst[q])));
  spdlog::debug("'{}': int16 NIfTI inflated in one piece ({}-endian) into the image buffer", path.string(),
                swap ? "big" : "little");
  return img;
}

Scan readScanFile(const fs::path& path) {
  Scan scan;
  scan.info.path = path;
  scan.info.format = formatOf(path);
  auto hash = std::async(std::launch::async, [path] { return sha256File(path); });
  detail::NiftiFacts nifti;
  auto io = probeFile(path, &nifti);
  auto ctype = io->GetComponentType();
  scan.info.disk_pixel_type = componentName(ctype);
  bool fast = false;  // read by readNiftiGzInt16 (its stream is checked complete)
  try {
    if (ctype == itk::IOComponentEnum::SHORT) {
      if (scan.info.format == "nifti" && !std::getenv("CTBMD_ITK_READ"))
        scan.image = readNiftiGzInt16(path, io, nifti);
      fast = scan.image;
      if (!fast) scan.image = readFileAs<CtImage>(path, io);
    } else {
      auto f = readFileAs<FloatImage>(path, io);
      scan.image = toHu(f, path, scan.info);
    }
  } catch (const itk::MemoryAllocationError&) {
    // the voxel buffer could not be allocated: a memory limit (--case-memory, the machine's),
    // not a damaged file; bad_alloc is what every caller reports as memory
    hash.wait();
    throw std::bad_alloc();
  } catch (const itk::ExceptionObject& e) {
    hash.wait();
    throw InputError("cannot read the voxel data of '" + path.string() +
                     "' (truncated or corrupt file?): " + e.GetDescription());
  }
  scan.info.sha256 = hash.get();
  if (scan.info.format == "nifti" && !fast) {
    // ITK 5.2 reads a truncated or corrupt .nii.gz without complaint (missing voxels come
    // back as zeros, a wrong CRC is not noticed) and hands NaN/Inf voxels on as 0: the whole
    // stream is checked here, every member's CRC-32 and length against the size the header
    // announces, and float voxels are counted for non-finite values in the file's own bytes.
    std::string why, note;
    const uint64_t nonfinite = detail::countNonFiniteNifti(path, nifti, why, note);
    if (!why.empty())
      throw InputError("'" + path.string() + "' is " + why + " (the header announces " +
                       std::to_string(nifti.total()) + " bytes); copy it again");
    if (nonfinite > 0)
      throw InputError("'" + path.string() + "' contains " + std::to_string(nonfinite) +
                       " NaN or infinite voxel values; it is not a valid CT image");
    if (!note.empty()) {
      spdlog::warn("'{}': {}", path.string(), note);
      scan.info.warnings.push_back("'" + path.string() + "': " + note);
    }
  }
  checkOrthogonal(scan.image.GetPointer(), path);
  if (scan.info.format == "nifti") checkNifti(path, scan.image.GetPointer(), scan.info);
  return scan;
}

// ---- DICOM -----------------------------------------------------------------------------------
std::string tag(const itk::MetaDataDictionary& d, const std::string& key) {
  std::string v;
  if (!itk::ExposeMetaData<std::string>(d, key, v)) return "";
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  return v;
}

std::vector<double> numbers(const std::string& s) {
  std::vector<double> out;
  std::string tok;
  std::istringstream in(s);
  while (std::getline(in, tok, '\\')) {
    try {
      out.push_back(std::stod(tok));
    } catch (...) {
      return {};
    }
  }
  return out;
}

// The part-10 files of a DICOM folder as GDCM's series scan sees them. GDCM reads every file
// in the folder, and a file without the part-10 preamble it tries as a bare data set, guessing
// its encoding: a 19-byte fuzzer input made that guess assert (SIGABRT). ctbmd reads part-10
// files only; when the folder holds other files (a README, thumbnails, an old ACR-NEMA slice),
// GDCM scans a private folder of links to the part-10 files instead, and the others are named
// in a warning. Removed when the scan is done.
class Part10View {
 public:
  Part10View(const fs::path& dir, std::vector<std::string>& warnings) : dir_(dir) {
    std::vector<fs::path> part10, other;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (std::error_code eq; !e.is_regular_file(eq)) continue;
      if (hasDicmPreamble(e.path())) {
        detail::checkDicomFile(e.path());  // GDCM asserts on a cut part-10 file: name it first
        part10.push_back(e.path());
        continue;
      }
      // A file that starts with a file-meta element (group 0002) but lacks the 128-byte preamble
      // and "DICM" is a damaged part-10 slice, not a stray file: refused, named.
      unsigned char head[2] = {0, 0};
      std::ifstream f(e.path(), std::ios::binary);
      f.read(reinterpret_cast<char*>(head), 2);
      if (f.gcount() == 2 && ((head[0] == 0x02 && head[1] == 0x00) || (head[0] == 0x00 && head[1] == 0x02)))
        throw InputError("DICOM slice '" + e.path().string() +
                         "' is truncated or damaged (its file meta header has no 128-byte preamble and "
                         "'DICM' prefix); copy the series again or remove that file");
      other.push_back(e.path());
    }
    if (other.empty()) return;
    std::sort(other.begin(), other.end());
    warnings.push_back(
        std::to_string(other.size()) + " file(s) in '" + dir.string() +
        "' are not DICOM part-10 files and were not read (e.g. '" + other.front().filename().string() +
        "'); convert old ACR-NEMA slices to part-10 (e.g. gdcmconv) if they belong to the series");
    spdlog::warn("{}", warnings.back());
    const std::string tmpl = (fs::temp_directory_path() / "ctbmd-dicom-XXXXXX").string();
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back(0);
    if (!mkdtemp(name.data()))
      throw InputError("cannot create a temporary folder in '" + fs::temp_directory_path().string() +
                       "' to read the DICOM series in '" + dir.string() +
                       "'; set TMPDIR to a writable place");
    view_ = name.data();
    for (const auto& f : part10) {
      fs::create_symlink(fs::absolute(f), view_ / f.filename(), ec);
      if (ec)
        throw InputError("cannot link '" + f.string() + "' into '" + view_.string() + "': " + ec.message() +
                         "; set TMPDIR to a writable place");
    }
  }
  ~Part10View() {
    std::error_code ec;
    if (!view_.empty()) fs::remove_all(view_, ec);
  }
  Part10View(const Part10View&) = delete;
  Part10View& operator=(const Part10View&) = delete;
  /// The folder GDCM scans.
  std::string scanned() const { return (view_.empty() ? dir_ : view_).string(); }
  /// A path GDCM returned, as the user's file.
  std::string original(const std::string& f) const {
    return view_.empty() ? f : (dir_ / fs::path(f).filename()).string();
  }

 private:
  fs::path dir_, view_;
};

Scan readDicomSeries(const fs::path& dir, const ReadOptions& opt) {
  std::vector<std::string> warnings;
  Part10View view(dir, warnings);
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(true);
  {
    detail::LibraryOutput quiet(dir.string());
    names->SetDirectory(view.scanned());
  }
  const auto& uids = names->GetSeriesUIDs();
  if (uids.empty()) throw InputError("folder '" + dir.string() + "' holds no readable DICOM image series");
  std::string chosen;
  size_t best = 0;
  if (!opt.series_uid.empty()) {
    for (const auto& u : uids)
      if (u.rfind(opt.series_uid, 0) == 0) chosen = u;
    if (chosen.empty()) {
      std::string list;
      for (const auto& u : uids) list += "\n  " + u;
      throw InputError("series '" + opt.series_uid + "' is not in '" + dir.string() + "'; it holds:" + list);
    }
  } else {
    // The CT series with the most slices (other modalities only when there is no CT).
    auto modalityOf = [](const std::string& file) {
      auto io = itk::GDCMImageIO::New();
      io->SetFileName(file);
      try {
        detail::LibraryOutput quiet(file);
        io->ReadImageInformation();
      } catch (const itk::ExceptionObject&) {
        return std::string();
      }
      std::string m;
      io->GetValueFromTag("0008|0060", m);
      while (!m.empty() && (m.back() == ' ' || m.back() == '\0')) m.pop_back();
      return m;
    };
    bool best_ct = false;
    for (const auto& u : uids) {
      size_t n = names->GetFileNames(u).size();
      bool ct = uids.size() == 1 || modalityOf(names->GetFileNames(u).front()) == "CT";
      if ((ct && !best_ct) || (ct == best_ct && n > best)) {
        best = n;
        best_ct = ct;
        chosen = u;
      }
    }
    if (uids.size() > 1) {
      for (const auto& u : uids)
        spdlog::info("{} series {} ({} files){}", dir.string(), u, names->GetFileNames(u).size(),
                     u == chosen ? " <- chosen (CT with most slices; --series UID picks another)" : "");
    }
  }
  std::vector<std::string> files = names->GetFileNames(chosen);
  for (auto& f : files) f = view.original(f);
  if (files.size() < 2)
    throw InputError("DICOM series in '" + dir.string() + "' has only " + std::to_string(files.size()) +
                     " slice; ctbmd needs a 3-D series");

  auto gdcm = itk::GDCMImageIO::New();
  using Reader = itk::ImageSeriesReader<FloatImage>;
  auto reader = Reader::New();
  reader->SetImageIO(gdcm);
  reader->SetFileNames(files);
  reader->SetMetaDataDictionaryArrayUpdate(true);
  try {
    detail::LibraryOutput quiet(dir.string());
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw InputError("cannot read the DICOM series in '" + dir.string() + "': " + e.GetDescription());
  }
  Scan scan;
  scan.info.path = dir;
  scan.info.format = "dicom";
  scan.info.warnings = warnings;
  scan.info.disk_pixel_type = componentName(gdcm->GetInternalComponentType());
  const auto& d0 = gdcm->GetMetaDataDictionary();
  scan.info.series_uid = chosen;
  scan.info.modality = tag(d0, "0008|0060");
  scan.info.manufacturer = tag(d0, "0008|0070");
  scan.info.model = tag(d0, "0008|1090");
  scan.info.kvp = tag(d0, "0018|0060");
  scan.info.kernel = tag(d0, "0018|1210");
  scan.info.study_date = tag(d0, "0008|0020");
  scan.info.series_instance_uid = tag(d0, "0020|000e");
  scan.info.study_instance_uid = tag(d0, "0020|000d");
  scan.info.slice_thickness = tag(d0, "0018|0050");
  scan.info.contrast_agent = tag(d0, "0018|0010");
  if (!scan.info.modality.empty() && scan.info.modality != "CT")
    throw InputError("DICOM series in '" + dir.string() + "' has modality '" + scan.info.modality +
                     "', not CT; ctbmd measures bone density on CT only");

  // Geometry: every slice must lie on one straight line along the slice normal, evenly
  // spaced. Gantry tilt (positions drift within the slice plane) and uneven spacing are
  // refused: reading them as a regular grid would put voxels in the wrong place.
  const auto& dicts = *reader->GetMetaDataDictionaryArray();
  std::vector<std::array<double, 3>> ipp;
  std::vector<double> iop;
  for (size_t i = 0; i < dicts.size(); ++i) {
    auto p = numbers(tag(*dicts[i], "0020|0032"));
    if (p.size() != 3) throw InputError("DICOM slice '" + files[i] + "' has no usable ImagePositionPatient");
    ipp.push_back({p[0], p[1], p[2]});
    if (i == 0)
      iop = numbers(tag(*dicts[i], "0020|0037"));
    else {
      auto o = numbers(tag(*dicts[i], "0020|0037"));
      for (size_t k = 0; k < o.size() && k < iop.size(); ++k)
        if (std::abs(o[k] - iop[k]) > 1e-4)
          throw InputError("DICOM series in '" + dir.string() +
                           "' changes its slice orientation between slices; ctbmd cannot use "
                           "it as one volume");
    }
  }
  if (iop.size() != 6)
    throw InputError("DICOM series in '" + dir.string() + "' has no ImageOrientationPatient");
  double nx = iop[1] * iop[5] - iop[2] * iop[4];
  double ny = iop[2] * iop[3] - iop[0] * iop[5];
  double nz = iop[0] * iop[4] - iop[1] * iop[3];
  std::vector<double> steps;
  double max_tilt_deg = 0;
  for (size_t i = 1; i < ipp.size(); ++i) {
    double dx = ipp[i][0] - ipp[i - 1][0], dy = ipp[i][1] - ipp[i - 1][1], dz = ipp[i][2] - ipp[i - 1][2];
    double along = dx * nx + dy * ny + dz * nz;
    double len = std::sqrt(dx * dx + dy * dy + dz * dz);
    double inplane = std::sqrt(std::max(0.0, len * len - along * along));
    if (len > 0) max_tilt_deg = std::max(max_tilt_deg, std::atan2(inplane, std::abs(along)) * 180 / M_PI);
    steps.push_back(along);
  }
  if (max_tilt_deg > 0.05)
    throw InputError("DICOM series in '" + dir.string() + "' is acquired with gantry tilt (slice " +
                     "positions are sheared by " + std::to_string(max_tilt_deg).substr(0, 5) +
                     " degrees against the slice normal). ctbmd refuses it rather than measure "
                     "on wrong geometry; reconstruct it without tilt or resample it onto an "
                     "orthogonal grid (e.g. dcm2niix, which corrects tilt) and pass the NIfTI.");
  auto [mn, mx] = std::minmax_element(steps.begin(), steps.end());
  if (*mn <= 0)
    throw InputError("DICOM series in '" + dir.string() +
                     "' has duplicate slice positions (two acquisitions mixed?); pass --series "
                     "or separate the files");
  if (*mx - *mn > 0.01 * std::max(1.0, std::abs(*mn)))
    throw InputError("DICOM series in '" + dir.string() + "' has uneven slice spacing (" +
                     std::to_string(*mn).substr(0, 6) + " to " + std::to_string(*mx).substr(0, 6) +
                     " mm) or missing slices; ctbmd refuses it rather than measure on a wrong "
                     "grid. Resample it to even spacing first.");

  // Hash of the slice files in series order.
  std::string cat;
  for (const auto& f : files) cat += sha256File(f);
  scan.info.sha256 = sha256Hex(cat);
  FloatImage::Pointer f = reader->GetOutput();
  f->DisconnectPipeline();
  // ITK takes spacing from the first two positions; make it the mean step exactly.
  auto sp = f->GetSpacing();
  sp[2] = (ipp.size() > 1) ? (std::accumulate(steps.begin(), steps.end(), 0.0) / steps.size()) : sp[2];
  f->SetSpacing(sp);
  scan.image = toHu(f, dir, scan.info);
  checkOrthogonal(scan.image.GetPointer(), dir);
  return scan;
}

template <typename TImage>
void writeImageT(const TImage* img, const fs::path& path, bool force) {
  std::string n = path.filename().string();
  if (n.size() > 4 && (n.substr(n.size() - 4) == ".mhd" || n.substr(n.size() - 5) == ".nhdr"))
    throw UsageError("output '" + path.string() +
                     "': detached-header formats (.mhd, .nhdr) cannot be written atomically; "
                     "use .mha, .nrrd, .nii or .nii.gz");
  if (!isImageFile(path) && n.find(".nii") == std::string::npos)
    throw UsageError("output '" + path.string() +
                     "' has no image extension ctbmd writes (.nii.gz, .nii, .nrrd, .mha)");
  const bool gz = n.size() > 7 && n.substr(n.size() - 7) == ".nii.gz";
  auto itkWrite = [&](const fs::path& file, bool compress) {
    auto w = itk::ImageFileWriter<TImage>::New();
    w->SetFileName(file.string());
    w->SetInput(img);
    w->SetUseCompression(compress);
    try {
      w->Update();
    } catch (const itk::ExceptionObject& e) {
      throw ProcessingError("cannot write '" + path.string() + "': " + e.GetDescription());
    }
  };
  atomicWrite(path, force, [&](const fs::path& tmp) {
    if (!gz) {
      itkWrite(tmp, n.substr(n.size() - 5) == ".nrrd" || n.substr(n.size() - 4) == ".mha");
      return;
    }
    // ITK 5.2's NIfTI writer ignores the compression level (always zlib's default, about 5x
    // slower than level 1 on noisy CT). Write plain NIfTI, then gzip it in parallel.
    fs::path plain = temporarySibling(path.parent_path() / (imageStem(path) + ".nii"));
    try {
      auto t0 = std::chrono::steady_clock::now();
      itkWrite(plain, false);
      auto t1 = std::chrono::steady_clock::now();
      // Label maps (long runs of one value) come out four times smaller, in the same time,
      // with run-length matching only.
      gzipFile(plain, tmp, 1,
               static_cast<int>(std::max(1u, itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads())),
               std::is_same_v<typename TImage::PixelType, uint8_t>);
      auto t2 = std::chrono::steady_clock::now();
      spdlog::debug("'{}': written in {:.3f} s (plain NIfTI {:.3f} s, gzip {:.3f} s)", path.string(),
                    std::chrono::duration<double>(t2 - t0).count(),
                    std::chrono::duration<double>(t1 - t0).count(),
                    std::chrono::duration<double>(t2 - t1).count());
    } catch (...) {
      std::error_code ec;
      fs::remove(plain, ec);
      throw;
    }
    fs::remove(plain);
  });
}

}  // namespace

Scan readScan(const fs::path& path, const ReadOptions& opt) {
  std::error_code ec;
  Scan s;
  if (fs::is_directory(path, ec)) {
    if (!isDicomDirectory(path))
      throw InputError("'" + path.string() +
                       "' is a folder without DICOM files; pass an image file or a DICOM series "
                       "folder");
    s = readDicomSeries(path, opt);
  } else {
    s = readScanFile(path);
  }
  s.info.orientation = orientationCode(s.image->GetDirection());
  return s;
}

FloatImage::Pointer readFloatImage(const fs::path& path) {
  auto io = probeFile(path);
  try {
    return readFileAs<FloatImage>(path, io);
  } catch (const itk::ExceptionObject& e) {
    throw InputError("cannot read '" + path.string() + "': " + e.GetDescription());
  }
}

Slice2D::Pointer readSlice2D(const fs::path& path) {
  if (!fs::is_regular_file(path)) throw InputError("2-D image '" + path.string() + "' does not exist");
  auto io = itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::IOFileModeEnum::ReadMode);
  if (!io) throw InputError("'" + path.string() + "' is not an image format ctbmd can read");
  io->SetFileName(path.string());
  {
    detail::LibraryOutput quiet(path.string());
    io->ReadImageInformation();
  }
  if (io->GetNumberOfDimensions() != 2)
    throw InputError("'" + path.string() + "' is not a 2-D image (it has " +
                     std::to_string(io->GetNumberOfDimensions()) + " dimensions)");
  try {
    return readFileAs<Slice2D>(path, io);
  } catch (const itk::ExceptionObject& e) {
    throw InputError("cannot read '" + path.string() + "': " + e.GetDescription());
  }
}

LabelImage::Pointer readLabels(const fs::path& path, const CtImage* reference) {
  auto io = probeFile(path);
  LabelImage::Pointer out;
  try {
    if (io->GetComponentType() == itk::IOComponentEnum::UCHAR) {
      out = readFileAs<LabelImage>(path, io);
    } else {
      auto f = readFileAs<FloatImage>(path, io);
      out = LabelImage::New();
      out->CopyInformation(f);
      out->SetRegions(f->GetLargestPossibleRegion());
      out->Allocate();
      const float* s = f->GetBufferPointer();
      uint8_t* d = out->GetBufferPointer();
      size_t n = f->GetLargestPossibleRegion().GetNumberOfPixels();
      for (size_t i = 0; i < n; ++i) {
        float v = s[i];
        if (!(v >= 0 && v <= 255) || v != std::floor(v))
          throw InputError("'" + path.string() + "' is not a label map: it holds the value " +
                           std::to_string(v) + " (labels must be integers 0..255)");
        d[i] = static_cast<uint8_t>(v);
      }
    }
  } catch (const itk::ExceptionObject& e) {
    throw InputError("cannot read label map '" + path.string() + "': " + e.GetDescription());
  }
  checkOrthogonal(out.GetPointer(), path);
  if (reference && !sameGrid(reference, out.GetPointer(), 1e-3))
    throw InputError("label map '" + path.string() +
                     "' is not on the grid of the CT (size, spacing, origin or direction "
                     "differ); was it made from another scan?");
  return out;
}

void writeImage(const CtImage* img, const fs::path& path, bool force) { writeImageT(img, path, force); }
void writeImage(const LabelImage* img, const fs::path& path, bool force) { writeImageT(img, path, force); }
void writeImage(const FloatImage* img, const fs::path& path, bool force) { writeImageT(img, path, force); }
void writeImage(const Slice2D* img, const fs::path& path, bool force) { writeImageT(img, path, force); }

}  // namespace ctbmd
