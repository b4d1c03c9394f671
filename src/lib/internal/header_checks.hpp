#pragma once
// ctbmd's own checks of an image file, made before any third-party reader (ITK, niftilib,
// MetaIO, GDCM) sees it. Those readers abort, overflow buffers or allocate what a header
// claims on malformed input; a check here turns each such file into an InputError that names
// the file and says what is wrong, in bounded time and memory.
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace ctbmd::detail {

/// The most voxels one volume may claim (2^31: 4 GiB as int16, 8 GiB while read as float).
/// A whole-body CT at 0.5 mm (512 x 512 x 4000) is 1.05e9. Raised with CTBMD_MAX_VOXELS.
uint64_t maxVoxels();

/// What a NIfTI-1 header says, after checkNiftiHeader found it consistent.
struct NiftiFacts {
  int datatype = 0, bitpix = 0;
  std::array<int64_t, 8> dim{};
  uint64_t voxels = 0;
  uint64_t vox_offset = 0;
  uint64_t data_bytes = 0;  // voxels * bitpix / 8
  bool gz = false;
  bool swap = false;    // the file's byte order is not this machine's
  bool scaled = false;  // scl_slope finite and not 0 (the voxels are slope * v + inter)
  uint64_t total() const { return vox_offset + data_bytes; }
};

/// Reads at most one header from `path` (.nii or .nii.gz) and refuses, naming the file: a
/// NIfTI-2 file (ITK 5.2 cannot read it), dimensions < 1 or over maxVoxels(), an unknown
/// datatype, zero or non-finite voxel sizes, non-finite qform/sform/scaling, a vox_offset
/// outside the file, and a claimed size the file cannot hold (uncompressed: its length;
/// gzip: deflate's 1032:1 ceiling on the compression ratio).
NiftiFacts checkNiftiHeader(const std::filesystem::path& path);

/// MetaImage (.mha/.mhd): the text header must be "Key = value" lines of printable ASCII with
/// bounded lengths, no key twice, ObjectType Image, 3-4 dimensions of positive sizes, a known
/// element type, finite spacing/offset/matrix, and data that fits the file (or the separate
/// data file of a .mhd). A file that is not a MetaImage header (e.g. a PNG named .mha) is
/// refused as such.
void checkMetaImageHeader(const std::filesystem::path& path);

/// NRRD (.nrrd; a detached .nhdr's own header): magic, printable bounded header lines, no
/// field twice, dimension 2-4 with as many positive sizes (voxels <= maxVoxels()), a known
/// type, finite origin/directions/spacings, a known encoding, and attached data that fit the
/// file (raw: its length; gzip: deflate's ratio ceiling).
void checkNrrdHeader(const std::filesystem::path& path);

/// A DICOM part-10 file: the file meta group and every top-level element up to the pixel
/// data must lie within the file (a cut slice makes GDCM assert).
void checkDicomFile(const std::filesystem::path& path);

/// Decompresses a whole gzip file (all members) in bounded memory, checking every member's
/// CRC-32 and length. Returns "" when it decompresses to exactly `expected` bytes, else why
/// not ("truncated: ...", "corrupt: ..."). Decompressed data beyond `expected` or bytes after
/// the last member are accepted and described in `note`.
/// Every decompressed chunk is passed to `sink` when one is given.
using ByteSink = std::function<void(const unsigned char* data, size_t n)>;
std::string verifyGzip(const std::filesystem::path& path, uint64_t expected, std::string& note,
                       const ByteSink& sink = {});

/// Counts NaN and infinite voxels of a float32/float64 NIfTI (0 for other types): ITK 5.2's
/// NIfTI reader hands them on as 0, so they are counted in the file's own bytes. A .nii.gz is
/// decompressed (and checked as verifyGzip does); `gz_problem` receives verifyGzip's answer.
uint64_t countNonFiniteNifti(const std::filesystem::path& path, const NiftiFacts& facts,
                             std::string& gz_problem, std::string& note);

}  // namespace ctbmd::detail
