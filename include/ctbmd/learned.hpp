#pragma once
// Learned methods run in a LibTorch plugin (libctbmd-torch.so) that is loaded with dlopen only
// when a network is actually used: executables that run no network never load LibTorch
// (≈0.55 s per process). This header has no LibTorch types; tensors cross as float buffers.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ctbmd::learned {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major (C order), size = product of shape
  size_t numel() const {
    size_t n = 1;
    for (auto s : shape) n *= static_cast<size_t>(s);
    return shape.empty() ? 0 : n;
  }
};

/// A loaded network, bound to a device.
class Network {
 public:
  virtual ~Network() = default;
  /// Inference (no gradients) on the network's device; inputs and outputs on the host. On the
  /// CPU the inputs' buffers are the network's input tensors (not copied): do not reuse an
  /// input after passing it to a TorchScript model that may change its input in place.
  virtual std::vector<Tensor> forward(const std::vector<Tensor>& inputs) = 0;
  virtual std::string device() const = 0;
};

/// What the plugin implements (versioned C++ interface; same compiler and standard library).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string torchVersion() const = 0;
  virtual bool cudaAvailable() const = 0;
  virtual void setThreads(int n) = 0;
  /// device: auto | cpu | cuda. Throws std::runtime_error with a readable message.
  virtual std::unique_ptr<Network> loadTorchScript(const std::filesystem::path& file,
                                                   const std::string& device) = 0;
  /// Loads a model folder's network: TorchScript, or a ctbmd architecture (card
  /// architecture + hyper-parameters) with its saved state ("ctbmd-state").
  virtual std::unique_ptr<Network> loadModel(const std::string& format, const std::filesystem::path& weights,
                                             const std::string& architecture, const std::string& hyper_json,
                                             const std::string& device) = 0;
  /// A ctbmd architecture with seeded random initial weights, saved as "ctbmd-state"; returns
  /// the parameter count. Starting point for ctbmd-train.
  virtual int64_t initModel(const std::string& architecture, const std::string& hyper_json, uint64_t seed,
                            const std::filesystem::path& weights) = 0;
  virtual std::vector<std::string> architectures() const = 0;
  /// Trains a ctbmd architecture on images (each [C, H, W] or [C, D, H, W]) with targets:
  /// regress — [K] values (the network has K outputs); classify — [1] class index; segment — a
  /// label per voxel ([H, W] or [D, H, W]). `config_json`: see ctbmd-train --help. Writes
  /// <out>/weights.pt (best validation loss), <out>/checkpoint.pt (last epoch, resumable) and
  /// calls on_epoch with one JSON line per epoch. Returns a JSON summary.
  virtual std::string train(const std::string& config_json, const std::vector<Tensor>& images,
                            const std::vector<Tensor>& targets,
                            const std::function<void(const std::string&)>& on_epoch) = 0;
  /// Saves a TorchScript module defined by TorchScript source with the given float parameters
  /// (name -> tensor); used by tests and tools to make models without Python.
  virtual void saveScripted(const std::filesystem::path& file, const std::string& source,
                            const std::vector<std::pair<std::string, Tensor>>& params) = 0;
};

inline constexpr int kBackendAbiVersion = 4;

/// The plugin, loaded on first use. Search order: $CTBMD_TORCH_PLUGIN, beside the executable,
/// then the installed lib/ctbmd folder. Throws ProcessingError saying where it looked.
Backend& backend();
/// Where the plugin was loaded from ("" before the first use).
std::string backendPath();

/// `--device` values: auto (CUDA when available, else CPU), cpu, cuda.
void checkDeviceName(const std::string& device);

}  // namespace ctbmd::learned

/// The plugin's entry point (extern "C" so dlsym finds it by name).
extern "C" ctbmd::learned::Backend* ctbmd_torch_backend(int abi_version);
