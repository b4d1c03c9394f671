# Build options shared by every ctbmd target.
option(CTBMD_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
option(CTBMD_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

add_library(ctbmd_options INTERFACE)
target_compile_options(ctbmd_options INTERFACE -Wall -Wextra -Wpedantic
  $<$<BOOL:${CTBMD_WARNINGS_AS_ERRORS}>:-Werror>)
if(CTBMD_SANITIZE)
  target_compile_options(ctbmd_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(ctbmd_options INTERFACE -fsanitize=address,undefined)
endif()
# The fuzz targets (tests/fuzz): libFuzzer, so clang; the library gets libFuzzer's coverage
# instrumentation, the targets its driver (tools/fuzz.sh build).
option(CTBMD_FUZZ "Build the fuzz targets (fuzz-all; needs clang, CTBMD_SANITIZE recommended)" OFF)
if(CTBMD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CTBMD_FUZZ needs clang for libFuzzer: CC=clang-14 CXX=clang++-14 (tools/fuzz.sh build)")
  endif()
  target_compile_options(ctbmd_options INTERFACE -fsanitize=fuzzer-no-link)
endif()
