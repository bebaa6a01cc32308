#!/usr/bin/env bash
# Regenerate nitro/requirements.txt: kalypso's dependencies and its `nitro` extra, at the
# versions installed in .venv (what the suite ran with), each with the hashes of its
# files. Needs `make setup` and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet pip-tools
.venv/bin/pip freeze --exclude-editable > "$work/constraints.txt"
head -4 nitro/requirements.txt > "$work/requirements.txt"
"$work/venv/bin/pip-compile" --quiet --generate-hashes --extra nitro --strip-extras \
  --no-header --no-emit-index-url --no-emit-find-links --annotation-style line \
  --constraint "$work/constraints.txt" --output-file "$work/compiled.txt" pyproject.toml
sed -e "s|-c $work/constraints.txt, ||" -e "s|  # via -c $work/constraints.txt\$||" \
  "$work/compiled.txt" >> "$work/requirements.txt"
mv "$work/requirements.txt" nitro/requirements.txt
echo "nitro/requirements.txt: $(grep -c '^[a-z]' nitro/requirements.txt) packages"
