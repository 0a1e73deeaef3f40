# Version of the CSDRuntime CMake package (find_package(CSDRuntime 0.4 REQUIRED)): compatible when the
# major number is the same and the requested version is not newer. libcsd.a is one file per target
# (CSDRuntimeConfig.cmake picks it), so unlike CMake's generated version files this one accepts
# any pointer size.
set(PACKAGE_VERSION 0.6.0)
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  string(REGEX MATCH "^[0-9]+" _csd_major "${PACKAGE_VERSION}")
  if(PACKAGE_FIND_VERSION_MAJOR STREQUAL _csd_major)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
