#!/usr/bin/env bash
# Installs whatever is missing for tvm-accel, then returns. Idempotent and quiet when
# everything is already there. Called by `make demo` and `make test` (README), and so by CI.
#   1. Debian packages listed in scripts/apt-packages.txt
#   2. the virtual environment in .venv (the package, editable, with its test extras)
#   3. the native build (root CMakeLists.txt) into build/
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------
mapfile -t wanted < <(grep -Ev '^\s*(#|$)' scripts/apt-packages.txt)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. virtual environment ----------------------------------------------------------------
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($py --version)"
    "$py" -m venv .venv
  fi
  say "installing Python packages into .venv (first time: a few minutes; log in .venv/pip-install.log)"
  if ! { .venv/bin/python -m pip install -q --upgrade pip && .venv/bin/python -m pip install -q --pre -e '.[test]'; } \
      > .venv/pip-install.log 2>&1; then
    tail -n 40 .venv/pip-install.log >&2
    say "pip install failed (full log: .venv/pip-install.log)"
    exit 1
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# --- 3. native build -----------------------------------------------------------------------
if [ -f CMakeLists.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$root/.venv/bin/python" >/dev/null
  cmake --build build -j"$(nproc)" >/dev/null
fi
say "ready"
