#!/usr/bin/env bash
# Install the HTTP fuzzing tools into reliability/.venv: schemathesis from
# PyPI, pinned with all its dependencies in reliability/requirements.txt.
# Idempotent: when the venv already has that schemathesis version this
# only checks and exits (well under a second). A fresh install takes ~10 s.
# Needs python3 (3.9+); installs the Debian python3-venv package when
# `python3 -m venv` does not work (root or sudo).
#
#     reliability/install-tools.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
requirements="$here/requirements.txt"
want="$(sed -n 's/^schemathesis==//p' "$requirements")"

say() { printf '==> %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

have="$("$venv/bin/schemathesis" --version 2>/dev/null || true)"
if [[ "$have" == "schemathesis, version $want" ]]; then
    say "schemathesis $want present in reliability/.venv"
    exit 0
fi

command -v python3 >/dev/null || { echo "install-tools: python3 is required" >&2; exit 1; }
if [[ ! -x "$venv/bin/python" ]]; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        say "python3 -m venv failed: installing python3-venv (Debian)"
        as_root apt-get update -qq
        as_root apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
fi
say "pip install -r reliability/requirements.txt (schemathesis $want)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/schemathesis" --version
