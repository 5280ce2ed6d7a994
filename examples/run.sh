#!/usr/bin/env bash
# Set up (first run only) and anonymise the bundled example:
#   examples/astronaut_72bpm.mp4 -> examples/out/astronaut_72bpm.deid.mp4 (+ JSON report)
source "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup-env"
mkdir -p examples/out
deidvid anonymise examples/astronaut_72bpm.mp4 --out-dir examples/out --overwrite \
    --json examples/out/astronaut_72bpm.report.json "$@"
