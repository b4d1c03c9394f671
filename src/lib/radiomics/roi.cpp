// Cropping a ROI patch out of a scan and its label map, in canonical order, on the image's
// grid or interpolated to a set voxel size (IBSI 1 section 2.3).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "ctbmd/canonical.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/radiomics.hpp"

namespace ctbmd::radiomics {

const char* toString(Interpolation i) {
  switch (i) {
    case Interpolation::trilinear:
      return "trilinear";
    case Interpolation::bspline:
      return "bspline";
    case Interpolation::nearest:
      return "nearest";
  }
  return "?";
}

Interpolation interpolationFromString(const std::string& s) {
  if (s == "trilinear" || s == "linear") return Interpolation::trilinear;
  if (s == "bspline" || s == "cubic" || s == "tricubic") return Interpolation::bspline;
  if (s == "nearest") return Interpolation::nearest;
  throw std::invalid_argument("unknown interpolation '" + s + "' (expected trilinear, bspline or nearest)");
}

namespace {

// A block of the canonical image as doubles: [lo, lo + n) of the whole image per axis.
struct Block {
  std::array<int, 3> lo{0, 0, 0}, n{0, 0, 0};
  std::vector<double> v;
  double& at(int x, int y, int z) {
    return v[(std::size_t(z) * n[1] + std::size_t(y)) * n[0] + std::size_t(x)];
  }
  double at(int x, int y, int z) const {
    return v[(std::size_t(z) * n[1] + std::size_t(y)) * n[0] + std::size_t(x)];
  }
};

// Cubic B-spline interpolation coefficients along one line (Unser's recursive prefilter, pole
// sqrt(3) - 2, whole-sample mirror boundaries).
void prefilterLine(double* c, int n, std::ptrdiff_t step) {
  if (n < 2) return;
  const double z = std::sqrt(3.0) - 2.0;
  const double lambda = (1 - z) * (1 - 1 / z);
  for (int k = 0; k < n; ++k) c[k * step] *= lambda;
  // causal initialisation: the mirror-extended sum, truncated where z^k < 1e-12
  const int horizon = std::min(n, int(std::ceil(std::log(1e-12) / std::log(std::fabs(z)))));
  double sum = c[0], zk = z;
  if (horizon < n) {
    for (int k = 1; k < horizon; ++k, zk *= z) sum += zk * c[k * step];
  } else {
    const double zn = std::pow(z, n - 1);
    double z2n = zn * zn / z;  // z^(2n-3)
    sum = c[0] + zn * c[(n - 1) * step];
    for (int k = 1; k < n - 1; ++k) {
      sum += (zk + z2n) * c[k * step];
      zk *= z;
      z2n /= z;
    }
    sum /= (1 - zn * zn);
  }
  c[0] = sum;
  for (int k = 1; k < n; ++k) c[k * step] += z * c[(k - 1) * step];
  c[(n - 1) * step] = (z / (z * z - 1)) * (c[(n - 1) * step] + z * c[(n - 2) * step]);
  for (int k = n - 2; k >= 0; --k) c[k * step] = z * (c[(k + 1) * step] - c[k * step]);
}

void prefilter(Block& b) {
  const std::ptrdiff_t sx = 1, sy = b.n[0], sz = std::ptrdiff_t(b.n[0]) * b.n[1];
  for (int z = 0; z < b.n[2]; ++z)
    for (int y = 0; y < b.n[1]; ++y) prefilterLine(&b.at(0, y, z), b.n[0], sx);
  for (int z = 0; z < b.n[2]; ++z)
    for (int x = 0; x < b.n[0]; ++x) prefilterLine(&b.at(x, 0, z), b.n[1], sy);
  for (int y = 0; y < b.n[1]; ++y)
    for (int x = 0; x < b.n[0]; ++x) prefilterLine(&b.at(x, y, 0), b.n[2], sz);
}

int mirror(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

// Value at continuous index p of the block (already clamped into the whole image's range).
double sample(const Block& b, const std::array<double, 3>& p, Interpolation how) {
  if (how == Interpolation::nearest) {
    int i[3];
    for (int a = 0; a < 3; ++a) i[a] = std::clamp(int(std::lround(p[a])), 0, b.n[a] - 1);
    return b.at(i[0], i[1], i[2]);
  }
  const bool cubic = how == Interpolation::bspline;
  int base[3];
  double w[3][4];
  for (int a = 0; a < 3; ++a) {
    const double f = std::floor(p[a]);
    const double t = p[a] - f;
    base[a] = int(f) - (cubic ? 1 : 0);
    if (cubic) {
      w[a][0] = (1 - t) * (1 - t) * (1 - t) / 6;
      w[a][1] = (3 * t * t * t - 6 * t * t + 4) / 6;
      w[a][2] = (-3 * t * t * t + 3 * t * t + 3 * t + 1) / 6;
      w[a][3] = t * t * t / 6;
    } else {
      w[a][0] = 1 - t;
      w[a][1] = t;
    }
  }
  const int taps = cubic ? 4 : 2;
  double v = 0;
  for (int k = 0; k < taps; ++k) {
    const int z = cubic ? mirror(base[2] + k, b.n[2]) : std::min(base[2] + k, b.n[2] - 1);
    for (int j = 0; j < taps; ++j) {
      const int y = cubic ? mirror(base[1] + j, b.n[1]) : std::min(base[1] + j, b.n[1] - 1);
      double row = 0;
      for (int i = 0; i < taps; ++i) {
        const int x = cubic ? mirror(base[0] + i, b.n[0]) : std::min(base[0] + i, b.n[0] - 1);
        row += w[0][i] * b.at(x, y, z);
      }
      v += w[2][k] * w[1][j] * row;
    }
  }
  return v;
}

template <class T>
RoiImage crop(const itk::Image<T, 3>* image, const LabelImage* labels, const std::vector<int>& values,
              const Resampling& rs, double margin_mm) {
  if (image->GetLargestPossibleRegion().GetSize() != labels->GetLargestPossibleRegion().GetSize())
    throw InputError(
        "the label map's grid differs from the image's: radiomics needs the ROI on the image's grid");
  const auto img_c = toCanonicalView<T>(image, canonicalAxisMap(image));
  const auto lab_c = toCanonicalView<uint8_t>(labels, canonicalAxisMap(labels));
  const auto size = img_c->GetLargestPossibleRegion().GetSize();
  const int n[3] = {int(size[0]), int(size[1]), int(size[2])};
  const uint8_t* lab = lab_c->GetBufferPointer();
  const T* pix = img_c->GetBufferPointer();
  auto idx = [&](int x, int y, int z) {
    return (std::size_t(z) * n[1] + std::size_t(y)) * n[0] + std::size_t(x);
  };
  auto wanted = [&](uint8_t v) {
    if (v == 0) return false;
    return values.empty() || std::find(values.begin(), values.end(), int(v)) != values.end();
  };
  int lo[3] = {n[0], n[1], n[2]}, hi[3] = {-1, -1, -1};
  for (int z = 0; z < n[2]; ++z)
    for (int y = 0; y < n[1]; ++y)
      for (int x = 0; x < n[0]; ++x)
        if (wanted(lab[idx(x, y, z)])) {
          const int c[3] = {x, y, z};
          for (int a = 0; a < 3; ++a) {
            lo[a] = std::min(lo[a], c[a]);
            hi[a] = std::max(hi[a], c[a]);
          }
        }
  if (hi[0] < 0) throw InputError("no voxel of the label map carries the requested label(s)");
  const auto sp = img_c->GetSpacing();
  const auto dir = img_c->GetDirection();
  const auto org = img_c->GetOrigin();
  // The new grid in the original's continuous index: p = offset + k * step (IBSI 2.3).
  double step[3], offset[3];
  int nn[3];
  for (int a = 0; a < 3; ++a) {
    const double s_new = rs.voxel_mm[std::size_t(a)] > 0 ? rs.voxel_mm[std::size_t(a)] : sp[unsigned(a)];
    step[a] = s_new / sp[unsigned(a)];
    nn[a] = rs.voxel_mm[std::size_t(a)] > 0 ? int(std::ceil(n[a] / step[a] - 1e-9)) : n[a];
    offset[a] = rs.voxel_mm[std::size_t(a)] > 0 ? (n[a] - 1) / 2.0 - step[a] * (nn[a] - 1) / 2.0 : 0.0;
  }
  // New-grid index range covering the ROI's box plus the margin (and the mask's
  // interpolation support).
  int klo[3], khi[3];
  for (int a = 0; a < 3; ++a) {
    const double m = margin_mm / sp[unsigned(a)] + 1.0;
    klo[a] = std::max(0, int(std::floor((lo[a] - m - offset[a]) / step[a])));
    khi[a] = std::min(nn[a] - 1, int(std::ceil((hi[a] + m - offset[a]) / step[a])));
  }
  RoiImage roi;
  roi.grid.nx = khi[0] - klo[0] + 1;
  roi.grid.ny = khi[1] - klo[1] + 1;
  roi.grid.nz = khi[2] - klo[2] + 1;
  for (int a = 0; a < 3; ++a) roi.grid.spacing[std::size_t(a)] = step[a] * sp[unsigned(a)];
  for (int r = 0; r < 3; ++r) {
    double w = org[unsigned(r)];
    for (int c = 0; c < 3; ++c) {
      w += dir[unsigned(r)][unsigned(c)] * sp[unsigned(c)] * (offset[c] + klo[c] * step[c]);
      roi.direction[std::size_t(r * 3 + c)] = dir[unsigned(r)][unsigned(c)];
    }
    roi.origin[std::size_t(r)] = w;
  }
  roi.intensity.resize(roi.grid.size());
  roi.morph_mask.resize(roi.grid.size());
  if (!rs.active()) {
    for (int z = 0; z < roi.grid.nz; ++z)
      for (int y = 0; y < roi.grid.ny; ++y)
        for (int x = 0; x < roi.grid.nx; ++x) {
          const std::size_t src = idx(x + klo[0], y + klo[1], z + klo[2]);
          const std::size_t dst = roi.grid.index(x, y, z);
          roi.intensity[dst] = double(pix[src]);
          roi.morph_mask[dst] = wanted(lab[src]) ? 1 : 0;
        }
    roi.int_mask = roi.morph_mask;
    return roi;
  }
  // The source block the new voxels read from (B-spline: a wider one so that its prefilter's
  // edge effects, which decay as 0.268^k, stay below 1e-8 of the signal inside the patch).
  const int pad = rs.image == Interpolation::bspline ? 16 : 2;
  Block img_b, mask_b;
  for (int a = 0; a < 3; ++a) {
    const double p0 = offset[a] + klo[a] * step[a], p1 = offset[a] + khi[a] * step[a];
    img_b.lo[std::size_t(a)] = std::max(0, int(std::floor(p0)) - pad);
    img_b.n[std::size_t(a)] = std::min(n[a] - 1, int(std::ceil(p1)) + pad) - img_b.lo[std::size_t(a)] + 1;
  }
  mask_b.lo = img_b.lo;
  mask_b.n = img_b.n;
  img_b.v.resize(std::size_t(img_b.n[0]) * img_b.n[1] * img_b.n[2]);
  mask_b.v.resize(img_b.v.size());
  for (int z = 0; z < img_b.n[2]; ++z)
    for (int y = 0; y < img_b.n[1]; ++y)
      for (int x = 0; x < img_b.n[0]; ++x) {
        const std::size_t src = idx(x + img_b.lo[0], y + img_b.lo[1], z + img_b.lo[2]);
        img_b.at(x, y, z) = double(pix[src]);
        mask_b.at(x, y, z) = wanted(lab[src]) ? 1.0 : 0.0;
      }
  if (rs.image == Interpolation::bspline) prefilter(img_b);
  for (int z = 0; z < roi.grid.nz; ++z)
    for (int y = 0; y < roi.grid.ny; ++y)
      for (int x = 0; x < roi.grid.nx; ++x) {
        const int k[3] = {x + klo[0], y + klo[1], z + klo[2]};
        std::array<double, 3> p;
        for (int a = 0; a < 3; ++a)
          p[std::size_t(a)] =
              std::clamp(offset[a] + k[a] * step[a], 0.0, double(n[a] - 1)) - img_b.lo[std::size_t(a)];
        double v = sample(img_b, p, rs.image);
        if (rs.round_intensities) v = std::round(v);
        const std::size_t dst = roi.grid.index(x, y, z);
        roi.intensity[dst] = v;
        roi.morph_mask[dst] =
            sample(mask_b, p, Interpolation::trilinear) >= rs.mask_threshold - 1e-12 ? 1 : 0;
      }
  roi.int_mask = roi.morph_mask;
  return roi;
}
}  // namespace

RoiImage cropRoi(const CtImage* image, const LabelImage* labels, const std::vector<int>& values,
                 const Resampling& r, double margin_mm) {
  return crop<int16_t>(image, labels, values, r, margin_mm);
}
RoiImage cropRoi(const FloatImage* image, const LabelImage* labels, const std::vector<int>& values,
                 const Resampling& r, double margin_mm) {
  return crop<float>(image, labels, values, r, margin_mm);
}

void writeRoiImages(const RoiImage& roi, const std::filesystem::path& image_path,
                    const std::filesystem::path& mask_path, bool force) {
  auto img = FloatImage::New();
  auto lab = LabelImage::New();
  FloatImage::RegionType region;
  region.SetSize({std::size_t(roi.grid.nx), std::size_t(roi.grid.ny), std::size_t(roi.grid.nz)});
  FloatImage::SpacingType sp;
  FloatImage::PointType org;
  FloatImage::DirectionType dir;
  for (unsigned a = 0; a < 3; ++a) {
    sp[a] = roi.grid.spacing[a];
    org[a] = roi.origin[a];
    for (unsigned c = 0; c < 3; ++c) dir[a][c] = roi.direction[a * 3 + c];
  }
  for (auto* base : {static_cast<itk::ImageBase<3>*>(img.GetPointer()),
                     static_cast<itk::ImageBase<3>*>(lab.GetPointer())}) {
    base->SetRegions(region);
    base->SetSpacing(sp);
    base->SetOrigin(org);
    base->SetDirection(dir);
  }
  img->Allocate();
  lab->Allocate();
  float* iv = img->GetBufferPointer();
  uint8_t* lv = lab->GetBufferPointer();
  for (std::size_t k = 0; k < roi.grid.size(); ++k) {
    iv[k] = float(roi.intensity[k]);
    lv[k] = roi.morph_mask[k] ? (roi.int_mask[k] ? 2 : 1) : 0;
  }
  writeImage(img.GetPointer(), image_path, force);
  writeImage(lab.GetPointer(), mask_path, force);
}

}  // namespace ctbmd::radiomics

namespace ctbmd::radiomics {

Volume toVolume(const FloatImage* image) {
  const auto c = toCanonicalView<float>(image, canonicalAxisMap(image));
  const auto size = c->GetLargestPossibleRegion().GetSize();
  Volume v;
  v.grid.nx = int(size[0]);
  v.grid.ny = int(size[1]);
  v.grid.nz = int(size[2]);
  for (unsigned a = 0; a < 3; ++a) v.grid.spacing[a] = c->GetSpacing()[a];
  v.v.assign(c->GetBufferPointer(), c->GetBufferPointer() + v.grid.size());
  return v;
}

FloatImage::Pointer fromVolume(const Volume& v, const FloatImage* grid_of) {
  const AxisMap m = canonicalAxisMap(grid_of);
  const auto c = toCanonical<float>(grid_of, m);  // the canonical grid, to fill
  float* p = c->GetBufferPointer();
  if (c->GetLargestPossibleRegion().GetNumberOfPixels() != v.v.size())
    throw std::logic_error("fromVolume: sizes differ");
  for (std::size_t k = 0; k < v.v.size(); ++k) p[k] = float(v.v[k]);
  return fromCanonical<float>(c.GetPointer(), m);
}

}  // namespace ctbmd::radiomics
