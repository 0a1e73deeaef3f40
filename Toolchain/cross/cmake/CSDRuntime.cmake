# CMake support for firmware that runs CSDformer models (Zephyr, Pico SDK and vendor SDKs use CMake).
#
#   include(<repo>/Toolchain/cross/cmake/CSDRuntime.cmake)
#   csd_runtime_library(csd)                     # imported static library + include dir (csd.h)
#   csd_pack_model(app MODEL_DIR <export> SYMBOL fmnist_tiny)   # csdpack -> generated .c/.h added to app
#   target_link_libraries(app PRIVATE csd)
#
# Needs: swiftc (Swift 6.3 with the Embedded stdlib) on PATH, and CSD_SWIFT_TARGET / CSD_SWIFT_FLAGS
# from the toolchain file. csd_pack_model needs the host packer: set CSDPACK to its path (default
# <repo>/.build/debug/csdpack, built by `swift build --product csdpack` at the repository root).
get_filename_component(CSD_ROOT "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(CSDPACK "${CSD_ROOT}/.build/debug/csdpack" CACHE FILEPATH "the csdpack host tool")

function(csd_runtime_library name)
  if(NOT CSD_SWIFT_TARGET)
    message(FATAL_ERROR "csd_runtime_library: set CSD_SWIFT_TARGET (and CSD_SWIFT_FLAGS) in the toolchain file")
  endif()
  set(dir "${CMAKE_BINARY_DIR}/csd-runtime")
  file(GLOB sources "${CSD_ROOT}/Sources/CSDFormat/*.swift" "${CSD_ROOT}/Sources/CSDRuntime/*.swift"
                    "${CSD_ROOT}/Sources/CSDRuntime/Kernels/*.swift" "${CSD_ROOT}/Sources/CSDMachine/include/*"
                    "${CSD_ROOT}/Include/csd.h" "${CSD_ROOT}/Include/module.modulemap")
  add_custom_command(
    OUTPUT "${dir}/libcsd.a"
    COMMAND "${CSD_ROOT}/Toolchain/cross/build-runtime.sh" ${CSD_SWIFT_TARGET} "${dir}" ${CSD_SWIFT_FLAGS}
    DEPENDS ${sources} "${CSD_ROOT}/Toolchain/cross/build-runtime.sh"
    COMMENT "Embedded Swift runtime for ${CSD_SWIFT_TARGET}"
    VERBATIM)
  add_custom_target(${name}_build DEPENDS "${dir}/libcsd.a")
  add_library(${name} STATIC IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES IMPORTED_LOCATION "${dir}/libcsd.a"
                                           INTERFACE_INCLUDE_DIRECTORIES "${CSD_ROOT}/Include")
  add_dependencies(${name} ${name}_build)
endfunction()

function(csd_pack_model target)
  cmake_parse_arguments(ARG "" "MODEL_DIR;SYMBOL" "PACK_OPTIONS" ${ARGN})
  if(NOT ARG_SYMBOL)
    set(ARG_SYMBOL csd_model)
  endif()
  set(out "${CMAKE_BINARY_DIR}/csd-model")
  add_custom_command(
    OUTPUT "${out}/${ARG_SYMBOL}.c" "${out}/${ARG_SYMBOL}.h" "${out}/${ARG_SYMBOL}.csd"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out}"
    COMMAND "${CSDPACK}" convert "${ARG_MODEL_DIR}/model.safetensors" --config "${ARG_MODEL_DIR}/model.json"
            -o "${out}/${ARG_SYMBOL}.csd" --c-source "${out}/${ARG_SYMBOL}.c" --c-header "${out}/${ARG_SYMBOL}.h"
            --symbol ${ARG_SYMBOL} ${ARG_PACK_OPTIONS}
    DEPENDS "${ARG_MODEL_DIR}/model.safetensors" "${ARG_MODEL_DIR}/model.json" "${CSDPACK}"  # a new packer repacks
    COMMENT "csdpack: ${ARG_MODEL_DIR} -> ${ARG_SYMBOL}.c/.h"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}/${ARG_SYMBOL}.c")
  target_include_directories(${target} PRIVATE "${out}")
endfunction()
