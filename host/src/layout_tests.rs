//! The layering of the crate map (`lib.rs`, "# Layout"), checked against
//! the source: each module may name only the modules below it, so an
//! import that would run back up (and make a loop) fails here, with the
//! file and line, before it fails a reader.
//!
//! Only code lines count: a doc comment may link upwards (to
//! `crate::store::Store` from the runtime's docs, say), an import may
//! not. Paths are found as `crate::<module>`, the form every
//! cross-module import in host/src takes.

use std::path::{Path, PathBuf};

/// Each module, from the bottom up, with the modules of this crate it may
/// name. `server` and `cli` sit on top and may name anything, so they are
/// not listed; nor is `builtin`, which names nothing of ours.
const MAY_NAME: &[(&str, &[&str])] = &[
    ("failure", &[]),
    ("ogc", &[]),
    ("telemetry", &[]),
    ("runtime", &["failure", "telemetry"]),
    ("config", &["runtime", "telemetry"]),
    (
        "store",
        &["config", "failure", "ogc", "runtime", "telemetry"],
    ),
    (
        "jobs",
        &[
            "builtin",
            "config",
            "failure",
            "ogc",
            "runtime",
            "store",
            "telemetry",
        ],
    ),
    (
        "api",
        &["config", "jobs", "ogc", "runtime", "store", "telemetry"],
    ),
];

/// Every top-level module of the crate (`lib.rs`'s `pub mod` lines).
const MODULES: &[&str] = &[
    "api",
    "builtin",
    "config",
    "failure",
    "jobs",
    "ogc",
    "runtime",
    "server",
    "store",
    "telemetry",
];

/// The `.rs` files of module `name`: `name.rs`, or every file under
/// `name/`.
fn files_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut folders = vec![src.join(name)];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The modules of this crate a line of code names as `crate::<module>`.
fn named_modules(line: &str) -> impl Iterator<Item = &'static str> + '_ {
    line.match_indices("crate::").filter_map(|(at, _)| {
        let rest = &line[at + "crate::".len()..];
        MODULES.iter().copied().find(|module| {
            rest.strip_prefix(module)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

#[test]
fn every_module_names_only_the_modules_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = Vec::new();
    for (module, allowed) in MAY_NAME {
        let files = files_of(&src, module);
        assert!(!files.is_empty(), "module {module} has no files");
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for named in named_modules(line) {
                    if named != *module && !allowed.contains(&named) {
                        upward.push(format!(
                            "{}:{}: {module} names crate::{named}",
                            file.strip_prefix(&src).unwrap_or(&file).display(),
                            number + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run back up the crate's layers (see lib.rs, \"# Layout\"):\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_that_runs_back_up() {
    let named: Vec<_> = named_modules("use crate::store::{JobRecord, Store};").collect();
    assert_eq!(named, ["store"]);
    let named: Vec<_> =
        named_modules("let x = crate::jobs::job_span(&job); crate::storey::f()").collect();
    assert_eq!(named, ["jobs"], "a longer name is not the module");
}

#[test]
fn every_module_of_the_crate_is_known() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';'))
        .collect();
    assert_eq!(declared, MODULES, "lib.rs's modules and MODULES differ");
}
