# CMake toolchain file: bare-metal Cortex-M4F with arm-none-eabi-gcc, and the matching
# Embedded Swift target for the CSDformer runtime (see CSDRuntime.cmake).
#   cmake -S app -B build -DCMAKE_TOOLCHAIN_FILE=<repo>/Toolchain/cross/cmake/cortex-m4.cmake
# Copy and change the -mcpu/-mfpu/-mfloat-abi lines (and CSD_SWIFT_*) for another core:
#   Cortex-M0+: armv6m-none-none-eabi, -mcpu=cortex-m0plus;  soft float: -mfloat-abi=soft.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(CSD_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16")
set(CMAKE_C_FLAGS_INIT "${CSD_CPU_FLAGS} -ffreestanding -fno-builtin -ffunction-sections -fdata-sections")
set(CMAKE_ASM_FLAGS_INIT "${CSD_CPU_FLAGS}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-nostdlib -Wl,--gc-sections")

# The Embedded Swift build of the runtime must use the same ABI as the C code.
set(CSD_SWIFT_TARGET armv7em-none-none-eabi)
set(CSD_SWIFT_FLAGS -Xcc -mfloat-abi=hard -Xcc -mfpu=fpv4-sp-d16 -Xcc -mcpu=cortex-m4)
