#pragma once
// Datasets in the VerSe layout (Sekuboyina et al., VerSe 2019/2020; the restructured release
// at github.com/anjany/verse):
//   <root>/.../rawdata/sub-<id>/sub-<id>[_<entity>]_ct.nii.gz              the CT
//   <root>/.../derivatives/sub-<id>/sub-<id>[_<entity>]_seg-vert_msk.nii.gz  one label per vertebra
//   <root>/.../derivatives/sub-<id>/sub-<id>[_<entity>]_seg-subreg_ctd.json centroids
//   <root>/.../derivatives/sub-<id>/sub-<id>[_<entity>]_seg-subreg_msk.nii.gz sub-regions (optional;
//     41-48 posterior parts, 49 corpus border, 50 corpus spongiosa: the body is 49 + 50)
// Centroid files list voxel indices of the mask grid, with its axis codes as first entry:
//   [{"direction": ["P","I","R"]}, {"label": 20, "X": 63.2, "Y": 141.9, "Z": 31.8}, ...]
// Labels: 1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum, 28 T13.
#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "ctbmd/image.hpp"

namespace ctbmd {

struct VerseSubject {
  std::string key;                    // file-name prefix, e.g. "sub-gl003_dir-ax"
  std::string subject;                // "sub-gl003"
  std::string split;                  // the folder holding rawdata/derivatives (e.g. dataset-01training)
  std::filesystem::path ct;           // empty when the dataset has no image for it
  std::filesystem::path vert_mask;    // always present
  std::filesystem::path subreg_mask;  // may be empty
  std::filesystem::path centroids;    // may be empty
};

/// Finds every subject with a vertebra mask under `root` (searched recursively for
/// rawdata/derivatives pairs), sorted by key. Throws InputError when there is none.
std::vector<VerseSubject> scanVerseDataset(const std::filesystem::path& root);

struct VerseCentroids {
  std::string axes;                            // e.g. "PIR": the grid's axis codes
  std::map<int, std::array<double, 3>> voxel;  // label -> continuous voxel index (X, Y, Z)
};

VerseCentroids readVerseCentroids(const std::filesystem::path& file);
/// Physical (LPS, mm) position of each centroid on `grid`. Throws InputError when the file's
/// axis codes are not the grid's (the centroids would be read on the wrong axes).
std::map<int, std::array<double, 3>> centroidsToPhysical(const VerseCentroids& c,
                                                         const itk::ImageBase<3>* grid,
                                                         const std::string& what);
/// Writes a centroid file for `grid` from physical positions (label -> LPS mm), atomically.
void writeVerseCentroids(const std::filesystem::path& file, const itk::ImageBase<3>* grid,
                         const std::map<int, std::array<double, 3>>& lps_mm, bool force);

/// A subject loaded for training: CT, the vertebral-body label map (VerSe numbers; bodies only
/// when a sub-region mask says which voxels are body, else whole vertebrae) and centroids
/// (physical, LPS mm; computed from the mask when the dataset has no centroid file).
struct VerseCase {
  VerseSubject subject;
  Scan scan;
  LabelImage::Pointer bodies;
  bool bodies_from_subregions = false;
  std::map<int, std::array<double, 3>> centroids;
};

/// Loads one subject. Throws InputError when it has no CT or its masks are on another grid.
VerseCase loadVerseCase(const VerseSubject& s);

}  // namespace ctbmd
