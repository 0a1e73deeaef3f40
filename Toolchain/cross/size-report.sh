#!/usr/bin/env bash
# Prints, per Embedded target, the runtime's code size and forbidden symbols:
#   size: target=T text=BYTES heap_symbols=N float_symbols=N
# text is the .text of a link that calls every csd_* export with --gc-sections
# (what a firmware pays), measured by linking Toolchain/cross/size-probe.c.
set -euo pipefail
build=$1; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
heap='^(malloc|free|calloc|realloc|posix_memalign|aligned_alloc|swift_allocObject|swift_slowAlloc)$'
float='^(__aeabi_[fd](add|sub|mul|div|cmp.*|2.*|to.*)|__aeabi_[iu]l?2[fd]|__(add|sub|mul|div)[sdt]f3|__(fix|float)(un)?[sdt]i.*|__(extend|trunc)[sdt]f.*|__[a-z]*[sd]f2)$'
for t in "$@"; do
  lib=$build/$t/libcsd.a
  case $t in
    armv7em-soft) cc=(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft); nm=arm-none-eabi-nm; size=arm-none-eabi-size ;;
    armv7em-hard) cc=(arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16); nm=arm-none-eabi-nm; size=arm-none-eabi-size ;;
    armv6m) cc=(arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb); nm=arm-none-eabi-nm; size=arm-none-eabi-size ;;
    riscv32) cc=(clang --target=riscv32-none-elf -march=rv32imac -mabi=ilp32 -fuse-ld=lld); nm=llvm-nm; size=llvm-size ;;
    x86_64) cc=(cc -fno-pie -no-pie -static-pie); nm=nm; size=size ;;
  esac
  out=$build/$t/size-probe.elf
  libgcc=""  # the compiler's helpers (e.g. __aeabi_lmul on Cortex-M0+), as every firmware links them
  case $t in armv*) libgcc=-lgcc ;; esac
  if [ "$t" = x86_64 ]; then
    text=$($size -A "$lib" | awk '$1 ~ /^\.text/ {s += $2} END {print s + 0}')
  else
    "${cc[@]}" -Os -ffreestanding -fno-builtin -nostdlib -I"$root/Include" -Wl,--gc-sections -Wl,-e,_start \
      "$root/Toolchain/cross/size-probe.c" "$lib" $libgcc -o "$out" 2>/dev/null
    probe=$("${cc[@]}" -Os -ffreestanding -fno-builtin -nostdlib -I"$root/Include" -DCSD_SIZE_PROBE_ONLY -c \
      "$root/Toolchain/cross/size-probe.c" -o "$out.o" 2>/dev/null && $size -A "$out.o" | awk '$1 ~ /^\.text/ {s += $2} END {print s + 0}')
    total=$($size -A "$out" | awk '$1 ~ /^\.text/ {s += $2} END {print s + 0}')
    text=$((total - probe))
  fi
  syms=$($nm "$lib" 2>/dev/null | awk '{print $NF}' | sort -u)
  heap_n=$(grep -cE "$heap" <<<"$syms" || true)
  float_n=$(grep -cE "$float" <<<"$syms" || true)
  echo "size: target=$t text=$text heap_symbols=$heap_n float_symbols=$float_n"
done
