// Third-party stderr routed through the log (internal/library_output.hpp).
#include "internal/library_output.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace ctbmd::detail {

namespace {
// Under AddressSanitizer (the sanitizer and fuzz builds) nothing is redirected: a sanitizer's
// report printed during a captured call would be lost when it aborts.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCapture = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kCapture = false;
#else
constexpr bool kCapture = true;
#endif
#else
constexpr bool kCapture = true;
#endif
std::mutex g_mutex;
int g_depth = 0;  // captures open in this process (only the outermost redirects fd 2)
}  // namespace

LibraryOutput::LibraryOutput(std::string what) : what_(std::move(what)) {
  if (!kCapture) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_depth++ > 0) return;
  std::fflush(stderr);
  char name[] = "/tmp/ctbmd-liberr-XXXXXX";
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/ctbmd-liberr-XXXXXX";
  capture_fd_ = mkstemp(pattern.data());
  if (capture_fd_ < 0) capture_fd_ = mkstemp(name);  // TMPDIR unusable: /tmp
  if (capture_fd_ < 0) return;                       // no capture: the output goes to stderr as before
  unlink(pattern.c_str());
  unlink(name);
  saved_fd_ = dup(STDERR_FILENO);
  if (saved_fd_ < 0 || dup2(capture_fd_, STDERR_FILENO) < 0) {
    if (saved_fd_ >= 0) close(saved_fd_);
    close(capture_fd_);
    saved_fd_ = capture_fd_ = -1;
  }
}

LibraryOutput::~LibraryOutput() {
  if (!kCapture) return;
  std::string text;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    --g_depth;
    if (saved_fd_ < 0) return;
    std::fflush(stderr);
    dup2(saved_fd_, STDERR_FILENO);
    close(saved_fd_);
    // at most 64 KiB of it: a library that prints megabytes is still only chatter
    char buf[4096];
    lseek(capture_fd_, 0, SEEK_SET);
    ssize_t n;
    while (text.size() < (1u << 16) && (n = read(capture_fd_, buf, sizeof buf)) > 0)
      text.append(buf, static_cast<size_t>(n));
    close(capture_fd_);
  }
  size_t pos = 0;
  int lines = 0;
  while (pos < text.size() && lines < 200) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    spdlog::debug("{}: the reading library printed: {}", what_, line);
    ++lines;
  }
}

}  // namespace ctbmd::detail
