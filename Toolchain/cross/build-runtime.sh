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
# -sil-disable-pass=loop-unroll: Swift's SIL unroller runs even at -Osize and fully unrolls the 3-tap
# loops of the gathers (hundreds of bytes each for about 1% speed).
flags=(-target "$target" -enable-experimental-feature Embedded -wmo -parse-as-library -Osize -no-allocations
       -Xfrontend -disable-stack-protector -Xfrontend -function-sections -Xllvm -sil-disable-pass=loop-unroll
       -Xcc -Oz "$@")
case "$target" in
  x86_64-*) flags+=(-Xcc -fPIC) ;;
esac
mkdir -p "$out"
# CSD_EXTRA_MODULE=Name:path/to/File.swift: instead, one more Embedded Swift module against the
# runtime's modules in OUTDIR (built before), with the same flags -> OUTDIR/Name.o (the Cortex-M4
# firmware's kernel check, Tests/Firmware/KernelCheck.swift; the Swift-main firmware,
# Firmware/swift-main/Main.swift, which passes its C module's folder as -I).
name=
if [ -n "${CSD_EXTRA_MODULE:-}" ]; then name=${CSD_EXTRA_MODULE%%:*}; fi
# a Clang module cache of this build's own (one per module built here), emptied first: a cached
# module of a changed C header is never reused (Clang checks only size and whole-second mtime)
cache="$out/ModuleCache${name:+-$name}"
rm -rf "$cache"
flags+=(-module-cache-path "$cache")
if [ -n "$name" ]; then
  src=${CSD_EXTRA_MODULE#*:}
  "$swiftc" "${flags[@]}" -module-name "$name" -I "$out" -I "$root/Include" -I "$root/Sources/CSDMachine/include" \
    -c "$src" -o "$out/$name.o"
  echo "built $out/$name.o ($target)"
  exit 0
fi
"$swiftc" "${flags[@]}" -module-name CSDFormat -I "$root/Include" -emit-module -emit-module-path "$out/CSDFormat.swiftmodule" \
  -c "$root"/Sources/CSDFormat/*.swift -o "$out/CSDFormat.o"
"$swiftc" "${flags[@]}" -module-name CSDRuntime -I "$out" -I "$root/Include" -I "$root/Sources/CSDMachine/include" \
  -emit-module -emit-module-path "$out/CSDRuntime.swiftmodule" \
  -c "$root"/Sources/CSDRuntime/*.swift "$root"/Sources/CSDRuntime/Kernels/*.swift -o "$out/CSDRuntime.o"
rm -f "$out/libcsd.a"
"$ar" rcs "$out/libcsd.a" "$out/CSDFormat.o" "$out/CSDRuntime.o"
echo "built $out/libcsd.a ($target)"
