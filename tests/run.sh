#!/usr/bin/env bash
# Set up (first run only) and run the test suite: bash tests/run.sh [pytest args]
source "$(dirname "${BASH_SOURCE[0]}")/../.ci/setup-env"
python -m pytest -q "$@"
