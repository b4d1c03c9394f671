// The published networks: sizes as published, output shapes, trainability, and an exact
// save/load round trip.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "torch/networks.hpp"

using namespace ctbmd::nets;

TEST(Networks, DenseNet121MatchesThePublishedParameterCount) {
  // 2-D DenseNet-121 (growth 32, blocks 6/12/24/16, bn_size 4, compression 0.5) with 3 inputs
  // and 1000 classes has 7,978,856 parameters (Huang et al. 2017; torchvision densenet121).
  DenseNetOptions o = denseNet121bc3d(3, 1000);
  o.dims = 2;
  EXPECT_EQ(parameterCount(*DenseNet(o)), 7978856);
}

TEST(Networks, OutputShapes) {
  torch::NoGradGuard g;
  {
    DenseNet net(denseNet121bc3d(1, 1));
    net->eval();
    EXPECT_EQ(net->forward(torch::randn({2, 1, 32, 32, 32})).sizes(), (std::vector<int64_t>{2, 1}));
  }
  {
    DenseNet net(bccNet(1, 3));
    net->eval();
    auto p = torch::softmax(net->forward(torch::randn({2, 1, 392, 392})), 1);
    EXPECT_EQ(p.sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({2})));
  }
  {
    UNet2d net(UNetOptions{1, 7, 8, 4});
    EXPECT_EQ(net->forward(torch::randn({1, 1, 64, 48})).sizes(), (std::vector<int64_t>{1, 7, 64, 48}));
  }
  {
    DenseUNet3d net(DenseUNetOptions{1, 7, 8, 2, 8, 2});
    EXPECT_EQ(net->forward(torch::randn({1, 1, 16, 16, 16})).sizes(),
              (std::vector<int64_t>{1, 7, 16, 16, 16}));
  }
  {
    CnnRegressor mosaic(CnnRegressorOptions{1, 6, {8, 16, 32}});
    EXPECT_EQ(mosaic->forward(torch::randn({1, 1, 392, 392})).sizes(), (std::vector<int64_t>{1, 6}));
    CnnRegressor mip(CnnRegressorOptions{2, 1, {8, 16}});
    EXPECT_EQ(mip->forward(torch::randn({3, 2, 128, 64})).sizes(), (std::vector<int64_t>{3, 1}));
  }
  for (const auto& a : architectures()) EXPECT_NO_THROW(build(a, {{"channels", {8, 16}}, {"depth", 2}})) << a;
  EXPECT_THROW(build("resnet", {}), std::invalid_argument);
}

TEST(Networks, UNetLearnsAToySegmentation) {
  // A bright square on noise: 60 Adam steps must cut the cross-entropy by more than half.
  torch::manual_seed(3);
  auto x = torch::randn({4, 1, 32, 32}) * 0.3;
  auto y = torch::zeros({4, 32, 32}, torch::kLong);
  x.index_put_({torch::indexing::Slice(), 0, torch::indexing::Slice(8, 20), torch::indexing::Slice(10, 24)},
               2.0);
  y.index_put_({torch::indexing::Slice(), torch::indexing::Slice(8, 20), torch::indexing::Slice(10, 24)}, 1);
  UNet2d net(UNetOptions{1, 2, 8, 2});
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int it = 0; it < 60; ++it) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    opt.step();
    if (it == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Networks, SavedWeightsLoadIntoAFreshNetworkExactly) {
  torch::manual_seed(5);
  DenseNet a(bccNet(1, 3)), b(bccNet(1, 3));
  a->eval();
  b->eval();
  auto file = std::filesystem::temp_directory_path() / ("ctbmd-net-" + std::to_string(::getpid()) + ".pt");
  torch::save(a, file.string());
  torch::load(b, file.string());
  std::filesystem::remove(file);
  torch::NoGradGuard g;
  auto x = torch::randn({2, 1, 96, 96});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}
