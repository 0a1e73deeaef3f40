#!/usr/bin/env bash
# Builds the libFuzzer target (host, -sanitize=fuzzer,address) from the runtime sources.
# Usage: Tests/Fuzz/build.sh OUTDIR
set -euo pipefail
out=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
flags=(-sanitize=fuzzer,address -parse-as-library -O -g)
swiftc "${flags[@]}" -module-name CSDFormat -emit-module -emit-module-path "$out/CSDFormat.swiftmodule" \
  -emit-library -static "$root"/Sources/CSDFormat/*.swift -o "$out/libCSDFormat.a" 2> >(grep -v "warning: Cannot export" >&2)
swiftc "${flags[@]}" -module-name CSDRuntime -I "$out" -emit-module -emit-module-path "$out/CSDRuntime.swiftmodule" \
  -emit-library -static "$root"/Sources/CSDRuntime/*.swift -o "$out/libCSDRuntime.a" 2> >(grep -v "warning: Cannot export" >&2)
swiftc "${flags[@]}" -I "$out" -import-objc-header "$root/Tests/Fuzz/fuzz-shim.h" "$root/Tests/Fuzz/FuzzImage.swift" \
  "$out/libCSDRuntime.a" "$out/libCSDFormat.a" -o "$out/fuzz-image" 2>&1 | grep -v "warning: Cannot export" || true
test -x "$out/fuzz-image"
echo "built $out/fuzz-image"
