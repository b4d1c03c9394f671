#pragma once
// Progress for long work: an updating line on a terminal, log lines otherwise.
#include <chrono>
#include <string>

namespace ctbmd {

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
