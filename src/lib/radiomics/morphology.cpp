// IBSI 1 section 3.1: morphological features. The surface is the marching-cubes mesh of the
// morphological mask at iso-level 0.5 (ITK's BinaryMask3DMeshSource, vertices on the edge
// midpoints between mask and background voxel centres, the mask padded by one empty voxel so
// that a mask touching the patch's edge is closed). Convex hull by Qhull. Voxel-based
// features (PCA axes, centre of mass shift, Moran's I, Geary's C) use voxel centres in mm.
#include <itkBinaryMask3DMeshSource.h>
#include <itkImage.h>
#include <itkMesh.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

extern "C" {
#include <libqhull_r/qhull_ra.h>
}

#include "radiomics/common.hpp"

namespace ctbmd::radiomics {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
using Vec3 = Eigen::Vector3d;

struct Mesh {
  std::vector<Vec3> points;
  std::vector<std::array<std::size_t, 3>> triangles;
};

// Trilinear interpolation of the (unpadded) morphological mask at a point in mm, voxel centres
// at index * spacing; 0 outside the patch.
double maskAt(const RoiImage& roi, const Vec3& p) {
  const Grid& g = roi.grid;
  double f[3];
  int i0[3];
  for (int a = 0; a < 3; ++a) {
    const double c = p[a] / g.spacing[std::size_t(a)];
    i0[a] = int(std::floor(c));
    f[a] = c - i0[a];
  }
  double v = 0;
  for (int dz = 0; dz <= 1; ++dz)
    for (int dy = 0; dy <= 1; ++dy)
      for (int dx = 0; dx <= 1; ++dx) {
        const int x = i0[0] + dx, y = i0[1] + dy, z = i0[2] + dz;
        if (!g.inside(x, y, z) || !roi.morph_mask[g.index(x, y, z)]) continue;
        v += (dx ? f[0] : 1 - f[0]) * (dy ? f[1] : 1 - f[1]) * (dz ? f[2] : 1 - f[2]);
      }
  return v;
}

Mesh surfaceMesh(const RoiImage& roi) {
  using MaskImage = itk::Image<unsigned char, 3>;
  using MeshType = itk::Mesh<double, 3>;
  const Grid& g = roi.grid;
  auto img = MaskImage::New();
  MaskImage::RegionType region;
  region.SetSize({std::size_t(g.nx + 2), std::size_t(g.ny + 2), std::size_t(g.nz + 2)});
  img->SetRegions(region);
  MaskImage::SpacingType sp;
  MaskImage::PointType origin;
  for (unsigned a = 0; a < 3; ++a) {
    sp[a] = g.spacing[a];
    origin[a] = -g.spacing[a];  // padded index 1 is the patch's voxel 0 at 0 mm
  }
  img->SetSpacing(sp);
  img->SetOrigin(origin);
  img->Allocate(true);
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x)
        if (roi.morph_mask[g.index(x, y, z)]) img->SetPixel({x + 1, y + 1, z + 1}, 1);
  auto src = itk::BinaryMask3DMeshSource<MaskImage, MeshType>::New();
  src->SetInput(img);
  src->SetObjectValue(1);
  src->Update();
  const MeshType* out = src->GetOutput();
  Mesh mesh;
  mesh.points.resize(out->GetNumberOfPoints());
  for (auto it = out->GetPoints()->Begin(); it != out->GetPoints()->End(); ++it) {
    const auto& p = it.Value();
    mesh.points[it.Index()] = Vec3(p[0], p[1], p[2]);
  }
  for (auto it = out->GetCells()->Begin(); it != out->GetCells()->End(); ++it) {
    const auto* cell = it.Value();
    if (cell->GetNumberOfPoints() != 3) continue;
    auto ids = cell->GetPointIdsContainer();
    mesh.triangles.push_back({std::size_t(ids[0]), std::size_t(ids[1]), std::size_t(ids[2])});
  }
  // Orient every face outwards (away from the mask) so that the divergence-theorem volume is
  // exact whatever winding the mesh source produced.
  const double eps = 0.25 * std::min({g.spacing[0], g.spacing[1], g.spacing[2]});
  for (auto& t : mesh.triangles) {
    const Vec3 &a = mesh.points[t[0]], &b = mesh.points[t[1]], &c = mesh.points[t[2]];
    Vec3 n = (b - a).cross(c - a);
    if (n.norm() == 0) continue;
    n.normalize();
    const Vec3 ce = (a + b + c) / 3.0;
    if (maskAt(roi, ce + eps * n) > maskAt(roi, ce - eps * n)) std::swap(t[1], t[2]);
  }
  return mesh;
}

