#pragma once
// Learned vertebral-body segmentation (unet2d / dense-unet3d through the LibTorch plugin).
#include "ctbmd/stages.hpp"

namespace ctbmd {
SegmentResult segmentLearned(const Scan& scan, const LocalizeResult& loc, const SegmentParams& p);
}
