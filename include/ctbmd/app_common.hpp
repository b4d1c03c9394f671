#pragma once
// What the thin command front ends share.
#include <spdlog/spdlog.h>

#include "ctbmd/cli.hpp"
#include "ctbmd/errors.hpp"
#include "ctbmd/fileio.hpp"
#include "ctbmd/image.hpp"
#include "ctbmd/pipeline.hpp"
#include "ctbmd/provenance.hpp"
#include "ctbmd/stages.hpp"