struct Hull {
  double volume = kNaN, area = kNaN;
  std::vector<Vec3> vertices;
};

Hull convexHull(const std::vector<Vec3>& pts) {
  Hull h;
  if (pts.size() < 4) return h;
  std::vector<coordT> coords;
  coords.reserve(pts.size() * 3);
  for (const auto& p : pts)
    for (int a = 0; a < 3; ++a) coords.push_back(p[a]);
  qhT qh_storage;
  qhT* qh = &qh_storage;
  qh_zero(qh, nullptr);
  char cmd[] = "qhull Qt";
  FILE* err = std::fopen("/dev/null", "w");
  const int rc = qh_new_qhull(qh, 3, int(pts.size()), coords.data(), False, cmd, nullptr, err);
  if (rc == 0) {
    qh_getarea(qh, qh->facet_list);
    h.volume = qh->totvol;
    h.area = qh->totarea;
    vertexT* vertex;
    FORALLvertices h.vertices.emplace_back(vertex->point[0], vertex->point[1], vertex->point[2]);
  }
  qh_freeqhull(qh, !qh_ALL);
  int curlong = 0, totlong = 0;
  qh_memfreeshort(qh, &curlong, &totlong);
  if (err) std::fclose(err);
  return h;
}

// Surface area of an ellipsoid with semi-axes a >= b >= c (IBSI 3.1.21: Legendre series to
// order 20). Q_n = (alpha beta)^n P_n(x) with x = (alpha^2 + beta^2) / (2 alpha beta) by the
// Legendre recurrence, finite also for a sphere.
double ellipsoidArea(double a, double b, double c) {
  const double alpha = std::sqrt(std::max(0.0, 1 - b * b / (a * a)));
  const double beta = std::sqrt(std::max(0.0, 1 - c * c / (a * a)));
  const double ab = alpha * beta, half_sum = (alpha * alpha + beta * beta) / 2.0;
  double q_prev = 1.0, q = half_sum;  // Q_0, Q_1
  double sum = 1.0 + q / (1 - 4.0);
  for (int n = 1; n < 20; ++n) {
    const double q_next = ((2 * n + 1) * half_sum * q - n * ab * ab * q_prev) / (n + 1);
    q_prev = q;
    q = q_next;
    const int nu = n + 1;
    sum += q / (1.0 - 4.0 * nu * nu);
  }
  return 4 * M_PI * a * b * sum;
}
}  // namespace

