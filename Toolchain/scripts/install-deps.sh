#!/usr/bin/env bash
# Idempotent setup: Debian packages (apt-get, only when one is missing) and the
# project virtualenv (created once per requirements hash, outside the clone).
# Usage: install-deps.sh VENV_DIR REQUIREMENTS_FILE [NODEPS_REQUIREMENTS_FILE]
# (the second file is installed with --no-deps: packages whose declared dependencies we do not use)
set -euo pipefail
venv=$1
requirements=$2
nodeps=${3:-}

packages=(dataset-fashion-mnist gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-system-misc libcmocka-dev zlib1g-dev valgrind llvm cmake)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$venv/.installed" ]; then
  echo "deps: creating virtualenv $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/pip" install -q -r "$requirements"
  if [ -n "$nodeps" ]; then
    "$venv/bin/pip" install -q --no-deps -r "$nodeps"
  fi
  touch "$venv/.installed"
fi
