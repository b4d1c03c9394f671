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
