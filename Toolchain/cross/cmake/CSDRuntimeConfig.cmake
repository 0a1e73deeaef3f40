# CMake package for firmware that runs CSDformer models (Zephyr, Pico SDK and vendor SDKs use CMake).
# One file, two places (docs/INTEGRATION.md):
#   installed  PREFIX/lib/cmake/CSDRuntime/ (make install PREFIX=dir): PREFIX/bin/csdpack,
#              PREFIX/lib/<target>/libcsd.a, PREFIX/include/csd.h, all found relative to this file;
#   in-tree    Toolchain/cross/cmake/ of the repository: the build stages the repository's own builds
#              (make's .build-embedded/<target>/libcsd.a and .build/debug/csdpack, brought up to date by
#              make at every build) into <build>/csd-runtime/ in the same layout, and csd.h is Include/'s.
#
#   find_package(CSDRuntime REQUIRED)                 # -DCMAKE_PREFIX_PATH=PREFIX or -DCSDRuntime_DIR=...
#   add_executable(app main.c)
#   csd_add_model(app MODEL path/to/export [SYMBOL name] [PACK_OPTIONS ...])
#   target_link_libraries(app PRIVATE CSDRuntime::csd)
#
# CSDRuntime::csd is an imported static library (libcsd.a) with csd.h's folder as its include
# directory. Its file is the one for the project's target, CSDRuntime_TARGET, one of
# CSDRuntime_TARGETS; the cache variable CSD_RUNTIME_TARGET picks it, and when it is empty it is
# picked from CMAKE_SYSTEM_PROCESSOR, CMAKE_SYSTEM_NAME and the compiler flags (CMAKE_C_FLAGS, so
# the toolchain file's CMAKE_C_FLAGS_INIT, and CMAKE_C_COMPILER_TARGET):
#   x86_64        x86_64 or AMD64 on Linux, 64-bit                       (x86_64-unknown-linux-gnu, -fPIC)
#   armv7em-hard  -mcpu=cortex-m4 or cortex-m7 or -march=armv7e-m, with -mfloat-abi=hard
#   armv7em-soft  the same with -mfloat-abi=soft or softfp or none (the runtime passes no floats)
#   armv6m        -mcpu=cortex-m0, m0plus, m1, m3 or m23, or -march=armv6-m, armv6s-m, armv7-m or
#                 armv8-m.base (soft float); Cortex-M3 runs the Armv6-M code, it has no DSP instructions
#   riscv32       a riscv* processor or an rv32 -march/--target, 32-bit, integer calling convention (ilp32)
# Anything else (another core, cortex-m33 and later, flags given only with target_compile_options)
# stops configuration with a message that says what it saw: set CSD_RUNTIME_TARGET then.
#
# csdpack: CSDPACK (cache, optional) names another packer; default the installed one, in-tree
# .build/debug/csdpack (made by make). The firmware still supplies memset/memcpy (and the
# __aeabi_mem* aliases on Arm) and a compiler support library (libgcc); the runtime needs nothing else.

if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "CSDRuntime needs CMake 3.20 or later")
endif()

