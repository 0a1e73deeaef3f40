#!/usr/bin/env bash
# Host builds of the runtime sources with sanitizers (normal Swift runtime, not Embedded).
# Usage: Tests/Fuzz/build.sh OUTDIR fuzz [plain]  -> OUTDIR/fuzz-image (libFuzzer + AddressSanitizer)
#        Tests/Fuzz/build.sh OUTDIR asan [plain]  -> OUTDIR/test_corruption_asan (the C corruption matrix,
#                                                    linked against an AddressSanitizer build of the runtime)
# The runtime runs its x86-64 twins (docs/KERNELS.md), or with `plain` its portable loops (CSD_PLAIN_KERNELS).
set -euo pipefail
out=$1; what=$2; variant=${3:-twins}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
rm -rf "$out/ModuleCache"  # its own Clang module cache, emptied first: never a stale module of a changed header
case $what in
  fuzz) flags=(-sanitize=fuzzer,address -parse-as-library -O -g -module-cache-path "$out/ModuleCache") ;;
  asan) flags=(-sanitize=address -parse-as-library -O -g -module-cache-path "$out/ModuleCache") ;;
  *) echo "unknown build $what" >&2; exit 2 ;;
esac
case $variant in
  twins) ;;
  plain) flags+=(-Xcc -DCSD_PLAIN_KERNELS) ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
quiet() { grep -v "warning: Cannot export" >&2 || true; }
swiftc "${flags[@]}" -module-name CSDFormat -I "$root/Include" -emit-module -emit-module-path "$out/CSDFormat.swiftmodule" \
  -emit-library -static "$root"/Sources/CSDFormat/*.swift -o "$out/libCSDFormat.a" 2> >(quiet)
swiftc "${flags[@]}" -module-name CSDRuntime -I "$out" -I "$root/Include" -I "$root/Sources/CSDMachine/include" -emit-module -emit-module-path "$out/CSDRuntime.swiftmodule" \
  -emit-library -static "$root"/Sources/CSDRuntime/*.swift "$root"/Sources/CSDRuntime/Kernels/*.swift -o "$out/libCSDRuntime.a" 2> >(quiet)
if [ "$what" = fuzz ]; then
  swiftc "${flags[@]}" -I "$out" -I "$root/Include" -I "$root/Sources/CSDMachine/include" -import-objc-header "$root/Tests/Fuzz/fuzz-shim.h" "$root/Tests/Fuzz/FuzzImage.swift" \
    "$out/libCSDRuntime.a" "$out/libCSDFormat.a" -o "$out/fuzz-image" 2> >(quiet)
  echo "built $out/fuzz-image ($variant)"
else
  clang -std=c99 -D_ISOC11_SOURCE -O1 -g -fsanitize=address -Wall -Wextra -Werror -I"$root/Include" \
    -I"$root/Tests/TestData" -c "$root/Tests/C/test_corruption.c" -o "$out/test_corruption.o"
  swiftc -sanitize=address -I "$root/Sources/CSDMachine/include" "$out/test_corruption.o" "$out/libCSDRuntime.a" "$out/libCSDFormat.a" -lcmocka \
    -o "$out/test_corruption_asan" 2> >(quiet)
  echo "built $out/test_corruption_asan ($variant)"
fi
