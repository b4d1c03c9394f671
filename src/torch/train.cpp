// Training loop of the plugin (see Backend::train in ctbmd/learned.hpp): image -> scalar
// regression or classification, Adam or SGD with momentum, multi-step learning-rate decay,
// L1/L2/cross-entropy/focal losses, rotation/translation/scaling augmentation, a seeded
// validation split, best-checkpoint selection, and exact resumption from the last epoch.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <stdexcept>

#include "ctbmd/learned.hpp"
#include "networks.hpp"

namespace ctbmd::nets {

using learned::Tensor;
using nlohmann::json;

namespace {

torch::Tensor augment(torch::Tensor x, double rot_deg, double translate, double scale) {
  if (rot_deg <= 0 && translate <= 0 && scale <= 0) return x;
  const int64_t b = x.size(0);
  auto u = torch::rand({b, 4}) * 2 - 1;  // from the default generator: seeded and resumable
  auto ang = u.select(1, 0) * (rot_deg * M_PI / 180.0);
  auto s = 1 + u.select(1, 1) * scale;
  auto tx = u.select(1, 2) * translate * 2, ty = u.select(1, 3) * translate * 2;
  auto cos = torch::cos(ang) / s, sin = torch::sin(ang) / s;
  auto theta = torch::stack({torch::stack({cos, -sin, tx}, 1), torch::stack({sin, cos, ty}, 1)}, 1);
  auto grid = torch::nn::functional::affine_grid(theta, x.sizes().vec(), false);
  return torch::nn::functional::grid_sample(
      x, grid,
      torch::nn::functional::GridSampleFuncOptions().padding_mode(torch::kBorder).align_corners(false));
}

torch::Tensor lossOf(const std::string& loss, const torch::Tensor& out, const torch::Tensor& y, double alpha,
                     double gamma) {
  namespace F = torch::nn::functional;
  if (loss == "l1") return F::l1_loss(out.squeeze(1), y);
  if (loss == "l2") return F::mse_loss(out.squeeze(1), y);
  if (loss == "ce") return F::cross_entropy(out, y);
  // focal: -alpha (1 - p_t)^gamma log p_t
  auto logp = torch::log_softmax(out, 1).gather(1, y.unsqueeze(1)).squeeze(1);
  return (-alpha * torch::pow(1 - logp.exp(), gamma) * logp).mean();
}

}  // namespace

std::string trainNetwork(const std::string& config_json, const std::vector<Tensor>& images,
                         const std::vector<float>& targets,
                         const std::function<void(const std::string&)>& on_epoch) {
  json c = json::parse(config_json);
  const std::string arch = c.at("architecture"), task = c.at("task"), loss = c.at("loss"),
                    opt_name = c.at("optimizer");
  const bool classify = task == "classify";
  const int epochs = c.at("epochs"), batch = c.at("batch");
  const double lr0 = c.at("lr"), gamma_lr = c.value("gamma", 0.1), wd = c.value("weight_decay", 0.0);
  const std::vector<int> milestones = c.value("milestones", std::vector<int>{});
  const uint64_t seed = c.at("seed");
  const std::filesystem::path out = c.at("out").get<std::string>();
  if (classify && loss != "ce" && loss != "focal")
    throw std::runtime_error("classification needs loss ce or focal");
  if (!classify && loss != "l1" && loss != "l2") throw std::runtime_error("regression needs loss l1 or l2");
  if (images.size() != targets.size() || images.size() < 4)
    throw std::runtime_error("need at least 4 samples");
  // Data.
  std::vector<torch::Tensor> xs;
  for (const auto& t : images) {
    if (t.shape != images[0].shape) throw std::runtime_error("all training images must have the same shape");
    xs.push_back(torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32).clone());
  }
  auto X = torch::stack(xs);
  auto Y = classify ? torch::tensor(std::vector<int64_t>(targets.begin(), targets.end()), torch::kLong)
                    : torch::tensor(targets, torch::kFloat32);
  // Seeded split (independent of torch's generator, so it is the same on resumption).
  std::vector<int64_t> order(images.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  size_t n_val =
      static_cast<size_t>(std::lround(c.value("val_fraction", 0.2) * static_cast<double>(order.size())));
  n_val = std::clamp<size_t>(n_val, 1, order.size() - 2);
  auto val_idx = torch::tensor(std::vector<int64_t>(order.begin(), order.begin() + static_cast<long>(n_val)));
  auto tr_idx = torch::tensor(std::vector<int64_t>(order.begin() + static_cast<long>(n_val), order.end()));
  auto Xv = X.index_select(0, val_idx), Yv = Y.index_select(0, val_idx);
  auto Xt = X.index_select(0, tr_idx), Yt = Y.index_select(0, tr_idx);
  // Model and optimiser.
  torch::manual_seed(seed);
  auto model = build(arch, c.value("hyper", json::object()));
  auto params = model.ptr()->parameters();
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (opt_name == "adam")
    opt = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr0).weight_decay(wd));
  else if (opt_name == "sgd")
    opt = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(lr0).momentum(c.value("momentum", 0.9)).weight_decay(wd));
  else
    throw std::runtime_error("optimizer must be adam or sgd");
  int start = 0, best_epoch = -1;
  double best = INFINITY, best_metric = NAN;
  const auto ckpt = out / "checkpoint.pt", best_file = out / "weights.pt";
  at::Generator gen = at::globalContext().defaultGenerator(at::kCPU);  // a handle: shares the state
  if (c.value("resume", false)) {
    if (!std::filesystem::exists(ckpt))
      throw std::runtime_error("--resume: no checkpoint.pt in " + out.string());
    torch::serialize::InputArchive a, am, ao;
    a.load_from(ckpt.string());
    a.read("model", am);
    a.read("optimizer", ao);
    model.ptr()->load(am);
    opt->load(ao);
    torch::Tensor e, b, be, bm, st;
    a.read("epoch", e);
    a.read("best", b);
    a.read("best_epoch", be);
    a.read("best_metric", bm);
    a.read("rng", st);
    start = static_cast<int>(e.item<int64_t>()) + 1;
    best = b.item<double>();
    best_epoch = static_cast<int>(be.item<int64_t>());
    best_metric = bm.item<double>();
    gen.set_state(st);
  }
  // Regression: the network's output layer works in units of the training targets' SD around
  // their mean (buffers out_shift/out_scale, saved with the weights); losses are computed on
  // that normalised scale so the learning rate means the same for any target range.
  double shift = 0, scale = 1;
  if (!classify) {
    shift = Yt.mean().item<double>();
    scale = std::max(1e-6, Yt.std().item<double>());
    if (!c.value("resume", false)) {
      torch::NoGradGuard ng;
      for (auto& b : model.ptr()->named_buffers()) {
        if (b.key().size() >= 9 && b.key().substr(b.key().size() - 9) == "out_shift") b.value().fill_(shift);
        if (b.key().size() >= 9 && b.key().substr(b.key().size() - 9) == "out_scale") b.value().fill_(scale);
      }
    }
  }
  auto norm = [&](const torch::Tensor& t) { return classify ? t : (t - shift) / scale; };
  const double alpha = c.value("focal_alpha", 0.6), fgamma = c.value("focal_gamma", 2.0);
  const json aug = c.value("augment", json::object());
  for (int epoch = start; epoch < epochs; ++epoch) {
    int passed = 0;
    for (int m : milestones) passed += epoch >= m;
    double lr = lr0 * std::pow(gamma_lr, passed);
    for (auto& g : opt->param_groups()) g.options().set_lr(lr);
    model.ptr()->train();
    auto perm = torch::randperm(Xt.size(0), torch::kLong);
    double tr_sum = 0;
    int64_t tr_n = 0;
    for (int64_t i = 0; i < Xt.size(0); i += batch) {
      auto idx = perm.slice(0, i, std::min<int64_t>(i + batch, Xt.size(0)));
      auto xb = augment(Xt.index_select(0, idx), aug.value("rotate_deg", 0.0), aug.value("translate", 0.0),
                        aug.value("scale", 0.0));
      auto yb = Yt.index_select(0, idx);
      opt->zero_grad();
      auto ob = model.forward(xb);
      auto l =
          classify ? lossOf(loss, ob, yb, alpha, fgamma) : lossOf(loss, norm(ob), norm(yb), alpha, fgamma);
      l.backward();
      opt->step();
      tr_sum += l.item<double>() * static_cast<double>(idx.size(0));
      tr_n += idx.size(0);
    }
    model.ptr()->eval();
    double vl, metric;
    {
      torch::NoGradGuard ng;
      auto o = model.forward(Xv);
      vl = (classify ? lossOf(loss, o, Yv, alpha, fgamma) : lossOf(loss, norm(o), norm(Yv), alpha, fgamma))
               .item<double>();
      metric = classify ? (o.argmax(1) == Yv).to(torch::kFloat64).mean().item<double>()
                        : (o.squeeze(1) - Yv).abs().mean().item<double>();
    }
    if (vl < best) {
      best = vl;
      best_epoch = epoch;
      best_metric = metric;
      torch::serialize::OutputArchive w;
      model.ptr()->save(w);
      w.save_to(best_file.string());
    }
    torch::serialize::OutputArchive a, am, ao;
    model.ptr()->save(am);
    opt->save(ao);
    a.write("model", am);
    a.write("optimizer", ao);
    a.write("epoch", torch::tensor(static_cast<int64_t>(epoch)));
    a.write("best", torch::tensor(best, torch::kFloat64));
    a.write("best_epoch", torch::tensor(static_cast<int64_t>(best_epoch)));
    a.write("best_metric", torch::tensor(best_metric, torch::kFloat64));
    a.write("rng", gen.get_state());
    a.save_to((ckpt.string() + ".tmp"));
    std::filesystem::rename(ckpt.string() + ".tmp", ckpt);
    json e = {{"epoch", epoch + 1},
              {"lr", lr},
              {"train_loss", tr_sum / static_cast<double>(tr_n)},
              {"val_loss", vl},
              {classify ? "val_accuracy" : "val_mae", metric},
              {"best_epoch", best_epoch + 1}};
    on_epoch(e.dump());
  }
  return json{{"best_val_loss", best},
              {"best_epoch", best_epoch + 1},
              {classify ? "val_accuracy" : "val_mae", best_metric},
              {"n_train", Xt.size(0)},
              {"n_val", Xv.size(0)},
              {"parameters", parameterCount(*model.ptr())}}
      .dump();
}

}  // namespace ctbmd::nets
