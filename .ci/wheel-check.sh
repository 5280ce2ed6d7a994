#!/usr/bin/env bash
# The wheel works outside the checkout: build it, install it (not editable) into a fresh
# venv, and from a folder that cannot import the checkout run `deidvid anonymise` on the
# example, without and with the identity check; every bundled weights file must be found
# in site-packages and pass its sha256 check.
#   bash .ci/wheel-check.sh   (3.5-5.5 min on the 2-core dev box, 2-3.5 of them installing torch
#   and the other dependencies: too slow for .ci/run, run it before a release)
# Env: PYTHON (default python3), WHEEL_CHECK_DIR (default: a new temporary folder, removed after).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
if [ -n "${WHEEL_CHECK_DIR:-}" ]; then
    WORK="$WHEEL_CHECK_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
fi
step() { echo "[wheel-check] $(date +%T) $*"; }

# Build from a copy of what the wheel is made of, so a stale build/ cannot leak into it.
step "build"
mkdir -p "$WORK/src" "$WORK/whl"
cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$WORK/src/"
(cd "$ROOT" && tar --exclude='__pycache__' --exclude='*.pyc' -cf - deidvid) | tar -xf - -C "$WORK/src"
"$PYTHON" -m pip wheel --disable-pip-version-check --quiet --no-deps -w "$WORK/whl" "$WORK/src"
WHEEL="$(ls "$WORK"/whl/deidvid-*.whl)"
step "$(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB"

step "fresh venv + pip install (not editable)"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --disable-pip-version-check --quiet "$WHEEL"

cd "$WORK"  # not the checkout: deidvid must come from site-packages
step "weights from site-packages, every manifest entry sha256-verified"
"$WORK/venv/bin/python" - <<'EOF'
import deidvid
from deidvid.weights.manifest import load_safetensors, package_file, read_manifest, weights_dir

assert "site-packages" in deidvid.__file__, deidvid.__file__
assert "site-packages" in str(weights_dir()), weights_dir()
for name, entry in read_manifest()["models"].items():
    load_safetensors(name) if "file" in entry else package_file(name)  # raise on a bad sha256
print(f"  {len(read_manifest()['models'])} models verified in {weights_dir()}")
EOF

step "deidvid anonymise --no-identity-check"
"$WORK/venv/bin/deidvid" anonymise "$ROOT/examples/astronaut_72bpm.mp4" -o "$WORK/out_blur.mp4" -q --no-identity-check
test -s "$WORK/out_blur.mp4"
step "deidvid anonymise (identity check on)"
"$WORK/venv/bin/deidvid" anonymise "$ROOT/examples/astronaut_72bpm.mp4" -o "$WORK/out_checked.mp4" -q
test -s "$WORK/out_checked.mp4"
step "ok"
