#!/bin/bash
# Install the Debian packages the book needs, only when they are missing:
#   graphviz (the `dot` binary, for diagrams), chromium (browser tests),
#   spin (the benchmark against SPIN, and its test), python3-venv (when
#   `python3 -m venv` cannot bootstrap pip), npm (vendors the labs' browser runtime).
set -euo pipefail
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v spin >/dev/null 2>&1 || need+=(spin)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ! -x .venv/bin/python ] && ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    need+=(python3-venv)
fi
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "sysdeps: missing ${need[*]} and no apt-get; install them by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "sysdeps: installing ${need[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need[@]}"
