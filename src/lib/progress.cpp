#include "ctbmd/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace ctbmd {

namespace {
// "0.4 s", "2.1 s", "22 min", "3.5 h"
std::string fmtDuration(double s) {
  char b[32];
  if (s < 60)
    std::snprintf(b, sizeof b, "%.1f s", s);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%.0f min", s / 60);
  else
    std::snprintf(b, sizeof b, "%.1f h", s / 3600);
  return b;
}
std::string fmtRate(double per_s) {
  char b[32];
  std::snprintf(b, sizeof b, per_s < 10 ? "%.1f" : "%.0f", per_s);
  return b;
}
// "cases" -> "case": what one unit of the work is called
std::string unitOf(const std::string& what) {
  return what.size() > 1 && what.back() == 's' ? what.substr(0, what.size() - 1) : what;
}
}  // namespace

std::string progressLine(const std::string& what, long done, long total, double elapsed_s) {
  const double pct = total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
  char b[200];
  int n = std::snprintf(b, sizeof b, "%s: %.0f %% (%ld/%ld)", what.c_str(), std::floor(pct), done, total);
  if (done > 0 && n > 0 && static_cast<size_t>(n) < sizeof b) {
    const double per = elapsed_s / static_cast<double>(done), left = per * static_cast<double>(total - done);
    const std::string each =
        per >= 1 ? fmtDuration(per) + "/" + unitOf(what) : fmtRate(1.0 / per) + " " + what + "/s";
    std::snprintf(b + n, sizeof b - static_cast<size_t>(n), ", %s, ETA %s", each.c_str(),
                  done < total ? fmtDuration(left).c_str() : "0 s");
  }
  return b;
}

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
    std::fprintf(stderr, "\r%*s\r", 78, "");
}

void Progress::show(bool force) {
  if (!spdlog::default_logger()->should_log(spdlog::level::info)) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  if (elapsed < 2.0 && !force) return;  // short work shows nothing
  int pct = static_cast<int>(100.0 * done_ / total_);
  const std::string line = progressLine(what_, done_, total_, elapsed);
  if (tty_) {
    if (std::chrono::duration<double>(now - last_).count() < 0.2 && !force) return;
    std::fprintf(stderr, "\r%-78s", line.c_str());
    std::fflush(stderr);
    last_decile_ = pct / 10;
  } else {
    int decile = pct / 10;
    if (decile == last_decile_ && !force) return;
    last_decile_ = decile;
    spdlog::info("{}", line);
  }
  last_ = now;
}

}  // namespace ctbmd
