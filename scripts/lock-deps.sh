#!/usr/bin/env bash
# Refresh constraints.txt, the versions CI and `make` install (README, "Dependencies").
#
# Resolves the package with its test extra, plus what tox, the Cython build, ruff and mypy need,
# in a fresh virtual environment with the newest releases, and writes every version it got.
# Review the diff, run `make test` (and `tox -e latest` meets the next releases before this does).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv "$work/venv"
pip="$work/venv/bin/pip"
"$pip" install -q --upgrade pip
# Build requirements (pyproject's [build-system]) and the tools of the lint and type envs come
# from the same resolution, so one file constrains every pip call tox makes.
TILLGATE_NO_EXTENSIONS=1 "$pip" install -q '.[test]' tox 'Cython>=3.0' 'setuptools>=68' wheel \
    ruff mypy mypy-zope
{
    echo "# Locked versions for CI, tox and make (PIP_CONSTRAINT). Written by scripts/lock-deps.sh"
    echo "# on $(date -u +%Y-%m-%d) with $("$PYTHON" -V); the package's own ranges stay open."
    "$pip" freeze --all --exclude tillgate --exclude pip | LC_ALL=C sort -f
} > constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) packages"
