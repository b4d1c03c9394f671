#pragma once
// Shared by the classical and the learned segmenters (segment.cpp, segment_learned.cpp).
#include <array>

#include "ctbmd/canonical.hpp"
#include "ctbmd/stages.hpp"
#include "internal/spine.hpp"

namespace ctbmd {
/// Learned vertebral-body segmentation (unet2d / dense-unet3d through the LibTorch plugin).
SegmentResult segmentLearned(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p);

/// A level's entry before segmentation: label, name, status, and the metal flag from localize.
LevelSegmentation levelEntry(const LevelLocation& l, const LocalizeResult& loc);
/// Physical (LPS) point -> canonical frame (spine::Volume coordinates, mm).
std::array<double, 3> toCanonicalFrame(const CtImage* canonical, const spine::Volume& v,
                                       const std::array<double, 3>& physical);
/// Physical point of canonical voxel (i, j, k).
std::array<double, 3> voxelPoint(const CtImage* canonical, const spine::Volume& v, int i, int j, int k);
/// Whether a physical point lies between the level's two disc planes.
bool inLevelSlab(const LevelLocation& l, const std::array<double, 3>& p);
/// Maps the canonical label map back to the input grid, measures the bodies and flags
/// possible fractures (with warnings).
void finishSegmentation(SegmentResult& res, const LabelImage* canonical_labels, const AxisMap& am,
                        double fracture_ratio);
}  // namespace ctbmd
