// A supervised child process per unit of work (see include/ctbmd/supervise.hpp).
#include "ctbmd/supervise.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>

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

ChildOutcome runSupervised(const std::function<std::string()>& work, const SuperviseLimits& limits) {
  ChildOutcome out;
  const auto t0 = std::chrono::steady_clock::now();
  int fds[2];
  if (pipe(fds) != 0) {
    out.failure = std::string("could not start a worker process (pipe: ") + std::strerror(errno) + ")";
    return out;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    out.failure = std::string("could not start a worker process (fork: ") + std::strerror(errno) + ")";
    return out;
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
    int code = 0;
    try {
      answer = "A" + work();
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
    _exit(code);
  }
  close(fds[1]);
  std::string got;
  char buf[1 << 16];
  bool timed_out = false;
  while (true) {
    int wait_ms = -1;
    if (limits.timeout_s > 0) {
      const double left =
          limits.timeout_s - std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left * 1000) + 1;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // the deadline is checked above
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child closed the pipe (answered or died)
    got.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (timed_out) {
    char m[160];
    std::snprintf(m, sizeof m, "took longer than %.0f s and was stopped (--case-timeout raises the limit)",
                  limits.timeout_s);
    out.failure = m;
  } else if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    out.failure = "crashed (signal " + std::to_string(sig) + ", " + strsignal(sig) + ")" +
                  (sig == SIGKILL ? " - killed from outside, e.g. by the kernel's out-of-memory killer" : "");
  } else if (!got.empty() && got[0] == 'A') {
    out.ok = true;
    out.answer = got.substr(1);
  } else if (!got.empty() && got[0] == 'F') {
    out.failure = got.substr(1);
  } else {
    out.failure = "the worker process ended without an answer (exit status " +
                  std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
  }
  return out;
}

}  // namespace ctbmd