set(CSDRuntime_TARGETS x86_64 armv7em-soft armv7em-hard armv6m riscv32)
get_filename_component(_csd_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
# in-tree: this file is the repository's own (an install into PREFIX=<repository> stays "installed")
if(CMAKE_CURRENT_LIST_DIR MATCHES "/Toolchain/cross/cmake$" AND EXISTS "${_csd_prefix}/Package.swift"
   AND EXISTS "${_csd_prefix}/Include/csd.h")
  set(CSDRuntime_IN_TREE TRUE)
  set(CSDRuntime_ROOT "${_csd_prefix}")
  set(CSDRuntime_INCLUDE_DIR "${_csd_prefix}/Include")
else()
  set(CSDRuntime_IN_TREE FALSE)
  set(CSDRuntime_ROOT "${_csd_prefix}")
  set(CSDRuntime_INCLUDE_DIR "${_csd_prefix}/include")
endif()

set(CSD_RUNTIME_TARGET "" CACHE STRING
    "libcsd.a to link: x86_64, armv7em-soft, armv7em-hard, armv6m, riscv32 (empty: picked from the toolchain)")
set_property(CACHE CSD_RUNTIME_TARGET PROPERTY STRINGS "" ${CSDRuntime_TARGETS})

# Sets ${out} to the runtime target for this project's toolchain and ${why} to how it was picked,
# or stops with what it saw.
function(_csd_pick_target out why)
  if(CSD_RUNTIME_TARGET)
    if(NOT CSD_RUNTIME_TARGET IN_LIST CSDRuntime_TARGETS)
      message(FATAL_ERROR "CSDRuntime: CSD_RUNTIME_TARGET=${CSD_RUNTIME_TARGET} is not one of: ${CSDRuntime_TARGETS}")
    endif()
    set(${out} "${CSD_RUNTIME_TARGET}" PARENT_SCOPE)
    set(${why} "CSD_RUNTIME_TARGET" PARENT_SCOPE)
    return()
  endif()
  string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" proc)
  string(TOLOWER " ${CMAKE_C_COMPILER_TARGET} ${CMAKE_C_FLAGS} ${CMAKE_CXX_FLAGS} " flags)
  string(STRIP "${CMAKE_C_COMPILER_TARGET} ${CMAKE_C_FLAGS}" seen_flags)
  set(seen "CMAKE_SYSTEM_PROCESSOR='${CMAKE_SYSTEM_PROCESSOR}' CMAKE_SYSTEM_NAME='${CMAKE_SYSTEM_NAME}' flags='${seen_flags}'")
  set(hint "set CSD_RUNTIME_TARGET to one of: ${CSDRuntime_TARGETS} (-DCSD_RUNTIME_TARGET=...)")
  set(pick "")
  if(proc MATCHES "^(x86_64|amd64)$")
    if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR CMAKE_SIZEOF_VOID_P EQUAL 4 OR flags MATCHES " -m32 ")
      message(FATAL_ERROR "CSDRuntime: the x86_64 library is built for 64-bit Linux (x86_64-unknown-linux-gnu); "
                          "this project is not (${seen}). To link it anyway, ${hint}")
    endif()
    set(pick x86_64)
  elseif(proc MATCHES "^riscv" OR flags MATCHES "(-march=rv32|riscv32)")
    if(CMAKE_SIZEOF_VOID_P EQUAL 8 OR proc MATCHES "64" OR flags MATCHES "(-march=rv64|riscv64)")
      message(FATAL_ERROR "CSDRuntime: the RISC-V library is 32-bit (riscv32); this project is 64-bit (${seen})")
    endif()
    if(flags MATCHES "-mabi=ilp32[fd]")
      message(FATAL_ERROR "CSDRuntime: the riscv32 library uses the ilp32 calling convention; this project "
                          "uses a hardware-float one (${seen})")
    endif()
    set(pick riscv32)
  elseif(proc MATCHES "^(arm|thumb|cortex)" OR flags MATCHES "-mcpu=cortex-m|-march=armv|(arm|thumb)v[678]")
    string(REGEX MATCH "-mcpu=([a-z0-9.-]+)" _ "${flags}")
    set(cpu "${CMAKE_MATCH_1}")
    string(REGEX MATCH "-march=([a-z0-9.-]+)" _ "${flags}")
    set(arch "${CMAKE_MATCH_1}")
    if(NOT arch)
      string(REGEX MATCH "(arm|thumb)(v[678][a-z0-9.-]*)-" _ "${CMAKE_C_COMPILER_TARGET}-")
      if(CMAKE_MATCH_2)
        set(arch "arm${CMAKE_MATCH_2}")
      endif()
    endif()
    set(hard FALSE)
    if(flags MATCHES "-mfloat-abi=hard" OR CMAKE_C_COMPILER_TARGET MATCHES "eabihf$")
      set(hard TRUE)
    endif()
    if(cpu MATCHES "^cortex-m[47]$" OR (NOT cpu AND arch MATCHES "^armv7e-?m$"))
      if(hard)
        set(pick armv7em-hard)
      else()
        set(pick armv7em-soft)
      endif()
    elseif(cpu MATCHES "^cortex-m(0|0plus|1|3|23)$" OR (NOT cpu AND arch MATCHES "^armv(6s?-?m|7-?m|8-?m\\.base)$"))
      if(hard)
        message(FATAL_ERROR "CSDRuntime: the Armv6-M library (for ${cpu}${arch}) is soft float; this project "
                            "asks for -mfloat-abi=hard (${seen})")
      endif()
      set(pick armv6m)
    else()
      message(FATAL_ERROR "CSDRuntime: cannot tell which libcsd.a fits this Arm core: no -mcpu=cortex-m0/m0plus/"
                          "m1/m3/m4/m7/m23 or -march=armv6-m/armv7-m/armv7e-m in the flags (${seen}). "
                          "armv7em-* needs the DSP instructions (Cortex-M4/M7, Armv8-M Mainline with DSP); "
                          "armv6m runs on every Cortex-M. ${hint}")
    endif()
  else()
    message(FATAL_ERROR "CSDRuntime: no libcsd.a for this target (${seen}). ${hint}")
  endif()
  set(${out} "${pick}" PARENT_SCOPE)
  set(${why} "picked from ${seen}" PARENT_SCOPE)
