# CMake toolchain file: bare-metal Cortex-M4F with arm-none-eabi-gcc. `make install` installs a copy
# next to the CSDRuntime package (PREFIX/lib/cmake/CSDRuntime/cortex-m4.cmake).
#   cmake -S app -B build -DCMAKE_TOOLCHAIN_FILE=<this file>
# find_package(CSDRuntime) picks libcsd.a from the flags below (-mcpu=cortex-m4, -mfloat-abi=hard:
# armv7em-hard; docs/INTEGRATION.md). Copy and change the -mcpu/-mfpu/-mfloat-abi line for another core:
#   Cortex-M0+: -mcpu=cortex-m0plus (armv6m);  soft float: -mfloat-abi=soft (armv7em-soft).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CSD_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${CSD_CPU_FLAGS} -ffreestanding -fno-builtin -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${CSD_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostdlib -Wl,--gc-sections")
