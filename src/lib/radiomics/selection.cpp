// Feature selection: z-score, RFE with a ridge classifier, mRMR, LASSO with cross-validated lambda.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "ctbmd/radiomics_selection.hpp"

namespace ctbmd::radiomics {

Scaler Scaler::fit(const Eigen::MatrixXd& x) {
  Scaler s;
  s.mean = x.colwise().mean().transpose();
  s.sd.resize(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const double sd = std::sqrt((x.col(j).array() - s.mean[j]).square().mean());
    s.sd[j] = sd > 0 ? sd : 1.0;
  }
  return s;
}

Eigen::MatrixXd Scaler::apply(const Eigen::MatrixXd& x) const {
  Eigen::MatrixXd out = x;
  for (Eigen::Index j = 0; j < x.cols(); ++j) out.col(j) = (x.col(j).array() - mean[j]) / sd[j];
  return out;
}

Eigen::MatrixXd ridgeClassifierCoef(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes,
                                    double alpha) {
  const Eigen::Index n = x.rows();
  const int cols = classes == 2 ? 1 : classes;
  Eigen::MatrixXd t = Eigen::MatrixXd::Constant(n, cols, -1.0);
  for (Eigen::Index i = 0; i < n; ++i) {
    if (classes == 2) {
      t(i, 0) = y[std::size_t(i)] == 1 ? 1.0 : -1.0;
    } else {
      t(i, y[std::size_t(i)]) = 1.0;
    }
  }
  const Eigen::MatrixXd xc = x.rowwise() - x.colwise().mean();
  const Eigen::MatrixXd tc = t.rowwise() - t.colwise().mean();
  if (x.cols() <= n) {
    Eigen::MatrixXd a = xc.transpose() * xc;
    a.diagonal().array() += alpha;
    return a.ldlt().solve(xc.transpose() * tc);
  }
  Eigen::MatrixXd k = xc * xc.transpose();  // kernel form when features outnumber rows
  k.diagonal().array() += alpha;
  return xc.transpose() * k.ldlt().solve(tc);
}

std::vector<int> recursiveFeatureElimination(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes,
                                             int keep, int step, double alpha) {
  if (keep < 1 || step < 1) throw std::invalid_argument("RFE: keep and step must be >= 1");
  std::vector<int> alive(std::size_t(x.cols()));
  std::iota(alive.begin(), alive.end(), 0);
  while (int(alive.size()) > keep) {
    Eigen::MatrixXd sub(x.rows(), Eigen::Index(alive.size()));
    for (std::size_t j = 0; j < alive.size(); ++j) sub.col(Eigen::Index(j)) = x.col(alive[j]);
    const Eigen::MatrixXd w = ridgeClassifierCoef(sub, y, classes, alpha);
    std::vector<double> importance(alive.size());
    for (std::size_t j = 0; j < alive.size(); ++j) importance[j] = w.row(Eigen::Index(j)).squaredNorm();
    std::vector<std::size_t> order(alive.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return importance[a] < importance[b]; });
    const int drop = std::min(step, int(alive.size()) - keep);
    std::vector<bool> gone(alive.size(), false);
    for (int k = 0; k < drop; ++k) gone[order[std::size_t(k)]] = true;
    std::vector<int> next;
    for (std::size_t j = 0; j < alive.size(); ++j)
      if (!gone[j]) next.push_back(alive[j]);
    alive.swap(next);
  }
  return alive;
}

namespace {
std::vector<int> binned(const Eigen::VectorXd& v, int bins) {
  const double lo = v.minCoeff(), hi = v.maxCoeff();
  std::vector<int> b(std::size_t(v.size()), 0);
  if (hi <= lo) return b;
  for (Eigen::Index i = 0; i < v.size(); ++i)
    b[std::size_t(i)] = std::min(bins - 1, int(std::floor((v[i] - lo) / (hi - lo) * bins)));
  return b;
}

double mutualInformation(const std::vector<int>& a, int na, const std::vector<int>& b, int nb) {
  std::vector<double> joint(std::size_t(na) * std::size_t(nb), 0.0), pa(std::size_t(na), 0.0),
      pb(std::size_t(nb), 0.0);
  const double n = double(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    joint[std::size_t(a[i]) * std::size_t(nb) + std::size_t(b[i])] += 1 / n;
    pa[std::size_t(a[i])] += 1 / n;
    pb[std::size_t(b[i])] += 1 / n;
  }
  double mi = 0;
  for (int i = 0; i < na; ++i)
    for (int j = 0; j < nb; ++j) {
      const double p = joint[std::size_t(i) * std::size_t(nb) + std::size_t(j)];
      if (p > 0) mi += p * std::log(p / (pa[std::size_t(i)] * pb[std::size_t(j)]));
    }
  return mi;
}
}  // namespace

