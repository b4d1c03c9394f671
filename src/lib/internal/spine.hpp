#pragma once
// Weight-free spine analysis on a canonical (LPS-ordered) CT volume, shared by localize
// and segment: the per-slice vertebral-body finder.
#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "ctbmd/image.hpp"
#include "internal/raster2d.hpp"

namespace ctbmd::spine {

struct Volume {
  const int16_t* hu = nullptr;
  int nx = 0, ny = 0, nz = 0;
  double sx = 1, sy = 1, sz = 1;
  double ox = 0, oy = 0, oz = 0;  // physical position of index 0 (canonical frame)
  double x(double i) const { return ox + i * sx; }
  double y(double j) const { return oy + j * sy; }
  double z(double k) const { return oz + k * sz; }
  int16_t at(int i, int j, int k) const { return hu[(static_cast<size_t>(k) * ny + j) * nx + i]; }
};

Volume view(const CtImage* canonical);

/// The volume with in-plane pixels averaged in blocks of f x f (f = floor(target_mm / pixel),
/// per axis, at least 1), kept in `storage`; slices and the physical frame are unchanged
/// (a block's value sits at its centre). Returns `v` itself when no axis is binned.
Volume binInPlane(const Volume& v, double target_mm, std::vector<int16_t>& storage);

/// A trace whose inscribed disk is smaller than this (a lumbar body's is 13-20 mm) may have
/// missed a faint body for a piece of the arch: analyseSlice retries with a lower threshold.
inline constexpr double kRetryBelowMm = 11.0;
/// An inscribed disk wider than this (a lumbar body's is 13-20 mm) is a body merged with the
/// canal behind it.
inline constexpr double kMergedAboveMm = 21.0;

/// Filled bone wider than this (mm) along the row through a body's centre is the sacrum
/// with its alae (SliceBody::row_width); no lumbar body is.
inline constexpr double kSacralRowMm = 80.0;
/// ... and reaching this far (mm) on each side of the body centre: both alae, not a body
/// touching one iliac wing or a femoral head (a lumbar body's half-width is 20-25 mm).
inline constexpr double kAlaReachMm = 32.0;

struct SliceBody {
  bool valid = false;
  double r_max = 0;                                  // radius (mm) of the largest disk inside the body
  double cx = 0, cy = 0;                             // body centre (physical, canonical frame)
  double half_width = 0;                             // half of the body's left-right extent (mm)
  double area = 0;                                   // body area, mm^2
  double row_width = 0;                              // filled bone along the row through the body centre (mm)
  double row_left_mm = 0, row_right_mm = 0;          // of it, towards the patient's left and right
  bool row_cut_left = false, row_cut_right = false;  // that side's run reached the image edge
  bool radial = false;  // outlined by the radial trace (radialSlice), not the ring finder
  // body mask in window coordinates (when requested)
  int wx0 = 0, wy0 = 0, wnx = 0, wny = 0;
  std::vector<uint8_t> mask;
};

struct SliceParams {
  double bone_hu = 200;                           // cortical bone threshold after light smoothing
  double low_bone_hu = 140;                       // retry threshold for thin osteoporotic cortex
  double close_mm = 2.0;                          // closing of ring gaps (at least 1.5 pixels)
  double ring_bridge_mm = 0;                      // > 0: also bridge gaps in a thin ring (retry)
  bool reshape_bridged = false;                   // open bridged rings hard (canal may be inside)
  double trabecular_hu = 100;                     // dense trabecular bone after heavier smoothing
  double half_x = 55, y_front = 60, y_back = 45;  // window around the centre (mm)
  double open_mm = 4.5;                           // removes pedicles, laminae, processes
  double min_hole_mm2 = 500;                      // smaller enclosed holes (the canal) are not marrow
  double min_radius_mm = 7;                       // smaller inscribed disks are not a vertebral body
  double max_lateral_mm = 35;  // body centre at most this far left/right of the expected centre
  double noise_hu = 0;         // pixel noise of the scan (noiseLevel); > 25 HU adds smoothing
  int z_half = 0;              // > 0: each slice is the mean of slices k - z_half .. k + z_half
};

/// Slice k over the window of g at pixel (i0, j0), averaged over slices k +- p.z_half and
/// smoothed with binomial passes to at least sigma_mm, more on noisy scans (p.noise_hu):
/// enough to bring the pixel noise to ~25 HU. `passes_out` gets the number of passes.
std::vector<float> smoothedSlice(const Volume& v, int k, int i0, int j0, const r2::Grid2& g,
                                 const SliceParams& p, double sigma_mm, int* passes_out);

/// Pixel noise (HU, standard deviation) of the scan: the robust spread of each pixel's
/// difference from its in-plane 3x3 mean in soft tissue, over a sample of slices.
double noiseLevel(const Volume& v);

/// Finds the vertebral body in slice k near (cx, cy). With `want_mask`, fills `mask`.
SliceBody analyseSlice(const Volume& v, int k, double cx, double cy, const SliceParams& p, bool want_mask);

/// The body in slice k of a very noisy scan, where the cortex does not survive as a ring: the
/// best closed outline on rays from seeds around each of `centres` (dynamic programming on
/// the outward intensity drop; long dark runs, the canal or fat, end a ray), the trace most
/// seeds agree on. analyseSlice falls back on it when p.noise_hu > 50 HU.
SliceBody radialSlice(const Volume& v, int k, const std::vector<std::array<double, 2>>& centres,
                      const SliceParams& p, bool want_mask);

struct TrackPoint {
  double x = 0, y = 0;
  double strength = 0;
};

/// Rough path of the spinal column: per slice, the centre of the densest compact bone near
/// the body's midline, tracked for continuity from the strongest slab up and down.
std::vector<TrackPoint> trackSpine(const Volume& v);

}  // namespace ctbmd::spine

