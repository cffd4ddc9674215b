#!/usr/bin/env bash
# Install what the browser and metrics tests need, idempotently:
#   - Debian's chromium and chromium-driver (tests/tests/e2e/browser.rs
#     drives chromium through chromedriver on 127.0.0.1);
#   - Debian's prometheus package, for `promtool check metrics`
#     (tests/tests/e2e/metrics.rs);
#   - fonts-dejavu-core, so pages render with real glyphs in screenshots.
# Packages already installed are left alone; otherwise apt-get installs
# them (root or sudo needed). Prints the versions found.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -gt 0 ]; then
    printf 'browser-up: installing %s\n' "${need[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

printf 'browser-up: %s; %s; %s\n' \
    "$(chromium --version 2>/dev/null | head -1)" \
    "$(chromedriver --version 2>/dev/null | head -1)" \
    "$(promtool --version 2>&1 | head -1)" >&2
