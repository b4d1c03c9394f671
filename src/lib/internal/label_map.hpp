#pragma once
// An empty (all-zero) label map on another image's grid: the start of every segmentation and
// ROI map the stages write.
#include <itkImageBase.h>

#include "ctbmd/image.hpp"

namespace ctbmd {

inline LabelImage::Pointer emptyLabelsLike(const itk::ImageBase<3>* ref) {
  auto lab = LabelImage::New();
  lab->CopyInformation(ref);
  lab->SetRegions(ref->GetLargestPossibleRegion());
  lab->Allocate();
  lab->FillBuffer(0);
  return lab;
}

}  // namespace ctbmd