namespace ctbmd::spine {

/// Threshold for dense trabecular bone on this scan: 100 HU, raised above the brightest
/// soft tissue (the 90th percentile of -50..250 HU, less what pixel noise `noise_hu` adds to
/// it) by 15 HU, so contrast-enhanced organs and vessels are not taken for bone. Set into
/// SliceParams::trabecular_hu.
double trabecularThreshold(const Volume& v, double noise_hu = 0);

/// Slice parameters for this volume: its noise, dense-bone threshold and column averaging.
SliceParams sliceParamsFor(const Volume& v);

/// Slices to average on each side (SliceParams::z_half) for a scan of this pixel noise and
/// slice thickness: 0 up to 50 HU; never more than 5 mm of column in all.
int columnAveraging(double noise_hu, double slice_mm);

struct CurvePoint {
  double x, y, z;     // canonical physical mm
  double tx, ty, tz;  // unit tangent (pointing superior)
  double s;           // arclength from the lowest point, mm
  bool supported;     // a body was found within 10 mm of this point
};

/// Marks invalid the slices whose "body" is a stray: a small structure (inscribed radius below
/// 0.7x the median of the valid slices within 25 mm) more than 12 mm from their median centre.
/// At a disc the slice finder may take a contrast-filled vessel or a piece of the arch for
/// the body; a run of such slices would pull the centreline off the column. Returns the count.
int dropStraySlices(const Volume& v, std::vector<SliceBody>& sb);

/// Smooth spine centreline through the per-slice body centres, resampled every 1 mm of
/// arclength from the lowest to the highest slice.
std::vector<CurvePoint> centreline(const Volume& v, const std::vector<SliceBody>& sb);

/// Mean HU in a 7 mm disk perpendicular to the centreline at each curve point (the
/// vertebral core seen in oblique planes, so tilted discs stay sharp).
std::vector<double> coreProfile(const Volume& v, const std::vector<CurvePoint>& c);

/// Disc positions (indices into the curve): the narrow troughs of the core profile between
/// endplate peaks (marrow troughs are wide), completed by the spacing they imply.
/// `width_out` gets each trough's peak-to-peak width at its position (diagnostics).
/// `flanks` gets, per disc, the curve indices of the endplate peaks below and above it.
std::vector<int> findDiscs(const std::vector<double>& profile, const std::vector<CurvePoint>& c,
                           std::vector<double>* width_out = nullptr,
                           std::vector<std::pair<int, int>>* flanks = nullptr);

struct RibComponent {
  int side = 0;              // +1 patient left, -1 right
  double medial_z = 0;       // z of its medial end (mm)
  double medial_dist = 0;    // lateral distance of the medial end from the spine (mm)
  double lateral_reach = 0;  // farthest lateral distance (mm)
  double z_extent = 0, volume_cm3 = 0;
};

/// Rib-like bones: 3-D components of bone outside the vertebral column that start next to
/// the spine and reach far out laterally along the body wall.
std::vector<RibComponent> findRibs(const Volume& v, const std::vector<CurvePoint>& c);

}  // namespace ctbmd::spine
