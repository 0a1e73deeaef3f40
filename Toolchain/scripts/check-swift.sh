#!/usr/bin/env bash
# make deps: the Swift toolchain this project needs, checked (it is not a Debian package, so
# nothing installs it here): Swift 6.3 or later with the Embedded Swift standard library.
set -euo pipefail
want="Swift 6.3 or later with the Embedded Swift standard library (a swift.org toolchain for Linux, 6.3 or later: https://www.swift.org/install/ ; put its usr/bin on PATH)"
if ! command -v swiftc > /dev/null; then
  echo "deps: error: no swiftc on PATH; this project needs $want" >&2
  exit 1
fi
version=$(swiftc --version 2>&1 | sed -n 's/.*Swift version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -1)
read -r major minor <<< "${version:-0 0}"
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 3 ]; }; then
  echo "deps: error: $(command -v swiftc) is Swift ${major}.${minor}; this project needs $want" >&2
  exit 1
fi
embedded=$(dirname "$(readlink -f "$(command -v swiftc)")")/../lib/swift/embedded
if [ ! -d "$embedded/armv7em-none-none-eabi" ] || [ ! -d "$embedded/armv6m-none-none-eabi" ] || [ ! -d "$embedded/riscv32-none-none-eabi" ]; then
  echo "deps: error: $(command -v swiftc) (Swift ${major}.${minor}) has no Embedded standard library for" \
       "armv7em, armv6m and riscv32 under $embedded; this project needs $want" >&2
  exit 1
fi
