// Loading the LibTorch plugin on demand (see ctbmd/learned.hpp).
#include "ctbmd/learned.hpp"

#include <dlfcn.h>
#include <itkMultiThreaderBase.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include "ctbmd/errors.hpp"
#include "ctbmd/threads.hpp"

namespace ctbmd::learned {

namespace fs = std::filesystem;

void checkDeviceName(const std::string& device) {
  if (device != "auto" && device != "cpu" && device != "cuda")
    throw UsageError("--device must be auto, cpu or cuda (got '" + device + "')");
}

namespace {
std::mutex g_mutex;
Backend* g_backend = nullptr;
std::string g_path;

fs::path executableDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return fs::current_path();
  buf[n] = 0;
  return fs::path(buf).parent_path();
}
}  // namespace

Backend& backend() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_backend) return *g_backend;
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("CTBMD_TORCH_PLUGIN")) candidates.emplace_back(env);
  fs::path exe = executableDir();
  candidates.push_back(exe / "libctbmd-torch.so");
  candidates.push_back(exe / ".." / CTBMD_INSTALL_LIBDIR / "ctbmd" / "libctbmd-torch.so");
  std::string tried, last_error;
  for (const auto& c : candidates) {
    tried += "\n  " + c.string();
    if (!fs::exists(c)) continue;
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      last_error = dlerror();
      continue;
    }
    auto entry = reinterpret_cast<Backend* (*)(int)>(dlsym(h, "ctbmd_torch_backend"));
    if (!entry) {
      last_error = c.string() + " has no ctbmd_torch_backend entry point";
      continue;
    }
    Backend* b = entry(kBackendAbiVersion);
    if (!b) {
      last_error = c.string() + " was built for another interface version; rebuild ctbmd";
      continue;
    }
    g_backend = b;
    g_path = fs::weakly_canonical(c).string();
    int threads = static_cast<int>(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads());
    b->setThreads(threads);
    addThreadHook([b](int n) { b->setThreads(n); });
    spdlog::debug("LibTorch {} loaded from {} ({} threads, CUDA {})", b->torchVersion(), g_path, threads,
                  b->cudaAvailable() ? "available" : "not available");
    return *g_backend;
  }
  throw ProcessingError(
      "this method needs the LibTorch plugin libctbmd-torch.so, which was not found or not "
      "loadable (looked at:" +
      tried + ")" + (last_error.empty() ? "" : "\nlast error: " + last_error) +
      "\nBuild ctbmd with LibTorch (tools/install-deps.sh installs libtorch-dev) or set "
      "CTBMD_TORCH_PLUGIN.");
}

std::string backendPath() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_path;
}

}  // namespace ctbmd::learned