std::vector<int> mrmr(const Eigen::MatrixXd& x, const std::vector<int>& y, int classes, int keep, int bins) {
  const int p = int(x.cols());
  keep = std::min(keep, p);
  std::vector<std::vector<int>> b(static_cast<std::size_t>(p));
  for (int j = 0; j < p; ++j) b[std::size_t(j)] = binned(x.col(j), bins);
  std::vector<double> relevance(static_cast<std::size_t>(p));
  for (int j = 0; j < p; ++j)
    relevance[std::size_t(j)] = mutualInformation(b[std::size_t(j)], bins, y, classes);
  std::vector<int> chosen;
  std::vector<double> redundancy(static_cast<std::size_t>(p), 0.0);  // sum of MI with the chosen
  std::vector<bool> taken(static_cast<std::size_t>(p), false);
  while (int(chosen.size()) < keep) {
    int best = -1;
    double best_score = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < p; ++j) {
      if (taken[std::size_t(j)]) continue;
      const double score = relevance[std::size_t(j)] -
                           (chosen.empty() ? 0.0 : redundancy[std::size_t(j)] / double(chosen.size()));
      if (score > best_score + 1e-12) {
        best_score = score;
        best = j;
      }
    }
    chosen.push_back(best);
    taken[std::size_t(best)] = true;
    for (int j = 0; j < p; ++j)
      if (!taken[std::size_t(j)])
        redundancy[std::size_t(j)] += mutualInformation(b[std::size_t(j)], bins, b[std::size_t(best)], bins);
  }
  return chosen;
}

Eigen::VectorXd lassoFit(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, double alpha,
                         const Eigen::VectorXd* warm, double tol, int max_iter) {
  const Eigen::Index n = x.rows(), p = x.cols();
  const Eigen::MatrixXd xc = x.rowwise() - x.colwise().mean();
  const Eigen::VectorXd yc = y.array() - y.mean();
  Eigen::VectorXd w = warm ? *warm : Eigen::VectorXd::Zero(p);
  Eigen::VectorXd r = yc - xc * w;
  const Eigen::VectorXd norm2 = xc.colwise().squaredNorm().transpose();
  const double thresh = alpha * double(n);
  for (int it = 0; it < max_iter; ++it) {
    double max_change = 0, max_w = 0;
    for (Eigen::Index j = 0; j < p; ++j) {
      if (norm2[j] == 0) continue;
      const double old = w[j];
      const double rho = xc.col(j).dot(r) + old * norm2[j];
      const double nw = (rho > thresh ? rho - thresh : rho < -thresh ? rho + thresh : 0.0) / norm2[j];
      if (nw != old) {
        r -= (nw - old) * xc.col(j);
        w[j] = nw;
      }
      max_change = std::max(max_change, std::fabs(nw - old));
      max_w = std::max(max_w, std::fabs(nw));
    }
    if (max_change <= tol * std::max(1.0, max_w)) break;
  }
  return w;
}

LassoCvResult lassoCv(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, int folds, int n_alphas,
                      double eps) {
  const Eigen::Index n = x.rows();
  if (folds < 2 || n < folds)
    throw std::invalid_argument("LASSO CV needs at least as many rows as folds (>= 2)");
  LassoCvResult res;
  const Eigen::MatrixXd xc = x.rowwise() - x.colwise().mean();
  const Eigen::VectorXd yc = y.array() - y.mean();
  const double alpha_max = (xc.transpose() * yc).cwiseAbs().maxCoeff() / double(n);
  for (int k = 0; k < n_alphas; ++k)  // alpha_max down to alpha_max * eps, evenly in log
    res.alphas.push_back(alpha_max * std::pow(10.0, std::log10(eps) * double(k) / (n_alphas - 1)));
  res.cv_mse.assign(res.alphas.size(), 0.0);
  Eigen::Index start = 0;
  for (int f = 0; f < folds; ++f) {
    const Eigen::Index size = n / folds + (f < n % folds ? 1 : 0);
    std::vector<Eigen::Index> train, test;
    for (Eigen::Index i = 0; i < n; ++i) (i >= start && i < start + size ? test : train).push_back(i);
    start += size;
    Eigen::MatrixXd xt(Eigen::Index(train.size()), x.cols()), xv(Eigen::Index(test.size()), x.cols());
    Eigen::VectorXd yt(Eigen::Index(train.size())), yv(Eigen::Index(test.size()));
    for (std::size_t i = 0; i < train.size(); ++i) {
      xt.row(Eigen::Index(i)) = x.row(train[i]);
      yt[Eigen::Index(i)] = y[train[i]];
    }
    for (std::size_t i = 0; i < test.size(); ++i) {
      xv.row(Eigen::Index(i)) = x.row(test[i]);
      yv[Eigen::Index(i)] = y[test[i]];
    }
    const Eigen::RowVectorXd xmean = xt.colwise().mean();
    const double ymean = yt.mean();
    Eigen::VectorXd w = Eigen::VectorXd::Zero(x.cols());
    for (std::size_t a = 0; a < res.alphas.size(); ++a) {
      w = lassoFit(xt, yt, res.alphas[a], &w);
      const double b = ymean - xmean.dot(w);
      res.cv_mse[a] += ((xv * w).array() + b - yv.array()).square().mean() / folds;
    }
  }
  const auto best = std::min_element(res.cv_mse.begin(), res.cv_mse.end()) - res.cv_mse.begin();
  res.alpha = res.alphas[std::size_t(best)];
  res.coef = lassoFit(x, y, res.alpha);
  res.intercept = y.mean() - x.colwise().mean().dot(res.coef);
  return res;
}

}  // namespace ctbmd::radiomics
