// IBSI 1 sections 3.8 (grey level size zone matrix) and 3.9 (grey level distance zone matrix):
// zones are connected voxels of one grey level (8-connected in a slice for 2D and 2.5D,
// 26-connected for 3D). The distance of a zone is the smallest distance of its voxels to the
// edge of the ROI's morphological mask, counted in 4- (2D) or 6-connected (3D) steps with the
// edge voxels at distance 1; voxels beyond the image boundary count as outside.
#include <algorithm>
#include <deque>
#include <limits>

#include "radiomics/common.hpp"

namespace ctbmd::radiomics {

using detail::CountMatrix;
using detail::Offset;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Zone {
  int level, size, distance;
};

const std::vector<Offset>& faceNeighbours(bool volumetric) {
  static const std::vector<Offset> n2{{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}};
  static const std::vector<Offset> n3{{1, 0, 0}, {-1, 0, 0}, {0, 1, 0}, {0, -1, 0}, {0, 0, 1}, {0, 0, -1}};
  return volumetric ? n3 : n2;
}

// Taxicab distance to the mask's edge (1 for a mask voxel with a face neighbour outside).
std::vector<int> edgeDistance(const Grid& g, const std::vector<uint8_t>& mask, bool volumetric) {
  std::vector<int> dist(g.size(), 0);
  std::deque<std::array<int, 3>> queue;
  const auto& nb = faceNeighbours(volumetric);
  for (int z = 0; z < g.nz; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        if (!mask[g.index(x, y, z)]) continue;
        for (const auto& o : nb) {
          const int a = x + o[0], b = y + o[1], c = z + o[2];
          if (!g.inside(a, b, c) || !mask[g.index(a, b, c)]) {
            dist[g.index(x, y, z)] = 1;
            queue.push_back({x, y, z});
            break;
          }
        }
      }
  while (!queue.empty()) {
    const auto p = queue.front();
    queue.pop_front();
    const int d = dist[g.index(p[0], p[1], p[2])];
    for (const auto& o : nb) {
      const int a = p[0] + o[0], b = p[1] + o[1], c = p[2] + o[2];
      if (!g.inside(a, b, c)) continue;
      const std::size_t k = g.index(a, b, c);
      if (!mask[k] || dist[k] != 0) continue;
      dist[k] = d + 1;
      queue.push_back({a, b, c});
    }
  }
  return dist;
}

// The zones whose voxels lie in slices [z0, z1) (2D: one slice at a time).
std::vector<Zone> findZones(const LevelImage& img, const std::vector<int>& dist, bool volumetric, int z0,
                            int z1, std::vector<uint8_t>& seen) {
  const Grid& g = img.grid;
  const auto nb = detail::neighbourhood(volumetric);
  std::vector<Zone> zones;
  std::vector<std::array<int, 3>> stack;
  for (int z = z0; z < z1; ++z)
    for (int y = 0; y < g.ny; ++y)
      for (int x = 0; x < g.nx; ++x) {
        const std::size_t k0 = g.index(x, y, z);
        const int lv = img.level[k0];
        if (lv <= 0 || seen[k0]) continue;
        Zone zone{lv, 0, std::numeric_limits<int>::max()};
        seen[k0] = 1;
        stack.assign(1, {x, y, z});
        while (!stack.empty()) {
          const auto p = stack.back();
          stack.pop_back();
          const std::size_t k = g.index(p[0], p[1], p[2]);
          ++zone.size;
          zone.distance = std::min(zone.distance, std::max(1, dist[k]));
          for (const auto& o : nb) {
            const int a = p[0] + o[0], b = p[1] + o[1], c = p[2] + o[2];
            if (!g.inside(a, b, c) || c < z0 || c >= z1) continue;
            const std::size_t q = g.index(a, b, c);
            if (seen[q] || img.level[q] != lv) continue;
            seen[q] = 1;
            stack.push_back({a, b, c});
          }
        }
        zones.push_back(zone);
      }
  return zones;
}

CountMatrix sizeMatrix(const std::vector<Zone>& zones, int levels, bool by_distance) {
  CountMatrix m(levels, 1);
  for (const Zone& z : zones) {
    const int j = by_distance ? z.distance : z.size;
    m.grow(j);
    m.at(z.level - 1, j - 1) += 1;
  }
  return m;
}

const std::vector<std::string>& szmNames() {
  static const std::vector<std::string> n{"sze",    "lze",    "lgze",   "hgze",      "szlge", "szhge",
                                          "lzlge",  "lzhge",  "glnu",   "glnu_norm", "zsnu",  "zsnu_norm",
                                          "z_perc", "gl_var", "zs_var", "zs_entr"};
  return n;
}
const std::vector<std::string>& dzmNames() {
  static const std::vector<std::string> n{"sde",    "lde",    "lgze",   "hgze",      "sdlge", "sdhge",
                                          "ldlge",  "ldhge",  "glnu",   "glnu_norm", "zdnu",  "zdnu_norm",
                                          "z_perc", "gl_var", "zd_var", "zd_entr"};
  return n;
}

FeatureList zoneFamily(const LevelImage& img, bool by_distance) {
  FeatureList out;
  if (img.levels <= 0) return out;
  const Grid& g = img.grid;
  const std::string prefix = by_distance ? "dzm_" : "szm_";
  const auto& names = by_distance ? dzmNames() : szmNames();
  const std::vector<uint8_t>& mask = img.morph_mask;
  const std::vector<int> dist2 = by_distance ? edgeDistance(g, mask, false) : std::vector<int>(g.size(), 1);
  std::vector<uint8_t> seen(g.size(), 0);
  detail::Averager avg2d;
  CountMatrix merged;
  double nv_all = 0;
  for (int z = 0; z < g.nz; ++z) {
    const auto zones = findZones(img, dist2, false, z, z + 1, seen);
    if (zones.empty()) continue;
    double nv = 0;
    for (const Zone& zz : zones) nv += zz.size;
    nv_all += nv;
    const CountMatrix m = sizeMatrix(zones, img.levels, by_distance);
    avg2d.add(detail::zoneLikeFeatures(m, nv, false));
    merged.add(m);
  }
  detail::appendNamed(out, prefix, names, "_2D", avg2d.mean(names.size()));
  detail::appendNamed(
      out, prefix, names, "_2_5D",
      nv_all > 0 ? detail::zoneLikeFeatures(merged, nv_all, false) : std::vector<double>(names.size(), kNaN));
  const std::vector<int> dist3 = by_distance ? edgeDistance(g, mask, true) : std::vector<int>(g.size(), 1);
  std::fill(seen.begin(), seen.end(), 0);
  const auto zones3 = findZones(img, dist3, true, 0, g.nz, seen);
  double nv3 = 0;
  for (const Zone& zz : zones3) nv3 += zz.size;
  detail::appendNamed(out, prefix, names, "_3D",
                      nv3 > 0
                          ? detail::zoneLikeFeatures(sizeMatrix(zones3, img.levels, by_distance), nv3, false)
                          : std::vector<double>(names.size(), kNaN));
  return out;
}
}  // namespace

FeatureList glszmFeatures(const LevelImage& img) { return zoneFamily(img, false); }
FeatureList gldzmFeatures(const LevelImage& img) { return zoneFamily(img, true); }

}  // namespace ctbmd::radiomics
