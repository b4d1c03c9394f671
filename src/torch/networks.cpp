// The published networks (see networks.hpp).
#include "networks.hpp"

#include <stdexcept>

namespace ctbmd::nets {

namespace nn = torch::nn;

namespace {

nn::AnyModule conv(int d, int in, int out, int k, int stride = 1, int pad = 0, bool bias = false) {
  if (d == 2)
    return nn::AnyModule(nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias)));
  return nn::AnyModule(nn::Conv3d(nn::Conv3dOptions(in, out, k).stride(stride).padding(pad).bias(bias)));
}
nn::AnyModule bn(int d, int c) {
  if (d == 2) return nn::AnyModule(nn::BatchNorm2d(c));
  return nn::AnyModule(nn::BatchNorm3d(c));
}
nn::AnyModule relu() { return nn::AnyModule(nn::ReLU(nn::ReLUOptions().inplace(true))); }
nn::AnyModule avgPool(int d, int k) {
  if (d == 2) return nn::AnyModule(nn::AvgPool2d(nn::AvgPool2dOptions(k).stride(k)));
  return nn::AnyModule(nn::AvgPool3d(nn::AvgPool3dOptions(k).stride(k)));
}
nn::AnyModule maxPool(int d, int k, int s, int p) {
  if (d == 2) return nn::AnyModule(nn::MaxPool2d(nn::MaxPool2dOptions(k).stride(s).padding(p)));
  return nn::AnyModule(nn::MaxPool3d(nn::MaxPool3dOptions(k).stride(s).padding(p)));
}

// One DenseNet-BC layer: BN-ReLU-Conv1 (bottleneck) - BN-ReLU-Conv3, concatenated to its input.
// bottleneck == 0: BN-ReLU-Conv3 only (the dense U-Net's layers).
class DenseLayerImpl : public nn::Module {
 public:
  DenseLayerImpl(int d, int in, int growth, int bottleneck) {
    Seq s;
    if (bottleneck > 0) {
      s->push_back("norm1", bn(d, in));
      s->push_back("relu1", relu());
      s->push_back("conv1", conv(d, in, bottleneck, 1));
      s->push_back("norm2", bn(d, bottleneck));
      s->push_back("relu2", relu());
      s->push_back("conv2", conv(d, bottleneck, growth, 3, 1, 1));
    } else {
      s->push_back("norm1", bn(d, in));
      s->push_back("relu1", relu());
      s->push_back("conv1", conv(d, in, growth, 3, 1, 1));
    }
    body_ = register_module("body", s);
  }
  torch::Tensor forward(torch::Tensor x) { return torch::cat({x, body_->forward(x)}, 1); }

 private:
  Seq body_{nullptr};
};
TORCH_MODULE(DenseLayer);

// A dense block: `layers` dense layers; returns the concatenation (in + layers * growth).
Seq denseBlock(int d, int in, int layers, int growth, int bottleneck) {
  Seq s;
  for (int i = 0; i < layers; ++i)
    s->push_back("layer" + std::to_string(i + 1), DenseLayer(d, in + i * growth, growth, bottleneck));
  return s;
}

