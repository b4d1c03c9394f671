// A supervised child process per unit of work (see include/ctbmd/supervise.hpp).
#include "ctbmd/supervise.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <system_error>
#include <vector>

namespace ctbmd {

namespace {

void writeAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

uint64_t physicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

namespace {

struct Running {
  size_t index = 0;
  pid_t pid = -1;
  int fd = -1;
  std::chrono::steady_clock::time_point t0;
  std::string got;
};

// Forks the child of unit `index`; false (and `failure`) when it cannot start.
bool startChild(size_t index, const std::function<std::string(size_t)>& work, const SuperviseLimits& limits,
                Running& r, std::string& failure) {
  r.index = index;
  r.t0 = std::chrono::steady_clock::now();
  int fds[2];
  if (pipe(fds) != 0) {
    failure = std::string("could not start a worker process (pipe: ") + std::strerror(errno) + ")";
    return false;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    failure = std::string("could not start a worker process (fork: ") + std::strerror(errno) + ")";
    return false;
  }
  if (pid == 0) {  // the child
    close(fds[0]);
    // A parent killed from outside (kill -9, a scheduler's time limit) takes its worker with
    // it: an orphaned worker would go on writing into a case folder that a resumed batch owns.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
#if !defined(__SANITIZE_ADDRESS__)
    if (limits.memory_bytes > 0) {
      rlimit rl{limits.memory_bytes, limits.memory_bytes};
      setrlimit(RLIMIT_AS, &rl);
    }
#endif
    std::string answer;
    try {
      answer = "A" + work(index);
    } catch (const std::bad_alloc&) {
      answer = "Fran out of memory (over the worker's limit of " + std::to_string(limits.memory_bytes >> 20) +
               " MiB; --case-memory raises it)";
    } catch (const std::exception& e) {
      answer = std::string("F") + e.what();
    } catch (...) {
      answer = "Fan unknown exception";
    }
    writeAll(fds[1], answer);
    close(fds[1]);
    std::fflush(stdout);
    std::fflush(stderr);
    // No static destructors: the parent's copies of ITK's and spdlog's state are not ours.
    _exit(0);
  }
  close(fds[1]);
  r.pid = pid;
  r.fd = fds[0];
  return true;
}

// Reaps a child whose pipe closed (or that ran out of time) and says how it ended.
ChildOutcome reap(Running& r, bool timed_out, const SuperviseLimits& limits) {
  ChildOutcome out;
  if (r.fd >= 0) close(r.fd);
  r.fd = -1;
  if (timed_out) kill(r.pid, SIGKILL);
  int status = 0;
  while (waitpid(r.pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.t0).count();
  if (timed_out) {
    char m[160];
    std::snprintf(m, sizeof m, "took longer than %.0f s and was stopped (--case-timeout raises the limit)",
                  limits.timeout_s);
    out.failure = m;
  } else if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    out.failure = "crashed (signal " + std::to_string(sig) + ", " + strsignal(sig) + ")" +
                  (sig == SIGKILL ? " - killed from outside, e.g. by the kernel's out-of-memory killer" : "");
  } else if (!r.got.empty() && r.got[0] == 'A') {
    out.ok = true;
    out.answer = r.got.substr(1);
  } else if (!r.got.empty() && r.got[0] == 'F') {
    out.failure = r.got.substr(1);
  } else {
    out.failure = "the worker process ended without an answer (exit status " +
                  std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
  }
  return out;
}

}  // namespace

void runSupervisedPool(size_t n, int parallel, const std::function<std::string(size_t)>& work,
                       const std::function<void(size_t, const ChildOutcome&)>& done,
                       const SuperviseLimits& limits) {
  const size_t slots = static_cast<size_t>(std::max(1, parallel));
  std::vector<Running> running;
  size_t next = 0;
  char buf[1 << 16];
  while (next < n || !running.empty()) {
    while (next < n && running.size() < slots) {
      Running r;
      std::string failure;
      const size_t i = next++;
      if (startChild(i, work, limits, r, failure)) {
        running.push_back(std::move(r));
      } else {
        ChildOutcome o;
        o.failure = failure;
        done(i, o);
      }
    }
    if (running.empty()) continue;
    // the nearest deadline bounds the wait
    int wait_ms = -1;
    const auto now = std::chrono::steady_clock::now();
    std::vector<size_t> late;
    if (limits.timeout_s > 0)
      for (size_t k = 0; k < running.size(); ++k) {
        const double left = limits.timeout_s - std::chrono::duration<double>(now - running[k].t0).count();
        if (left <= 0)
          late.push_back(k);
        else
          wait_ms = wait_ms < 0 ? static_cast<int>(left * 1000) + 1
                                : std::min(wait_ms, static_cast<int>(left * 1000) + 1);
      }
    std::vector<size_t> ended;
    if (late.empty()) {
      std::vector<pollfd> p;
      for (const auto& r : running) p.push_back({r.fd, POLLIN, 0});
      const int rc = poll(p.data(), p.size(), wait_ms);
      if (rc < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "poll");
      for (size_t k = 0; rc > 0 && k < p.size(); ++k) {
        if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t got = read(running[k].fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got > 0)
          running[k].got.append(buf, static_cast<size_t>(got));
        else
          ended.push_back(k);  // EOF: the child closed the pipe (answered or died)
      }
    }
    // reap the ended and the late, last index first so the others keep their places
    std::vector<std::pair<size_t, bool>> gone;
    for (size_t k : ended) gone.push_back({k, false});
    for (size_t k : late) gone.push_back({k, true});
    std::sort(gone.begin(), gone.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (const auto& [k, timed_out] : gone) {
      Running r = std::move(running[k]);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
      const ChildOutcome o = reap(r, timed_out, limits);
      done(r.index, o);
    }
  }
}

ChildOutcome runSupervised(const std::function<std::string()>& work, const SuperviseLimits& limits) {
  ChildOutcome out;
  runSupervisedPool(
      1, 1, [&](size_t) { return work(); }, [&](size_t, const ChildOutcome& o) { out = o; }, limits);
  return out;
}

}  // namespace ctbmd
