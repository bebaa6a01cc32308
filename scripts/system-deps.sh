#!/usr/bin/env bash
# Make sure the few system tools Kalypso builds on are present: python3 with venv, node and npm.
# On a fresh Debian machine it installs what is missing with apt-get (as root, or through sudo).
# `--browser` also makes sure of Chromium, which the dashboard's browser tests drive.
set -euo pipefail

missing=()
if [ "${1:-}" = "--browser" ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "kalypso: installing system packages: ${missing[*]}" >&2
if ! command -v apt-get >/dev/null 2>&1; then
    echo "kalypso: please install ${missing[*]} with your package manager, then re-run make" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
