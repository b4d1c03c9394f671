#pragma once
// Exact axis permutation/flip between any storage order and the canonical LPS order
// (index i -> patient left, j -> posterior, k -> superior). No interpolation: voxel
// centres stay where they are, so results map back to the input grid exactly.
#include <itkImage.h>

#include <array>
#include <string>

#include "ctbmd/errors.hpp"

namespace ctbmd {

struct AxisMap {
  std::array<int, 3> perm{0, 1, 2};  // canonical axis a is original axis perm[a]
  std::array<bool, 3> flip{false, false, false};
  std::array<size_t, 3> orig_size{0, 0, 0};
  itk::ImageBase<3>::PointType orig_origin;
  itk::ImageBase<3>::SpacingType orig_spacing;
  itk::ImageBase<3>::DirectionType orig_direction;
};

/// Works out the permutation/flip that makes the direction closest to identity (LPS).
/// Throws InputError when two axes point the same way (e.g. 45 degree oblique).
AxisMap canonicalAxisMap(const itk::ImageBase<3>* img);

/// Geometry of a grid with the given direction code ("PIR"...) that holds the same voxels
/// as a canonical LPS image (used by the phantom to store any orientation).
AxisMap axisMapForCode(const itk::ImageBase<3>* canonical, const std::string& code);

namespace detail {
// Buffer steps of the original image along each canonical axis, and the buffer offset of
// canonical index (0, 0, 0).
inline long strides(const AxisMap& m, long step[3]) {
  const size_t* os = m.orig_size.data();
  const long stride_o[3] = {1, static_cast<long>(os[0]), static_cast<long>(os[0] * os[1])};
  long start = 0;
  for (int a = 0; a < 3; ++a) {
    long s = stride_o[m.perm[a]];
    step[a] = m.flip[a] ? -s : s;
    if (m.flip[a]) start += static_cast<long>(os[m.perm[a]] - 1) * s;
  }
  return start;
}

inline void origIndex(const AxisMap& m, const size_t c[3], size_t o[3]) {
  for (int a = 0; a < 3; ++a) {
    int oa = m.perm[a];
    o[oa] = m.flip[a] ? m.orig_size[oa] - 1 - c[a] : c[a];
  }
}
}  // namespace detail

/// True when canonical order is the storage order (LPS-stored images: DICOM axial series,
/// ITK's default): no voxel needs to move.
inline bool isIdentity(const AxisMap& m) {
  for (int a = 0; a < 3; ++a)
    if (m.perm[a] != a || m.flip[a]) return false;
  return true;
}

template <typename T>
typename itk::Image<T, 3>::Pointer toCanonical(const itk::Image<T, 3>* in, const AxisMap& m) {
  using Img = itk::Image<T, 3>;
  auto out = Img::New();
  typename Img::SizeType sz;
  typename Img::SpacingType sp;
  typename Img::DirectionType dir;
  for (int a = 0; a < 3; ++a) {
    sz[a] = m.orig_size[m.perm[a]];
    sp[a] = m.orig_spacing[m.perm[a]];
    for (int r = 0; r < 3; ++r) dir[r][a] = m.orig_direction[r][m.perm[a]] * (m.flip[a] ? -1.0 : 1.0);
  }
  // Origin: world position of canonical index (0,0,0).
  typename Img::IndexType oi;
  size_t c0[3] = {0, 0, 0}, o0[3];
  detail::origIndex(m, c0, o0);
  for (int a = 0; a < 3; ++a) oi[a] = static_cast<long>(o0[a]);
  typename Img::PointType origin;
  in->TransformIndexToPhysicalPoint(oi, origin);
  out->SetRegions(typename Img::RegionType(sz));
  out->SetSpacing(sp);
  out->SetDirection(dir);
  out->SetOrigin(origin);
  out->Allocate();
  const T* src = in->GetBufferPointer();
  T* dst = out->GetBufferPointer();
  long step[3];
  const long start = detail::strides(m, step);
  size_t idx = 0;
  for (size_t k = 0; k < sz[2]; ++k)
    for (size_t j = 0; j < sz[1]; ++j) {
      long base = start + static_cast<long>(k) * step[2] + static_cast<long>(j) * step[1];
      for (size_t i = 0; i < sz[0]; ++i) dst[idx++] = src[base + static_cast<long>(i) * step[0]];
    }
  return out;
}

namespace detail {
// An image (no voxels yet) on the original grid of the map.
template <typename T>
typename itk::Image<T, 3>::Pointer originalGrid(const AxisMap& m) {
  using Img = itk::Image<T, 3>;
  auto out = Img::New();
  typename Img::SizeType sz;
  for (int a = 0; a < 3; ++a) sz[a] = m.orig_size[a];
  out->SetRegions(typename Img::RegionType(sz));
  out->SetSpacing(m.orig_spacing);
  out->SetDirection(m.orig_direction);
  out->SetOrigin(m.orig_origin);
  return out;
}
}  // namespace detail

template <typename T>
typename itk::Image<T, 3>::Pointer fromCanonical(const itk::Image<T, 3>* canon, const AxisMap& m) {
  auto out = detail::originalGrid<T>(m);
  out->Allocate();
  const T* src = canon->GetBufferPointer();
  T* dst = out->GetBufferPointer();
  long step[3];
  const long start = detail::strides(m, step);
  auto csz = canon->GetLargestPossibleRegion().GetSize();
  size_t idx = 0;
  for (size_t k = 0; k < csz[2]; ++k)
    for (size_t j = 0; j < csz[1]; ++j) {
      long base = start + static_cast<long>(k) * step[2] + static_cast<long>(j) * step[1];
      for (size_t i = 0; i < csz[0]; ++i) dst[base + static_cast<long>(i) * step[0]] = src[idx++];
    }
  return out;
}

/// Read-only reorderings: when the map is the identity the result shares the input's voxels
/// (no copy); otherwise as toCanonical / fromCanonical. Never write through the result.
template <typename T>
typename itk::Image<T, 3>::Pointer toCanonicalView(const itk::Image<T, 3>* in, const AxisMap& m) {
  if (!isIdentity(m)) return toCanonical<T>(in, m);
  using Img = itk::Image<T, 3>;
  auto out = Img::New();
  out->CopyInformation(in);
  out->SetRegions(in->GetLargestPossibleRegion());
  out->SetPixelContainer(const_cast<typename Img::PixelContainer*>(in->GetPixelContainer()));
  return out;
}
template <typename T>
typename itk::Image<T, 3>::Pointer fromCanonicalView(const itk::Image<T, 3>* canon, const AxisMap& m) {
  if (!isIdentity(m)) return fromCanonical<T>(canon, m);
  using Img = itk::Image<T, 3>;
  auto out = detail::originalGrid<T>(m);
  out->SetPixelContainer(const_cast<typename Img::PixelContainer*>(canon->GetPixelContainer()));
  return out;
}

/// The scan's CT in canonical order with its axis map, computed on first use and kept with
/// the scan, so chained stages (ctbmd-run) reorder the voxels once.
struct CanonicalCache {
  const itk::Image<int16_t, 3>* source = nullptr;
  AxisMap map;
  itk::Image<int16_t, 3>::Pointer image;
};
const CanonicalCache& canonicalOf(const struct Scan& scan);

}  // namespace ctbmd
