// Training loop of the plugin (see Backend::train in ctbmd/learned.hpp): regression (one or
// more outputs per image), classification and segmentation (a label per voxel) on 2-D or 3-D
// inputs; Adam or SGD with momentum, multi-step learning-rate decay, L1/L2, cross-entropy,
// focal and Dice losses, rotation/translation/scaling augmentation (labels warped with the
// same transform, nearest neighbour), a seeded validation split, best-checkpoint selection,
// and exact resumption from the last epoch.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <stdexcept>

#include "ctbmd/learned.hpp"
#include "ctbmd/random.hpp"
#include "networks.hpp"

namespace ctbmd::nets {

using learned::Tensor;
using nlohmann::json;

namespace {

namespace F = torch::nn::functional;

// Random affine (rotation in the axial plane, isotropic scaling, translation) applied to a
// batch [B, C, (D,) H, W]; `labels` [B, (D,) H, W] (may be undefined) get the same transform
// with nearest-neighbour sampling.
void augment(torch::Tensor& x, torch::Tensor& labels, double rot_deg, double translate, double scale) {
  if (rot_deg <= 0 && translate <= 0 && scale <= 0) return;
  const int64_t b = x.size(0);
  const bool vol = x.dim() == 5;
  // From the default generator: seeded and resumable (2-D draws 4 numbers per image, as
  // before 3-D support, so 2-D trainings reproduce).
  auto u = torch::rand({b, vol ? 5 : 4}) * 2 - 1;
  auto ang = u.select(1, 0) * (rot_deg * M_PI / 180.0);
  auto s = 1 + u.select(1, 1) * scale;
  auto tx = u.select(1, 2) * translate * 2, ty = u.select(1, 3) * translate * 2,
       tz = vol ? u.select(1, 4) * translate * 2 : torch::zeros_like(tx);
  auto cos = torch::cos(ang) / s, sin = torch::sin(ang) / s, zero = torch::zeros_like(cos);
  torch::Tensor theta;
  if (vol)  // grid coordinates (x, y, z) = (W, H, D); rotation about the slice axis
    theta = torch::stack({torch::stack({cos, -sin, zero, tx}, 1), torch::stack({sin, cos, zero, ty}, 1),
                          torch::stack({zero, zero, 1 / s, tz}, 1)},
                         1);
  else
    theta = torch::stack({torch::stack({cos, -sin, tx}, 1), torch::stack({sin, cos, ty}, 1)}, 1);
  auto grid = F::affine_grid(theta, x.sizes().vec(), false);
  x = F::grid_sample(x, grid, F::GridSampleFuncOptions().padding_mode(torch::kBorder).align_corners(false));
  if (labels.defined()) {
    auto l = labels.unsqueeze(1).to(torch::kFloat32);
    l = F::grid_sample(
        l, grid,
        F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false));
    labels = l.squeeze(1).round().to(torch::kLong);
  }
}

// Soft Dice over the foreground classes (1..C-1), averaged over classes present in the batch
// or predicted.
torch::Tensor diceLoss(const torch::Tensor& logits, const torch::Tensor& y) {
  const int64_t c = logits.size(1);
  auto p = torch::softmax(logits, 1);
  auto g = F::one_hot(y, c).movedim(-1, 1).to(p.dtype());
  std::vector<int64_t> dims{0};
  for (int64_t i = 2; i < p.dim(); ++i) dims.push_back(i);
  auto inter = (p * g).sum(dims), den = p.sum(dims) + g.sum(dims);
  auto dice = (2 * inter + 1.0) / (den + 1.0);
  return 1 - dice.slice(0, 1).mean();
}

torch::Tensor lossOf(const std::string& task, const std::string& loss, const torch::Tensor& out,
                     const torch::Tensor& y, double alpha, double gamma) {
  if (task == "regress") {
    if (loss == "l1") return F::l1_loss(out, y);
    return F::mse_loss(out, y);
  }
  if (loss == "ce") return F::cross_entropy(out, y);
  if (loss == "dice") return diceLoss(out, y);
  if (loss == "dice-ce") return diceLoss(out, y) + F::cross_entropy(out, y);
  // focal: -alpha (1 - p_t)^gamma log p_t
  auto logp = torch::log_softmax(out, 1).gather(1, y.unsqueeze(1)).squeeze(1);
  return (-alpha * torch::pow(1 - logp.exp(), gamma) * logp).mean();
}

void saveModule(torch::nn::AnyModule& m, const std::filesystem::path& file) {
  torch::serialize::OutputArchive w;
  m.ptr()->save(w);
  w.save_to(file.string() + ".tmp");
  std::filesystem::rename(file.string() + ".tmp", file);
}

}  // namespace

