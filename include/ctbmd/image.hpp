#pragma once
// The one read path and the one write path for images. Geometry (spacing, origin,
// direction) is kept exactly; what cannot be represented faithfully is refused.
#include <itkImage.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ctbmd {

using CtImage = itk::Image<int16_t, 3>;     // Hounsfield units
using LabelImage = itk::Image<uint8_t, 3>;  // VerSe label numbers
using FloatImage = itk::Image<float, 3>;
using Slice2D = itk::Image<float, 2>;

struct ScanInfo {
  std::filesystem::path path;   // file, or directory for a DICOM series
  std::string format;           // nifti, nrrd, metaimage, dicom
  std::string sha256;           // of the file; of the sorted slice files for DICOM
  std::string orientation;      // three-letter code of the storage order, e.g. "RAS", "LPS"
  std::string disk_pixel_type;  // e.g. "int32", "float", "int16"
  // DICOM (or empty)
  std::string series_uid, modality, manufacturer, model, kvp, kernel, study_date;
  // DICOM Series / Study Instance UID (0020,000E / 0020,000D), SliceThickness (0018,0050),
  // ContrastBolusAgent (0018,0010); series_uid above is GDCM's id, which may carry more
  std::string series_instance_uid, study_instance_uid, slice_thickness, contrast_agent;
  std::vector<std::string> warnings;  // things a person should know about this input
};

struct CanonicalCache;  // see ctbmd/canonical.hpp

struct Scan {
  CtImage::Pointer image;
  ScanInfo info;
  // The LPS-ordered copy of `image` the stages work on, made once per scan (canonicalOf()).
  mutable std::shared_ptr<CanonicalCache> canonical_cache;
};

struct ReadOptions {
  std::string series_uid;  // DICOM directory with several series: pick this one
};

/// Reads a CT scan: NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd) or a
/// DICOM series directory. Values are HU (DICOM rescale applied). Throws InputError with a
/// message naming the file and the problem when the input is unreadable or its geometry
/// cannot be represented (non-orthogonal axes, gantry tilt, uneven slice spacing).
Scan readScan(const std::filesystem::path& path, const ReadOptions& opt = {});

/// Reads a label map; when `reference` is given, its grid must match (else InputError).
LabelImage::Pointer readLabels(const std::filesystem::path& path, const CtImage* reference = nullptr);

/// Reads any scalar image as float without HU checks (for tests and tools).
FloatImage::Pointer readFloatImage(const std::filesystem::path& path);
/// A 2-D image (e.g. a mosaic-392 NIfTI), as float.
Slice2D::Pointer readSlice2D(const std::filesystem::path& path);

/// Atomic write (temporary name in the same folder, then rename). Refuses to overwrite
/// an existing file unless `force`. Formats by extension: .nii, .nii.gz, .nrrd, .mha.
void writeImage(const CtImage* img, const std::filesystem::path& path, bool force);
void writeImage(const LabelImage* img, const std::filesystem::path& path, bool force);
void writeImage(const FloatImage* img, const std::filesystem::path& path, bool force);
void writeImage(const Slice2D* img, const std::filesystem::path& path, bool force);

/// Three-letter anatomical code of the storage order (ITK/DICOM convention: a letter names
/// the direction the index increases toward, e.g. "LPS", "RAS", "PIR").
std::string orientationCode(const CtImage::DirectionType& d);
/// Direction matrix for a three-letter code.
CtImage::DirectionType directionFromCode(const std::string& code);

/// True when two images share size, spacing, origin and direction within `tol_mm`.
template <typename A, typename B>
bool sameGrid(const A* a, const B* b, double tol_mm = 1e-3);

/// True for paths that name an image file ctbmd can read (by extension).
bool isImageFile(const std::filesystem::path& p);
/// True for directories that directly hold DICOM files (sniffed by the "DICM" preamble).
bool isDicomDirectory(const std::filesystem::path& p);
/// A DICOM part-10 file (the "DICM" preamble) or a file named *.dcm.
bool isDicomFile(const std::filesystem::path& p);

}  // namespace ctbmd

#include "ctbmd/image_impl.hpp"