Seq doubleConv2d(int in, int out) {
  Seq s;
  s->push_back(nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
  s->push_back(nn::BatchNorm2d(out));
  s->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
  s->push_back(nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
  s->push_back(nn::BatchNorm2d(out));
  s->push_back(nn::ReLU(nn::ReLUOptions().inplace(true)));
  return s;
}

// Dense block + 1x1x1 reduction (+ BN-ReLU): the dense U-Net's level.
Seq denseLevel3d(int in, int layers, int growth, int out) {
  Seq s;
  s->push_back("dense", denseBlock(3, in, layers, growth, 0));
  s->push_back("norm", nn::BatchNorm3d(in + layers * growth));
  s->push_back("relu", nn::ReLU(nn::ReLUOptions().inplace(true)));
  s->push_back("reduce", nn::Conv3d(nn::Conv3dOptions(in + layers * growth, out, 1).bias(false)));
  return s;
}

}  // namespace

// ---- DenseNet-BC ----------------------------------------------------------------------------
DenseNetImpl::DenseNetImpl(const DenseNetOptions& o) : o_(o) {
  if (o.dims != 2 && o.dims != 3) throw std::invalid_argument("DenseNet: dims must be 2 or 3");
  const int d = o.dims;
  int c = o.stem_channels > 0 ? o.stem_channels : 2 * o.growth;
  Seq f;
  if (o.stem_kernel == 7) {
    f->push_back("conv0", conv(d, o.in_channels, c, 7, 2, 3));
    f->push_back("norm0", bn(d, c));
    f->push_back("relu0", relu());
    f->push_back("pool0", maxPool(d, 3, 2, 1));
  } else {
    f->push_back("conv0", conv(d, o.in_channels, c, 3, 1, 1));
  }
  for (size_t b = 0; b < o.blocks.size(); ++b) {
    f->push_back("denseblock" + std::to_string(b + 1),
                 denseBlock(d, c, o.blocks[b], o.growth, o.bn_size * o.growth));
    c += o.blocks[b] * o.growth;
    if (b + 1 < o.blocks.size()) {
      int out = static_cast<int>(c * o.compression);
      Seq t;
      t->push_back("norm", bn(d, c));
      t->push_back("relu", relu());
      t->push_back("conv", conv(d, c, out, 1));
      t->push_back("pool", avgPool(d, 2));
      f->push_back("transition" + std::to_string(b + 1), t);
      c = out;
    }
  }
  f->push_back("norm5", bn(d, c));
  features_ = register_module("features", f);
  head_ = register_module("classifier", nn::Linear(c, o.outputs));
  out_scale_ = register_buffer("out_scale", torch::ones({o.outputs}));
  out_shift_ = register_buffer("out_shift", torch::zeros({o.outputs}));
}

torch::Tensor DenseNetImpl::forward(torch::Tensor x) {
  x = torch::relu(features_->forward(x));
  std::vector<int64_t> dims;
  for (int64_t i = 2; i < x.dim(); ++i) dims.push_back(i);
  x = x.mean(dims);  // global average pooling
  return head_->forward(x) * out_scale_ + out_shift_;
}

DenseNetOptions denseNet121bc3d(int in_channels, int outputs) {
  DenseNetOptions o;
  o.dims = 3;
  o.in_channels = in_channels;
  o.outputs = outputs;
  return o;  // growth 32, blocks 6/12/24/16, bn_size 4, compression 0.5, 64-channel 7^3 stem
}

DenseNetOptions bccNet(int in_channels, int classes) {
  DenseNetOptions o;
  o.dims = 2;
  o.in_channels = in_channels;
  o.outputs = classes;
  o.growth = 12;
  o.blocks = {1, 2, 4, 2};
  o.stem_channels = 24;  // 2 x growth, as DenseNet-BC
  o.stem_kernel = 7;     // a stride-4 stem: the 392 x 392 mosaic is large for a small network
  return o;
}

// ---- U-Net 2-D ------------------------------------------------------------------------------------
UNet2dImpl::UNet2dImpl(const UNetOptions& o) : o_(o) {
  int c = o.in_channels;
  for (int i = 0; i < o.depth; ++i) {
    int out = o.base << i;
    down_.push_back(register_module("down" + std::to_string(i), doubleConv2d(c, out)));
    c = out;
  }
  bottom_ = register_module("bottom", doubleConv2d(c, o.base << o.depth));
  c = o.base << o.depth;
  for (int i = o.depth - 1; i >= 0; --i) {
    int out = o.base << i;
    up_.push_back(register_module("up" + std::to_string(i),
                                  nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c, out, 2).stride(2))));
    up_conv_.push_back(register_module("upconv" + std::to_string(i), doubleConv2d(2 * out, out)));
    c = out;
  }
  out_ = register_module("out", nn::Conv2d(nn::Conv2dOptions(c, o.classes, 1)));
}

torch::Tensor UNet2dImpl::forward(torch::Tensor x) {
  std::vector<torch::Tensor> skips;
  for (auto& d : down_) {
    x = d->forward(x);
    skips.push_back(x);
    x = torch::max_pool2d(x, 2);
  }
  x = bottom_->forward(x);
  for (size_t i = 0; i < up_.size(); ++i) {
    x = up_[i]->forward(x);
    x = up_conv_[i]->forward(torch::cat({skips[skips.size() - 1 - i], x}, 1));
  }
  return out_->forward(x);
}

