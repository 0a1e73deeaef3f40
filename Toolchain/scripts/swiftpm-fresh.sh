#!/usr/bin/env bash
# Run before `swift build`: SwiftPM does not always recompile the Swift modules that inline a
# changed C header (the static inline functions of Sources/CSDMachine and the types of
# Include/csd.h reach Swift through Clang modules, and a rebuilt module whose Swift interface is
# unchanged does not make its dependents recompile). When the content of any C header or module
# map differs from the last build's, this removes the project's module build folders and Clang
# module caches (and llbuild's database), so the next build compiles every module that could inline them.
# Usage: swiftpm-fresh.sh [BUILD_DIR]   (default .build)
set -euo pipefail
build=${1:-.build}
root=$(cd "$(dirname "$0")/../.." && pwd)
stamp=$build/c-headers.sha256
sum=$(cd "$root" && find Sources Include \( -name '*.h' -o -name '*.modulemap' \) -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then exit 0; fi
if [ -f "$stamp" ]; then echo "swiftpm-fresh: C headers changed: rebuilding the modules that inline them"; fi
for config in "$build"/*-*-*/*/; do
  [ -d "$config" ] || continue
  rm -rf "$config"CSD*.build "$config"csdpack.build "$config"CSDformerPackage*.build "$config"ModuleCache
done
# llbuild's record of what it ran: without it every step runs again (with it, the steps that wrote
# the removed folders' file lists would count as done and the build would fail on their absence)
rm -f "$build/build.db"
mkdir -p "$build"
echo "$sum" > "$stamp"
