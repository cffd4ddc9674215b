#!/usr/bin/env bash
# Install the toolchains of the Python, JavaScript and C guests from the
# package registries (PyPI, npm, Debian, crates.io). Idempotent: whatever is
# already present at the pinned version is skipped, so a second run takes
# seconds. On a fresh machine the two `cargo install`s take ~5-8 minutes
# on two cores; everything else well under a minute.
#
#     polyglot/install-toolchains.sh [python] [js] [c]     (default: all three)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

COMPONENTIZE_PY_VERSION=0.25.1   # PyPI
WIT_BINDGEN_VERSION=0.63.0       # crates.io wit-bindgen-cli (C bindings)
WASM_TOOLS_VERSION=1.263.0       # crates.io wasm-tools (component new)
# componentize-qjs (npm) is pinned in guest-sdk/js/package.json + package-lock.json.
# The WASI preview1 adapter (crates.io) is pinned in guest-sdk/c/adapter/Cargo.lock.

langs=("$@")
[[ ${#langs[@]} -gt 0 ]] || langs=(python js c)

say() { printf '==> %s\n' "$*"; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

install_python() {
    if [[ "$(componentize-py --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
        say "componentize-py $COMPONENTIZE_PY_VERSION present"
        return
    fi
    say "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
    command -v pyenv >/dev/null && pyenv rehash || true
    componentize-py --version
}

install_js() {
    local sdk="$root/guest-sdk/js"
    local want have
    want="$(node -p "require('$sdk/package.json').devDependencies['componentize-qjs']")"
    have="$(node -p "require('$sdk/node_modules/componentize-qjs/package.json').version" 2>/dev/null || true)"
    if [[ "$have" == "$want" && -x "$sdk/node_modules/.bin/componentize-qjs" ]]; then
        say "componentize-qjs $want present"
        return
    fi
    say "npm install in guest-sdk/js (componentize-qjs $want, as locked)"
    # Not `npm ci`: it rejects the lock because three optional platform
    # bindings that componentize-qjs 0.4.5 lists were never published.
    # `npm install --no-save` installs exactly the locked tree all the same.
    (cd "$sdk" && npm install --no-save --no-audit --no-fund --loglevel=error)
}

cargo_tool() { # binary version crate [cargo install flags...]
    local bin="$1" version="$2" crate="$3"
    shift 3
    if command -v "$bin" >/dev/null && "$bin" --version 2>/dev/null | grep -qw "$version"; then
        say "$bin $version present"
        return
    fi
    say "cargo install $crate@$version (compiles for a few minutes)"
    cargo install --quiet --locked "$crate@$version" "$@"
}

install_c() {
    local missing=()
    for pkg in clang lld wasi-libc libclang-rt-dev-wasm32; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "apt-get install ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        say "clang, lld, wasi-libc, libclang-rt-dev-wasm32 present"
    fi
    cargo_tool wit-bindgen "$WIT_BINDGEN_VERSION" wit-bindgen-cli --no-default-features --features c
    cargo_tool wasm-tools "$WASM_TOOLS_VERSION" wasm-tools \
        --no-default-features --features component,validate,print,parse,metadata
    say "WASI preview1 reactor adapter (crates.io, via cargo metadata)"
    cargo metadata --quiet --format-version 1 --locked \
        --manifest-path "$root/guest-sdk/c/adapter/Cargo.toml" >/dev/null
}

for lang in "${langs[@]}"; do
    case "$lang" in
        python) install_python ;;
        js) install_js ;;
        c) install_c ;;
        *) echo "unknown language '$lang' (python, js, c)" >&2; exit 2 ;;
    esac
done
