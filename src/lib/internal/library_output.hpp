#pragma once
// What third-party readers print themselves (niftilib's "** ERROR: NWAD", MetaIO's
// "MetaImage: ...", libpng's errors, GDCM's and VNL's warnings) bypasses ctbmd's log: they
// write to file descriptor 2 directly. LibraryOutput sends fd 2 to a private temporary file
// for the duration of one third-party call and then logs each captured line through spdlog
// at debug level, prefixed with the file being read (shown with -v; a batch's stderr stays
// in the log's format). Nesting and concurrent readers are safe: only the outermost capture
// in the process redirects, and the captured lines are logged after fd 2 is restored.
#include <string>

namespace ctbmd::detail {

class LibraryOutput {
 public:
  explicit LibraryOutput(std::string what);
  ~LibraryOutput();
  LibraryOutput(const LibraryOutput&) = delete;
  LibraryOutput& operator=(const LibraryOutput&) = delete;

 private:
  std::string what_;
  int saved_fd_ = -1;
  int capture_fd_ = -1;
};

}  // namespace ctbmd::detail
