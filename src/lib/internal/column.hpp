#pragma once
// The anatomy gate: is the chain of bone segments the localizer followed a vertebral column?
// A vertebral body lies in front of a spinal canal that its neural arch (pedicles, laminae)
// closes into a ring, near the body's left-right midline. A long bone (femur, humerus) is a
// tube with its marrow canal inside, off the midline, with muscle behind it; the pelvis and
// the limbs have no canal behind their bone. The measurements here are per segment; the
// verdict is a pure function of them (judgeColumn), so it can be tested table-driven.
#include <optional>
#include <string>
#include <vector>

#include "ctbmd/stages.hpp"
#include "internal/spine.hpp"

namespace ctbmd::spine {

// The evidence and verdict types are part of the stage contract (ctbmd/stages.hpp).
using ctbmd::ColumnVerdict;
using ctbmd::SegmentEvidence;

/// Parameters of the canal and midline checks, each with its unit and reason.
struct ColumnParams {
  // Canal: a soft-tissue hole (CSF, cord, epidural fat) behind the body, closed by bone.
  double canal_min_hu = -150;        // HU: epidural fat is about -100; air or lung is not a canal
  double canal_max_hu = 150;         // HU: CSF and cord 0-40, noise and partial volume on top; not bone
  double arch_bone_hu = 180;         // HU: laminae and pedicles are cortical bone (> 300 HU in most
                                     // adults); 180 also holds thin osteoporotic arches after binning
  double search_back_mm = 35;        // mm behind the body's posterior edge: canal AP depth is 12-20 mm
  double ray_reach_mm = 20;          // mm: a lumbar canal is at most ~25 mm wide (radius 12.5)
  double min_enclosure = 0.8;        // fraction of 16 rays meeting bone: a ring, open at most at a
                                     // foramen; muscle behind a long bone closes none of them
  double wall_min_hu = 140;          // HU: the body's posterior cortex between body and canal,
                                     // partial-volumed to 140-300 at 1.6 mm even when osteoporotic
  double wall_above_hole_hu = 120;   // HU: that wall against the hole's content (CSF 0-40)
  double min_canal_radius_mm = 4;    // mm: smaller holes are vessels or marrow spaces
  double max_canal_radius_mm = 15;   // mm: larger holes are a pelvic inlet or obturator foramen
  double min_reach_of_radius = 0.4;  // shortest ray against the median: a lumbar canal is
                                     // ~15 x 22 mm (0.7 seen from its centre); marrow is not
  double min_posterior_bone_mm = 6;  // mm of bone straight behind the canal within 40 mm: the
                                     // laminae's junction alone is 5-10 mm thick in the lumbar
                                     // spine, with the spinous process 20-35 mm; thoracic
                                     // processes slope down, so some slices show the lamina only
  double canal_drift_mm = 6;         // mm: the canal's centre moves less than this within one vertebra
  // Midline: where the body outline is whole on the row through the column.
  double max_midline_offset = 0.3;  // of the body's half-width: the spine sits within ~0.1
                                    // (scoliosis to ~0.25); a femur lies at ~0.5
  double skin_hu = -300;            // HU: skin and fat above, air below
};

/// Canal evidence behind a body at (cx, cy) of inscribed radius body_r_mm in slice k.
struct CanalProbe {
  double enclosure = 0, radius_mm = 0, depth_mm = 0;
  double x = 0, y = 0;           // the canal centre (canonical mm)
  double min_reach_mm = 0;       // the shortest ray to bone
  double posterior_bone_mm = 0;  // bone straight behind it over 40 mm (laminae, spinous process)
};
CanalProbe probeCanal(const Volume& v, int k, double cx, double cy, double body_r_mm, const ColumnParams& p);

/// |cx - centre of the body outline| / its half-width on the row through cy in slice k, or
/// none when the outline reaches the image edge on that row (the field of view cuts the body).
std::optional<double> midlineOffset(const Volume& v, int k, double cx, double cy, const ColumnParams& p);

/// A column is seen when at least half of the non-sacral segments (and at least one) show a
/// canal behind them, and the segments whose midline is known are not mostly off it.
ColumnVerdict judgeColumn(const std::vector<SegmentEvidence>& segs, const ColumnParams& p = {});

}  // namespace ctbmd::spine
