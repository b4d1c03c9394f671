#include "ctbmd/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace ctbmd {

Progress::Progress(std::string what, long total)
    : what_(std::move(what)),
      total_(total > 0 ? total : 1),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::step(long n) { set(done_ + n); }

void Progress::set(long done) {
  done_ = done;
  show(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_ && spdlog::default_logger()->should_log(spdlog::level::info) && last_decile_ >= 0)
    std::fprintf(stderr, "\r%*s\r", 60, "");
}

void Progress::show(bool force) {
  if (!spdlog::default_logger()->should_log(spdlog::level::info)) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < 2.0 && !force) return;  // short work shows nothing
  int pct = static_cast<int>(100.0 * done_ / total_);
  if (tty_) {
    if (std::chrono::duration<double>(now - last_).count() < 0.2 && !force) return;
    std::fprintf(stderr, "\r%s: %3d%% (%ld/%ld, %.0f s)", what_.c_str(), pct, done_, total_, elapsed);
    std::fflush(stderr);
    last_decile_ = pct / 10;
  } else {
    int decile = pct / 10;
    if (decile == last_decile_ && !force) return;
    last_decile_ = decile;
    spdlog::info("{}: {}% ({}/{}, {:.0f} s)", what_, pct, done_, total_, elapsed);
  }
  last_ = now;
}

}  // namespace ctbmd
