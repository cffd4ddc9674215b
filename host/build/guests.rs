// Builds guest components (crates of this workspace) for `wasm32-wasip2`
// from a build script, like Spin's `tests/test-components/build.rs`.
//
// Shared by `host/build.rs` (the example processes, embedded in the binary
// as built-ins) and `tests/build.rs` (the hostile test processes): both
// `include!` this file. Guests build in their own target directory,
// `target/guests`, so the nested cargo never waits on the outer one.

use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";
const GUEST_PROFILE: &str = "guest";

/// Build `packages` with the `guest` profile and, for each, emit
/// `cargo:rustc-env=WASMPROC_GUEST_<NAME>=<path to .wasm>`.
fn build_guests(packages: &[&str], watched: &[&str]) {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir.parent().expect("crate lives in the workspace").to_path_buf();
    for path in watched.iter().chain(["wit", "guest-sdk", "Cargo.lock"].iter()) {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");
    ensure_guest_target();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--profile", GUEST_PROFILE, "--target", GUEST_TARGET, "--target-dir"])
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // The outer build's flags and wrappers (clippy, coverage, host RUSTFLAGS)
    // are for the host, not for the guests.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("failed to run cargo for the guest components");
    assert!(status.success(), "building guest components {packages:?} failed");

    for package in packages {
        let file = package.replace('-', "_") + ".wasm";
        let wasm = target_dir.join(GUEST_TARGET).join(GUEST_PROFILE).join(file);
        assert!(wasm.is_file(), "expected guest component at {}", wasm.display());
        let var = package.replace('-', "_").to_uppercase();
        println!("cargo:rustc-env=WASMPROC_GUEST_{var}={}", wasm.display());
    }
}

/// Install the `wasm32-wasip2` target with rustup when it is missing, so a
/// fresh machine with only rustup stable builds without a manual step.
fn ensure_guest_target() {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    let installed = sysroot
        .map(|s| Path::new(&s).join("lib/rustlib").join(GUEST_TARGET).is_dir())
        .unwrap_or(false);
    if !installed {
        println!("cargo:warning=installing the {GUEST_TARGET} target with rustup");
        let ok = Command::new("rustup")
            .args(["target", "add", GUEST_TARGET])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "the {GUEST_TARGET} target is missing: run `rustup target add {GUEST_TARGET}`");
    }
}
