// The LibTorch plugin (libctbmd-torch.so): loaded with dlopen by ctbmd::learned::backend()
// only when a network runs. Everything that includes LibTorch lives under src/torch/.
#include <torch/script.h>
#include <torch/torch.h>

#include <cstdlib>
#include <map>
#include <stdexcept>

#include "ctbmd/learned.hpp"
#include "networks.hpp"

namespace {

using ctbmd::learned::Network;
using ctbmd::learned::Tensor;

torch::Tensor toTorch(const Tensor& t) {
  if (t.data.size() != t.numel())
    throw std::runtime_error("tensor data size " + std::to_string(t.data.size()) +
                             " does not match its shape");
  return torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32).clone();
}

// Input for a forward pass: on the CPU the caller's buffer is used in place (no copy; the
// interface documents that forward() may read it as the network's input tensor).
torch::Tensor inputOf(const Tensor& t, const torch::Device& d) {
  if (t.data.size() != t.numel())
    throw std::runtime_error("tensor data size " + std::to_string(t.data.size()) +
                             " does not match its shape");
  if (d.is_cpu()) return torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32);
  return toTorch(t).to(d);
}

Tensor fromTorch(torch::Tensor x) {
  x = x.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  Tensor t;
  t.shape = x.sizes().vec();
  const float* p = x.data_ptr<float>();
  t.data.assign(p, p + x.numel());
  return t;
}

torch::Device pickDevice(const std::string& want) {
  if (want == "cpu") return torch::kCPU;
  bool cuda = torch::cuda::is_available();
  if (want == "cuda") {
    if (!cuda)
      throw std::runtime_error(
          "--device cuda: no CUDA device is available to LibTorch (torch::cuda::is_available() is false)");
    return torch::kCUDA;
  }
  return cuda ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

class ScriptNetwork : public Network {
 public:
  ScriptNetwork(torch::jit::Module m, torch::Device d) : module_(std::move(m)), device_(d) {
    module_.to(device_);
    module_.eval();
    // Freezing inlines the parameters as constants and folds batch norms into the preceding
    // convolutions (torch.jit.freeze): the same function, computed with fewer operations.
    // Modules that cannot be frozen (e.g. with training-only attributes) run as loaded.
    if (!std::getenv("CTBMD_NO_FREEZE")) {
      try {
        module_ = torch::jit::freeze(module_);
      } catch (const c10::Error&) {
      }
    }
  }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    torch::InferenceMode guard;
    std::vector<torch::jit::IValue> in;
    for (const auto& t : inputs) in.emplace_back(inputOf(t, device_));
    auto out = module_.forward(in);
    std::vector<Tensor> res;
    if (out.isTensor()) {
      res.push_back(fromTorch(out.toTensor()));
    } else if (out.isTuple()) {
      for (const auto& e : out.toTuple()->elements()) res.push_back(fromTorch(e.toTensor()));
    } else if (out.isTensorList()) {
      for (const auto& e : out.toTensorVector()) res.push_back(fromTorch(e));
    } else {
      throw std::runtime_error("the model's forward() returned neither a tensor nor a tuple/list of tensors");
    }
    return res;
  }
  std::string device() const override { return device_.str(); }

 private:
  torch::jit::Module module_;
  torch::Device device_;
};

class StateNetwork : public Network {
 public:
  StateNetwork(torch::nn::AnyModule m, torch::Device d) : module_(std::move(m)), device_(d) {
    module_.ptr()->to(device_);
    module_.ptr()->eval();
  }
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs) override {
    if (inputs.size() != 1) throw std::runtime_error("ctbmd networks take one input tensor");
    torch::InferenceMode guard;
    return {fromTorch(module_.forward(inputOf(inputs[0], device_)))};
  }
  std::string device() const override { return device_.str(); }

 private:
  torch::nn::AnyModule module_;
  torch::Device device_;
};

nlohmann::json parseHyper(const std::string& s) {
  try {
    return s.empty() ? nlohmann::json::object() : nlohmann::json::parse(s);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("hyper-parameters are not valid JSON: ") + e.what());
  }
}