endfunction()

_csd_pick_target(CSDRuntime_TARGET _csd_why)

if(CSDRuntime_IN_TREE)
  # The repository's own builds, staged into the build folder (copy_if_different: the staged
  # file's time changes only with its content, so a packer rebuilt to the same bytes repacks nothing).
  set(_csd_stage "${CMAKE_BINARY_DIR}/csd-runtime")
  set(CSDRuntime_LIBRARY "${_csd_stage}/lib/${CSDRuntime_TARGET}/libcsd.a")
  set(_csd_make_goals ".build-embedded/${CSDRuntime_TARGET}/libcsd.a")
  set(_csd_byproducts "${CSDRuntime_LIBRARY}")
  set(_csd_stage_commands
      COMMAND "${CMAKE_COMMAND}" -E copy_if_different
              "${CSDRuntime_ROOT}/.build-embedded/${CSDRuntime_TARGET}/libcsd.a" "${CSDRuntime_LIBRARY}")
  if(NOT CSDPACK)
    list(APPEND _csd_make_goals .build/debug/csdpack)
    list(APPEND _csd_byproducts "${_csd_stage}/bin/csdpack")
    list(APPEND _csd_stage_commands
         COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${CSDRuntime_ROOT}/.build/debug/csdpack" "${_csd_stage}/bin/csdpack")
    set(CSDRuntime_CSDPACK "${_csd_stage}/bin/csdpack")
  else()
    set(CSDRuntime_CSDPACK "${CSDPACK}")
  endif()
  if(NOT TARGET csd_runtime_stage)
    string(JOIN " " _csd_goals_text ${_csd_make_goals})
    find_program(CSD_GNU_MAKE NAMES gmake make REQUIRED)
    add_custom_target(csd_runtime_stage
      COMMAND "${CSD_GNU_MAKE}" -C "${CSDRuntime_ROOT}" --no-print-directory ${_csd_make_goals}
      COMMAND "${CMAKE_COMMAND}" -E make_directory "${_csd_stage}/bin" "${_csd_stage}/lib/${CSDRuntime_TARGET}"
      ${_csd_stage_commands}
      BYPRODUCTS ${_csd_byproducts}
      COMMENT "CSDRuntime (in-tree): make -C ${CSDRuntime_ROOT} ${_csd_goals_text}"
      VERBATIM)
  endif()
else()
  set(CSDRuntime_LIBRARY "${CSDRuntime_ROOT}/lib/${CSDRuntime_TARGET}/libcsd.a")
  if(CSDPACK)
    set(CSDRuntime_CSDPACK "${CSDPACK}")
  else()
    set(CSDRuntime_CSDPACK "${CSDRuntime_ROOT}/bin/csdpack")
  endif()
  if(NOT EXISTS "${CSDRuntime_LIBRARY}")
    file(GLOB _csd_have RELATIVE "${CSDRuntime_ROOT}/lib" "${CSDRuntime_ROOT}/lib/*/libcsd.a")
    message(FATAL_ERROR "CSDRuntime: ${CSDRuntime_LIBRARY} (target ${CSDRuntime_TARGET}, ${_csd_why}) is not "
                        "installed; installed: ${_csd_have}")
  endif()
  if(NOT EXISTS "${CSDRuntime_CSDPACK}")
    message(FATAL_ERROR "CSDRuntime: no packer at ${CSDRuntime_CSDPACK}")
  endif()
endif()

if(NOT TARGET CSDRuntime::csd)
  add_library(CSDRuntime::csd STATIC IMPORTED)
  set_target_properties(CSDRuntime::csd PROPERTIES
    IMPORTED_LOCATION "${CSDRuntime_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CSDRuntime_INCLUDE_DIR}")
  if(CSDRuntime_IN_TREE)
    add_dependencies(CSDRuntime::csd csd_runtime_stage)
  endif()
  message(STATUS "CSDRuntime: ${CSDRuntime_LIBRARY} (${CSDRuntime_TARGET}, ${_csd_why})")
endif()

# csd_add_model(<target> MODEL <export folder> [SYMBOL <name>] [PACK_OPTIONS <csdpack convert options>...])
#
# At build time, csdpack packs <export folder>/model.safetensors + model.json into
# ${CMAKE_CURRENT_BINARY_DIR}/csd-model/<name>.{csd,c,h} (again whenever either file or the packer
# changes) and adds the .c to <target>, that folder and csd.h's to its include path. <name> is the
# image's C symbol (default: the folder's name as a C identifier, '-' -> '_'); the header defines
# <name>_size, <name>_ARENA_BYTES_FUSED/_SPIKING, <name>_INPUT_BYTES, <name>_CLASSES. A relative MODEL
# is taken from the current source folder. Link CSDRuntime::csd yourself (target_link_libraries).
function(csd_add_model target)
  cmake_parse_arguments(ARG "" "MODEL;SYMBOL" "PACK_OPTIONS" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS OR NOT ARG_MODEL)
    message(FATAL_ERROR "csd_add_model(${target} MODEL <export folder> [SYMBOL <name>] [PACK_OPTIONS ...]): "
                        "MODEL missing or unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  foreach(file model.safetensors model.json)
    if(NOT EXISTS "${model}/${file}")
      message(FATAL_ERROR "csd_add_model: ${model}/${file} not found (MODEL is an export folder)")
    endif()
  endforeach()
  if(ARG_SYMBOL)
    set(symbol "${ARG_SYMBOL}")
  else()
    get_filename_component(symbol "${model}" NAME)
    string(MAKE_C_IDENTIFIER "${symbol}" symbol)
  endif()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/csd-model")
  set(deps "${model}/model.safetensors" "${model}/model.json" "${CSDRuntime_CSDPACK}")  # a new packer repacks
  if(CSDRuntime_IN_TREE)
    list(APPEND deps csd_runtime_stage)
  endif()
  add_custom_command(
    OUTPUT "${out}/${symbol}.c" "${out}/${symbol}.h" "${out}/${symbol}.csd"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${out}"
    COMMAND "${CSDRuntime_CSDPACK}" convert "${model}/model.safetensors" --config "${model}/model.json"
            -o "${out}/${symbol}.csd" --c-source "${out}/${symbol}.c" --c-header "${out}/${symbol}.h"
            --symbol "${symbol}" ${ARG_PACK_OPTIONS}
    DEPENDS ${deps}
    COMMENT "csdpack: ${model} -> ${symbol}.c/.h"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}/${symbol}.c" "${out}/${symbol}.h")
  target_include_directories(${target} PRIVATE "${out}" "${CSDRuntime_INCLUDE_DIR}")
endfunction()
