#include <cstdio>

#include "ctbmd/levels.hpp"
#include "ctbmd/phantom.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"

int main() {
  ctbmd::PhantomParams p;
  p.nx = p.ny = 200;
  p.pixel_mm = 2.0;
  p.slice_mm = 3.0;
  auto ph = ctbmd::makePhantom(p);
  ctbmd::Scan s;
  s.image = ph.ct;
  auto loc = ctbmd::localize(s);
  std::printf("ctbmd %s: %s %s\n", ctbmd::versionString(), ctbmd::levelName(loc.levels[1].label).c_str(),
              ctbmd::toString(loc.levels[1].status).c_str());
  return loc.levels[1].status == ctbmd::LevelStatus::Found ? 0 : 1;
}
