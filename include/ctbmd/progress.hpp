#pragma once
// Progress for long work: an updating line on a terminal, log lines otherwise.
#include <chrono>
#include <string>

namespace ctbmd {

/// "cases: 37 % (370/1000), 2.1 s/case, ETA 22 min" (a rate per second when one takes < 1 s).
std::string progressLine(const std::string& what, long done, long total, double elapsed_s);

class Progress {
 public:
  Progress(std::string what, long total);
  ~Progress();
  void step(long n = 1);
  void set(long done);
  void finish();

 private:
  void show(bool force);
  std::string what_;
  long total_, done_ = 0;
  bool tty_, finished_ = false;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace ctbmd
