#pragma once
// The published networks as LibTorch C++ modules (plugin-internal: includes LibTorch).
//   DenseNet-BC (2-D or 3-D): DenseNet-121-BC 3-D regressor (7x7x7 stem, blocks 6/12/24/16,
//     growth 32, compression 0.5, global average pooling) and BCC-Net (2-D, growth 12,
//     blocks 1/2/4/2, bottleneck layers, softmax over three classes).
//   UNet2d: encoder-decoder with skip connections (axial vertebral-body segmentation).
//   DenseUNet3d: U-Net whose levels are dense blocks (growth 8) each followed by a 1x1x1
//     reduction.
//   MosaicRegressor: a CNN on the 392x392 mosaic, one BMD per level.
//   MipRegressor: the two-stage MIP localizer's regressors (frontal + sagittal MIP channels).
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ctbmd/learned.hpp"

namespace ctbmd::nets {

/// nn::Sequential with a concrete forward(Tensor), so that sequences can nest.
class SeqImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return torch::nn::SequentialImpl::forward(x); }
};
TORCH_MODULE(Seq);

struct DenseNetOptions {
  int dims = 3;  // 2 or 3
  int in_channels = 1;
  int outputs = 1;
  int growth = 32;
  std::vector<int> blocks{6, 12, 24, 16};
  int bn_size = 4;  // bottleneck width = bn_size * growth
  double compression = 0.5;
  int stem_channels = 64;  // 0: 2 * growth
  int stem_kernel = 7;     // 7: 7^d stride-2 conv + 3^d stride-2 max pool; 3: 3^d stride-1 conv
};

class DenseNetImpl : public torch::nn::Module {
 public:
  explicit DenseNetImpl(const DenseNetOptions& o);
  torch::Tensor forward(torch::Tensor x);  // logits / regression output (no softmax)
  const DenseNetOptions& options() const { return o_; }

 private:
  DenseNetOptions o_;
  Seq features_{nullptr};
  torch::nn::Linear head_{nullptr};
  torch::Tensor out_scale_, out_shift_;  // regression: outputs in target units (set by training)
};
TORCH_MODULE(DenseNet);

DenseNetOptions denseNet121bc3d(int in_channels = 1, int outputs = 1);
DenseNetOptions bccNet(int in_channels = 1, int classes = 3);

struct UNetOptions {
  int in_channels = 1;
  int classes = 7;  // background + T12..L5
  int base = 16;
  int depth = 4;  // number of down-sampling steps
};

class UNet2dImpl : public torch::nn::Module {
 public:
  explicit UNet2dImpl(const UNetOptions& o);
  torch::Tensor forward(torch::Tensor x);  // logits, same H x W as x (H, W divisible by 2^depth)

 private:
  UNetOptions o_;
  std::vector<Seq> down_, up_conv_;
  std::vector<torch::nn::ConvTranspose2d> up_;
  Seq bottom_{nullptr};
  torch::nn::Conv2d out_{nullptr};
};
TORCH_MODULE(UNet2d);

struct DenseUNetOptions {
  int in_channels = 1;
  int classes = 7;
  int growth = 8;
  int layers = 4;  // dense layers per block
  int base = 16;   // channels after the first reduction
  int depth = 3;
};

class DenseUNet3dImpl : public torch::nn::Module {
 public:
  explicit DenseUNet3dImpl(const DenseUNetOptions& o);
  torch::Tensor forward(torch::Tensor x);

 private:
  DenseUNetOptions o_;
  torch::nn::Conv3d stem_{nullptr};
  std::vector<Seq> enc_, dec_;
  std::vector<torch::nn::ConvTranspose3d> up_;
  Seq bottom_{nullptr};
  torch::nn::Conv3d out_{nullptr};
};
TORCH_MODULE(DenseUNet3d);

struct CnnRegressorOptions {
  int in_channels = 1;
  int outputs = 1;
  std::vector<int> channels{16, 32, 64, 128, 256};  // one conv-conv-pool stage each
};

/// VGG-style regressor used for the mosaic BMD regressor (outputs = levels) and the MIP
/// localizer stages (in_channels = 2: frontal and sagittal MIP).
class CnnRegressorImpl : public torch::nn::Module {
 public:
  explicit CnnRegressorImpl(const CnnRegressorOptions& o);
  torch::Tensor forward(torch::Tensor x);

 private:
  Seq features_{nullptr};
  torch::nn::Linear head_{nullptr};
  torch::Tensor out_scale_, out_shift_;  // outputs in target units (set by training)
};
TORCH_MODULE(CnnRegressor);

/// Builds an architecture by its card name and hyper-parameters (model.json).
torch::nn::AnyModule build(const std::string& architecture, const nlohmann::json& hyper);
std::vector<std::string> architectures();

/// The training loop behind Backend::train (train.cpp).
std::string trainNetwork(const std::string& config_json, const std::vector<ctbmd::learned::Tensor>& images,
                         const std::vector<ctbmd::learned::Tensor>& targets,
                         const std::function<void(const std::string&)>& on_epoch);

/// Parameter count (trainable).
int64_t parameterCount(const torch::nn::Module& m);

}  // namespace ctbmd::nets
