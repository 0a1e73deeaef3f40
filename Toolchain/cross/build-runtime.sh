#!/usr/bin/env bash
# Builds the Embedded Swift runtime (CSDFormat + CSDRuntime) as one static
# library for a target, heap-free (-no-allocations), -Osize, one section per
# function so the firmware's --gc-sections keeps only what it calls.
#
# Usage: build-runtime.sh TARGET OUTDIR [extra swiftc flags...]
#   TARGET: x86_64-unknown-linux-gnu | armv7em-none-none-eabi | armv6m-none-none-eabi | riscv32-none-none-eabi
set -euo pipefail
target=$1; out=$2; shift 2
root=$(cd "$(dirname "$0")/../.." && pwd)
swiftc=${SWIFTC:-swiftc}
ar=${LLVM_AR:-$(dirname "$(command -v "$swiftc")")/llvm-ar}
flags=(-target "$target" -enable-experimental-feature Embedded -wmo -parse-as-library -Osize -no-allocations
       -Xfrontend -disable-stack-protector -Xfrontend -function-sections -Xcc -Oz "$@")
case "$target" in
  x86_64-*) flags+=(-Xcc -fPIC) ;;
esac
mkdir -p "$out"
"$swiftc" "${flags[@]}" -module-name CSDFormat -emit-module -emit-module-path "$out/CSDFormat.swiftmodule" \
  -c "$root"/Sources/CSDFormat/*.swift -o "$out/CSDFormat.o"
"$swiftc" "${flags[@]}" -module-name CSDRuntime -I "$out" -I "$root/Sources/CSDKernels/include" \
  -c "$root"/Sources/CSDRuntime/*.swift -o "$out/CSDRuntime.o"
rm -f "$out/libcsd.a"
"$ar" rcs "$out/libcsd.a" "$out/CSDFormat.o" "$out/CSDRuntime.o"
echo "built $out/libcsd.a ($target)"