class TorchBackend : public ctbmd::learned::Backend {
 public:
  std::string torchVersion() const override {
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
           std::to_string(TORCH_VERSION_PATCH);
  }
  bool cudaAvailable() const override { return torch::cuda::is_available(); }
  void setThreads(int n) override {
    if (n <= 0) return;
    torch::set_num_threads(n);
  }
  std::unique_ptr<Network> loadTorchScript(const std::filesystem::path& file,
                                           const std::string& device) override {
    torch::Device d = pickDevice(device);
    torch::jit::Module m;
    try {
      m = torch::jit::load(file.string(), d);
    } catch (const c10::Error& e) {
      throw std::runtime_error("cannot load TorchScript module '" + file.string() +
                               "': " + e.what_without_backtrace());
    }
    return std::make_unique<ScriptNetwork>(std::move(m), d);
  }
  std::unique_ptr<Network> loadModel(const std::string& format, const std::filesystem::path& weights,
                                     const std::string& architecture, const std::string& hyper_json,
                                     const std::string& device) override {
    if (format == "torchscript") return loadTorchScript(weights, device);
    if (format != "ctbmd-state") throw std::runtime_error("unknown weights format '" + format + "'");
    torch::Device d = pickDevice(device);
    torch::nn::AnyModule m;
    try {
      m = ctbmd::nets::build(architecture, parseHyper(hyper_json));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
    try {
      // Module::load replaces each tensor wholesale (shape included), so a card whose
      // hyper-parameters do not describe the weights would load silently: compare shapes.
      std::map<std::string, std::vector<int64_t>> want;
      for (const auto& p : m.ptr()->named_parameters()) want[p.key()] = p.value().sizes().vec();
      for (const auto& b : m.ptr()->named_buffers()) want[b.key()] = b.value().sizes().vec();
      torch::serialize::InputArchive in;
      in.load_from(weights.string());
      m.ptr()->load(in);
      auto check = [&](const std::string& k, const torch::Tensor& t) {
        if (want.at(k) != t.sizes().vec())
          throw std::runtime_error("weights '" + weights.string() + "' do not fit architecture " +
                                   architecture + " with these hyper-parameters: tensor '" + k +
                                   "' has shape " + c10::str(t.sizes()) + ", the architecture expects " +
                                   c10::str(want.at(k)));
      };
      for (const auto& p : m.ptr()->named_parameters()) check(p.key(), p.value());
      for (const auto& b : m.ptr()->named_buffers()) check(b.key(), b.value());
    } catch (const c10::Error& e) {
      throw std::runtime_error("weights '" + weights.string() + "' do not fit architecture " + architecture +
                               " with these hyper-parameters: " + e.what_without_backtrace());
    }
    return std::make_unique<StateNetwork>(std::move(m), d);
  }
  int64_t initModel(const std::string& architecture, const std::string& hyper_json, uint64_t seed,
                    const std::filesystem::path& weights) override {
    torch::manual_seed(seed);
    torch::nn::AnyModule m;
    try {
      m = ctbmd::nets::build(architecture, parseHyper(hyper_json));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
    torch::serialize::OutputArchive out;
    m.ptr()->save(out);
    out.save_to(weights.string());
    return ctbmd::nets::parameterCount(*m.ptr());
  }
  std::vector<std::string> architectures() const override { return ctbmd::nets::architectures(); }
  std::string train(const std::string& config_json, const std::vector<Tensor>& images,
                    const std::vector<Tensor>& targets,
                    const std::function<void(const std::string&)>& on_epoch) override {
    try {
      return ctbmd::nets::trainNetwork(config_json, images, targets, on_epoch);
    } catch (const c10::Error& e) {
      throw std::runtime_error(std::string("training failed: ") + e.what_without_backtrace());
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(std::string("training configuration: ") + e.what());
    }
  }
  void saveScripted(const std::filesystem::path& file, const std::string& source,
                    const std::vector<std::pair<std::string, Tensor>>& params) override {
    torch::jit::Module m("ctbmd_scripted");
    for (const auto& [name, t] : params) m.register_parameter(name, toTorch(t), false);
    m.define(source);
    m.save(file.string());
  }
};

}  // namespace

extern "C" ctbmd::learned::Backend* ctbmd_torch_backend(int abi_version) {
  if (abi_version != ctbmd::learned::kBackendAbiVersion) return nullptr;
  static TorchBackend backend;
  return &backend;
}