std::string trainNetwork(const std::string& config_json, const std::vector<Tensor>& images,
                         const std::vector<Tensor>& targets,
                         const std::function<void(const std::string&)>& on_epoch) {
  json c = json::parse(config_json);
  const std::string arch = c.at("architecture"), task = c.at("task"), loss = c.at("loss"),
                    opt_name = c.at("optimizer");
  const bool classify = task == "classify", segment = task == "segment", regress = task == "regress";
  if (!classify && !segment && !regress)
    throw std::runtime_error("task must be regress, classify or segment");
  const int epochs = c.at("epochs"), batch = c.at("batch");
  const double lr0 = c.at("lr"), gamma_lr = c.value("gamma", 0.1), wd = c.value("weight_decay", 0.0);
  const std::vector<int> milestones = c.value("milestones", std::vector<int>{});
  const uint64_t seed = c.at("seed");
  const std::filesystem::path out = c.at("out").get<std::string>();
  if (classify && loss != "ce" && loss != "focal")
    throw std::runtime_error("classification needs loss ce or focal");
  if (segment && loss != "dice" && loss != "dice-ce" && loss != "ce")
    throw std::runtime_error("segmentation needs loss dice, dice-ce or ce");
  if (regress && loss != "l1" && loss != "l2") throw std::runtime_error("regression needs loss l1 or l2");
  if (images.size() != targets.size() || images.size() < 4)
    throw std::runtime_error("need at least 4 samples, each with a target");
  // Data.
  std::vector<torch::Tensor> xs, ys;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& t = images[i];
    if (t.shape != images[0].shape) throw std::runtime_error("all training images must have the same shape");
    if (targets[i].shape != targets[0].shape)
      throw std::runtime_error("all training targets must have the same shape");
    if (t.data.size() != t.numel() || targets[i].data.size() != targets[i].numel())
      throw std::runtime_error("tensor data size does not match its shape");
    xs.push_back(torch::from_blob(const_cast<float*>(t.data.data()), t.shape, torch::kFloat32).clone());
    ys.push_back(
        torch::from_blob(const_cast<float*>(targets[i].data.data()), targets[i].shape, torch::kFloat32)
            .clone());
  }
  if (segment && std::vector<int64_t>(images[0].shape.begin() + 1, images[0].shape.end()) != targets[0].shape)
    throw std::runtime_error("segmentation targets must have the image's spatial shape");
  auto X = torch::stack(xs);
  auto Y = torch::stack(ys);
  if (classify) Y = Y.reshape({Y.size(0)}).round().to(torch::kLong);
  if (segment) Y = Y.round().to(torch::kLong);
  if (regress) Y = Y.reshape({Y.size(0), -1});
  // Seeded split (independent of torch's generator, so it is the same on resumption).
  std::vector<int64_t> order(images.size());
  std::iota(order.begin(), order.end(), 0);
  PortableRandom(seed).shuffle(order);  // ctbmd/random.hpp: the same split on every library
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
  const bool resume = c.value("resume", false);
  if (resume) {
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
  // Regression: the network's output layer works in units of each target's SD around its mean
  // (buffers out_shift/out_scale, saved with the weights); losses are computed on that
  // normalised scale so the learning rate means the same for any target range.
  torch::Tensor shift, scale;
  if (regress) {
    shift = Yt.mean(0);
    scale = Yt.size(0) > 1 ? Yt.std(0).clamp_min(1e-6) : torch::ones_like(shift);
    bool found = false;
    for (auto& b : model.ptr()->named_buffers()) {
      const std::string& k = b.key();
      bool is_shift = k.size() >= 9 && k.substr(k.size() - 9) == "out_shift";
      bool is_scale = k.size() >= 9 && k.substr(k.size() - 9) == "out_scale";
      if (!is_shift && !is_scale) continue;
      found = true;
      if (b.value().numel() != shift.numel())
        throw std::runtime_error("the network has " + std::to_string(b.value().numel()) +
                                 " outputs but each target has " + std::to_string(shift.numel()) +
                                 " values (set the architecture's 'outputs')");
      if (!resume) {
        torch::NoGradGuard ng;
        b.value().copy_(is_shift ? shift : scale);
      }
    }
    if (!found) throw std::runtime_error("architecture " + arch + " is not a regressor");
  }
  auto norm = [&](const torch::Tensor& t) { return regress ? (t - shift) / scale : t; };
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
      auto xb = Xt.index_select(0, idx);
      auto yb = Yt.index_select(0, idx);
      torch::Tensor lb = segment ? yb : torch::Tensor();
      augment(xb, lb, aug.value("rotate_deg", 0.0), aug.value("translate", 0.0), aug.value("scale", 0.0));
      if (segment) yb = lb;
      opt->zero_grad();
      auto ob = model.forward(xb);
      auto l = lossOf(task, loss, norm(ob), norm(yb), alpha, fgamma);
      l.backward();
      opt->step();
      tr_sum += l.item<double>() * static_cast<double>(idx.size(0));
      tr_n += idx.size(0);
    }
    model.ptr()->eval();
    double vl = 0, metric = 0;
    {
      torch::NoGradGuard ng;
      std::vector<torch::Tensor> outs;
      for (int64_t i = 0; i < Xv.size(0); i += batch)
        outs.push_back(model.forward(Xv.slice(0, i, std::min<int64_t>(i + batch, Xv.size(0)))));
      auto o = torch::cat(outs);
      vl = lossOf(task, loss, norm(o), norm(Yv), alpha, fgamma).item<double>();
      if (classify) {
        metric = (o.argmax(1) == Yv).to(torch::kFloat64).mean().item<double>();
      } else if (segment) {  // Dice of the foreground (all labels > 0 together)
        auto pr = o.argmax(1) > 0, gt = Yv > 0;
        double inter = (pr & gt).sum().item<double>(),
               den = pr.sum().item<double>() + gt.sum().item<double>();
        metric = den > 0 ? 2 * inter / den : 1.0;
      } else {
        metric = (o - Yv).abs().mean().item<double>();
      }
    }
    if (vl < best) {
      best = vl;
      best_epoch = epoch;
      best_metric = metric;
      saveModule(model, best_file);
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
    const char* mname = classify ? "val_accuracy" : segment ? "val_dice" : "val_mae";
    json e = {{"epoch", epoch + 1},
              {"lr", lr},
              {"train_loss", tr_sum / static_cast<double>(tr_n)},
              {"val_loss", vl},
              {"metric", mname},
              {mname, metric},
              {"best_epoch", best_epoch + 1}};
    on_epoch(e.dump());
  }
  const char* mname = classify ? "val_accuracy" : segment ? "val_dice" : "val_mae";
  return json{{"best_val_loss", best}, {"best_epoch", best_epoch + 1},
              {mname, best_metric},    {"n_train", Xt.size(0)},
              {"n_val", Xv.size(0)},   {"parameters", parameterCount(*model.ptr())}}
      .dump();
}

}  // namespace ctbmd::nets