// ---- dense U-Net 3-D ------------------------------------------------------------------------------
DenseUNet3dImpl::DenseUNet3dImpl(const DenseUNetOptions& o) : o_(o) {
  stem_ =
      register_module("stem", nn::Conv3d(nn::Conv3dOptions(o.in_channels, o.base, 3).padding(1).bias(false)));
  int c = o.base;
  for (int i = 0; i < o.depth; ++i) {
    int out = o.base << i;
    enc_.push_back(register_module("enc" + std::to_string(i), denseLevel3d(c, o.layers, o.growth, out)));
    c = out;
  }
  bottom_ = register_module("bottom", denseLevel3d(c, o.layers, o.growth, o.base << o.depth));
  c = o.base << o.depth;
  for (int i = o.depth - 1; i >= 0; --i) {
    int out = o.base << i;
    up_.push_back(register_module("up" + std::to_string(i),
                                  nn::ConvTranspose3d(nn::ConvTranspose3dOptions(c, out, 2).stride(2))));
    dec_.push_back(
        register_module("dec" + std::to_string(i), denseLevel3d(2 * out, o.layers, o.growth, out)));
    c = out;
  }
  out_ = register_module("out", nn::Conv3d(nn::Conv3dOptions(c, o.classes, 1)));
}

torch::Tensor DenseUNet3dImpl::forward(torch::Tensor x) {
  x = stem_->forward(x);
  std::vector<torch::Tensor> skips;
  for (auto& e : enc_) {
    x = e->forward(x);
    skips.push_back(x);
    x = torch::max_pool3d(x, 2);
  }
  x = bottom_->forward(x);
  for (size_t i = 0; i < up_.size(); ++i) {
    x = up_[i]->forward(x);
    x = dec_[i]->forward(torch::cat({skips[skips.size() - 1 - i], x}, 1));
  }
  return out_->forward(x);
}

// ---- CNN regressor ----------------------------------------------------------------------------------
CnnRegressorImpl::CnnRegressorImpl(const CnnRegressorOptions& o) {
  Seq f;
  int c = o.in_channels;
  for (size_t i = 0; i < o.channels.size(); ++i) {
    f->push_back("stage" + std::to_string(i), doubleConv2d(c, o.channels[i]));
    f->push_back("pool" + std::to_string(i), nn::MaxPool2d(nn::MaxPool2dOptions(2)));
    c = o.channels[i];
  }
  features_ = register_module("features", f);
  head_ = register_module("head", nn::Linear(c, o.outputs));
  out_scale_ = register_buffer("out_scale", torch::ones({o.outputs}));
  out_shift_ = register_buffer("out_shift", torch::zeros({o.outputs}));
}

torch::Tensor CnnRegressorImpl::forward(torch::Tensor x) {
  x = features_->forward(x).mean({2, 3});
  return head_->forward(x) * out_scale_ + out_shift_;
}

// ---- registry -------------------------------------------------------------------------------------
std::vector<std::string> architectures() {
  return {"densenet121bc-3d", "bccnet", "unet2d", "dense-unet3d", "mosaic-cnn", "mip-localizer"};
}

torch::nn::AnyModule build(const std::string& a, const nlohmann::json& h) {
  auto geti = [&](const char* k, int def) { return h.contains(k) ? h[k].get<int>() : def; };
  if (a == "densenet121bc-3d" || a == "bccnet") {
    DenseNetOptions o = a == "bccnet" ? bccNet(geti("in_channels", 1), geti("classes", 3))
                                      : denseNet121bc3d(geti("in_channels", 1), geti("outputs", 1));
    o.growth = geti("growth", o.growth);
    if (h.contains("blocks")) o.blocks = h["blocks"].get<std::vector<int>>();
    if (h.contains("compression")) o.compression = h["compression"].get<double>();
    o.stem_channels = geti("stem_channels", o.stem_channels);
    return nn::AnyModule(DenseNet(o));
  }
  if (a == "unet2d") {
    UNetOptions o;
    o.in_channels = geti("in_channels", 1);
    o.classes = geti("classes", 7);
    o.base = geti("base_channels", 16);
    o.depth = geti("depth", 4);
    return nn::AnyModule(UNet2d(o));
  }
  if (a == "dense-unet3d") {
    DenseUNetOptions o;
    o.in_channels = geti("in_channels", 1);
    o.classes = geti("classes", 7);
    o.growth = geti("growth", 8);
    o.layers = geti("layers", 4);
    o.base = geti("base_channels", 16);
    o.depth = geti("depth", 3);
    return nn::AnyModule(DenseUNet3d(o));
  }
  if (a == "mosaic-cnn" || a == "mip-localizer") {
    CnnRegressorOptions o;
    o.in_channels = geti("in_channels", a == "mip-localizer" ? 2 : 1);
    o.outputs = geti("outputs", a == "mip-localizer" ? 1 : 1);
    if (h.contains("channels")) o.channels = h["channels"].get<std::vector<int>>();
    return nn::AnyModule(CnnRegressor(o));
  }
  throw std::invalid_argument("unknown architecture '" + a + "'");
}

int64_t parameterCount(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

}  // namespace ctbmd::nets