FeatureList morphologyFeatures(const RoiImage& roi, const Settings& s) {
  const Grid& g = roi.grid;
  std::vector<Vec3> morph_pts;
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x)
        if (roi.morph_mask[g.index(x, y, z)])
          morph_pts.emplace_back(x * g.spacing[0], y * g.spacing[1], z * g.spacing[2]);
  if (morph_pts.empty()) return {};
  const Mesh mesh = surfaceMesh(roi);
  double volume = 0, area = 0;
  for (const auto& t : mesh.triangles) {
    const Vec3 &a = mesh.points[t[0]], &b = mesh.points[t[1]], &c = mesh.points[t[2]];
    volume += a.dot(b.cross(c)) / 6.0;
    area += (b - a).cross(c - a).norm() / 2.0;
  }
  volume = std::fabs(volume);
  const double voxel_volume = g.spacing[0] * g.spacing[1] * g.spacing[2];
  const double vol_approx = double(morph_pts.size()) * voxel_volume;
  FeatureList out;
  out.push_back({"morph_volume", volume});
  out.push_back({"morph_vol_approx", vol_approx});
  out.push_back({"morph_area_mesh", area});
  out.push_back({"morph_av", area / volume});
  out.push_back({"morph_comp_1", volume / (std::sqrt(M_PI) * std::pow(area, 1.5))});
  out.push_back({"morph_comp_2", 36 * M_PI * volume * volume / std::pow(area, 3)});
  out.push_back({"morph_sph_dispr", area / std::cbrt(36 * M_PI * volume * volume)});
  out.push_back({"morph_sphericity", std::cbrt(36 * M_PI * volume * volume) / area});
  out.push_back({"morph_asphericity", std::cbrt(std::pow(area, 3) / (36 * M_PI * volume * volume)) - 1});

  // Centre of mass shift: geometric centre of the morphological mask against the
  // intensity-weighted centre of the intensity mask.
  Vec3 geo = Vec3::Zero(), wsum = Vec3::Zero();
  for (const auto& p : morph_pts) geo += p;
  geo /= double(morph_pts.size());
  double isum = 0, imean = 0;
  std::vector<std::pair<Vec3, double>> ivox;
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const std::size_t k = g.index(x, y, z);
        if (!roi.int_mask[k]) continue;
        const Vec3 p(x * g.spacing[0], y * g.spacing[1], z * g.spacing[2]);
        wsum += roi.intensity[k] * p;
        isum += roi.intensity[k];
        ivox.emplace_back(p, roi.intensity[k]);
      }
  if (!ivox.empty()) imean = isum / double(ivox.size());
  out.push_back({"morph_com", isum != 0 ? (geo - wsum / isum).norm() : kNaN});

  const Hull hull = convexHull(mesh.points);
  double diam = 0;
  for (std::size_t a = 0; a < hull.vertices.size(); ++a)
    for (std::size_t b = a + 1; b < hull.vertices.size(); ++b)
      diam = std::max(diam, (hull.vertices[a] - hull.vertices[b]).squaredNorm());
  out.push_back({"morph_diam", std::sqrt(diam)});

  // Principal component axes of the voxel centres (sample covariance).
  Eigen::Matrix3d cov = Eigen::Matrix3d::Zero();
  for (const auto& p : morph_pts) cov += (p - geo) * (p - geo).transpose();
  cov /= std::max<double>(1.0, double(morph_pts.size()) - 1.0);
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> es(cov);
  const double l_major = es.eigenvalues()[2], l_minor = es.eigenvalues()[1], l_least = es.eigenvalues()[0];
  out.push_back({"morph_pca_maj_axis", 4 * std::sqrt(l_major)});
  out.push_back({"morph_pca_min_axis", 4 * std::sqrt(l_minor)});
  out.push_back({"morph_pca_least_axis", 4 * std::sqrt(std::max(0.0, l_least))});
  out.push_back({"morph_pca_elongation", std::sqrt(l_minor / l_major)});
  out.push_back({"morph_pca_flatness", std::sqrt(std::max(0.0, l_least) / l_major)});

  // Axis-aligned bounding box of the mesh.
  Vec3 lo = Vec3::Constant(std::numeric_limits<double>::infinity()), hi = -lo;
  for (const auto& p : mesh.points) {
    lo = lo.cwiseMin(p);
    hi = hi.cwiseMax(p);
  }
  const Vec3 ext = hi - lo;
  out.push_back({"morph_vol_dens_aabb", volume / (ext[0] * ext[1] * ext[2])});
  out.push_back({"morph_area_dens_aabb", area / (2 * (ext[0] * ext[1] + ext[0] * ext[2] + ext[1] * ext[2]))});
  // Approximate enclosing ellipsoid: semi-axes 2 sqrt(lambda).
  const double ea = 2 * std::sqrt(l_major), eb = 2 * std::sqrt(l_minor),
               ec = 2 * std::sqrt(std::max(0.0, l_least));
  out.push_back({"morph_vol_dens_aee", volume / (4 * M_PI / 3 * ea * eb * ec)});
  out.push_back({"morph_area_dens_aee", area / ellipsoidArea(ea, eb, ec)});
  out.push_back({"morph_vol_dens_conv_hull", volume / hull.volume});
  out.push_back({"morph_area_dens_conv_hull", area / hull.area});
  out.push_back({"morph_integ_int", imean * volume});

  // Moran's I and Geary's C with inverse-distance weights over the intensity mask's voxels;
  // above s.moran_max_voxels, over every k-th voxel (k the smallest stride that fits).
  const std::size_t stride = moranStride(ivox.size(), s);
  std::vector<std::pair<Vec3, double>> sub;
  for (std::size_t k = 0; k < ivox.size(); k += stride) sub.push_back(ivox[k]);
  double mu = 0;
  for (const auto& v : sub) mu += v.second;
  mu /= double(sub.size());
  double wsum_all = 0, moran_num = 0, geary_num = 0, dev2 = 0;
  for (const auto& v : sub) dev2 += (v.second - mu) * (v.second - mu);
  for (std::size_t a = 0; a < sub.size(); ++a)
    for (std::size_t b = a + 1; b < sub.size(); ++b) {
      const double w = 1.0 / (sub[a].first - sub[b].first).norm();
      wsum_all += 2 * w;
      moran_num += 2 * w * (sub[a].second - mu) * (sub[b].second - mu);
      geary_num += 2 * w * (sub[a].second - sub[b].second) * (sub[a].second - sub[b].second);
    }
  const double n = double(sub.size());
  const bool defined = sub.size() > 1 && dev2 > 0;
  out.push_back({"morph_moran_i", defined ? n / wsum_all * moran_num / dev2 : kNaN});
  out.push_back({"morph_geary_c", defined ? (n - 1) * geary_num / (2 * wsum_all * dev2) : kNaN});
  return out;
}

}  // namespace ctbmd::radiomics
