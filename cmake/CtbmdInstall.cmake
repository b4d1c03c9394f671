# Installs executables, the library, its headers and a CMake package so that another
# project can `find_package(ctbmd)` and link `ctbmd::ctbmd`.
include(CMakePackageConfigHelpers)
install(TARGETS ctbmd ctbmd_options EXPORT ctbmdTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ctbmd DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/generated/ctbmd/version.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ctbmd)
install(TARGETS ${CTBMD_EXECUTABLES} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET ctbmd-torch)
  install(TARGETS ctbmd-torch LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/ctbmd)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ctbmd/models)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/tools/radiomics/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ctbmd/radiomics)
install(EXPORT ctbmdTargets NAMESPACE ctbmd:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ctbmd)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ctbmdConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ctbmdConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ctbmd)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ctbmdConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ctbmdConfig.cmake ${PROJECT_BINARY_DIR}/ctbmdConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ctbmd)
