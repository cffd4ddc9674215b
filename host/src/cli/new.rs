//! `wasmproc new --lang rust|python|js|c NAME`: a process project, ready to
//! build with one command (`./build.sh`) and to run with `wasmproc run`.
//!
//! Every file of a project is compiled into the binary (`include_str!`), so
//! an installed `wasmproc` needs no source tree. There is one template per
//! language, `guest-sdk/{rust,python,js,c}/template`: its source (with the
//! process id set to NAME) and its `build.sh`, as they are. The build
//! scripts find the SDK in `./sdk` and the WIT contract in `./wit` when
//! present, so the same script builds the template in the repository, a
//! copy of it anywhere (given `WASMPROC_SDK`), and a project made here. The
//! SDK itself is **vendored** into the project's `sdk/`, with the WIT
//! contract in `wit/`: a path to a source tree exists only on the machine
//! that has one, a git dependency would follow the SDK's newest commit
//! rather than the contract of the `wasmproc` that runs the component, and
//! the SDK is not on a registry. A vendored copy builds anywhere and always
//! matches the binary that created it.
//!
//! What belongs here: choosing and rewriting the files, checking the name,
//! writing the folder. The project README lives in `host/new-project/`.
//!
//! The command works offline and runs no toolchain: it writes files and
//! prints the two commands that build and run the result. Whether a
//! project made here builds is for the CLI tests (`host/tests/cli.rs`),
//! which build and run some; this file's unit tests check that every
//! rewrite still finds its text, that no placeholder survives, and that
//! the vendored Rust SDK asks for the dependency versions the workspace
//! tests it with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

/// Arguments of `wasmproc new`.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// The language of the process.
    ///
    /// It picks the template, the SDK copied into `sdk/`, and the
    /// toolchain `build.sh` runs; the README made says which tools that
    /// needs.
    #[arg(long, value_enum)]
    lang: Language,
    /// The project's name: its folder (created in the current directory),
    /// its process id and the name of its `.wasm`. Lowercase letters,
    /// digits and single hyphens, starting with a letter.
    name: String,
}

/// A language `wasmproc new` has a template for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Language {
    /// Rust with the `wasmproc-guest` crate (cargo, wasm32-wasip2).
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-qjs (QuickJS).
    Js,
    /// C with clang, wasi-libc, wit-bindgen and wasm-tools.
    C,
}

impl Language {
    /// The `--lang` value, for `{{lang}}` in the project README (the
    /// command that made it).
    fn flag(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
            Language::C => "c",
        }
    }

    /// The language's usual name, for the README and the message printed
    /// after the project is made.
    fn title(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::Python => "Python",
            Language::Js => "JavaScript",
            Language::C => "C",
        }
    }

    /// The file people edit: the template's example with the process id
    /// set to the name, at this path in the project.
    fn source(self) -> &'static str {
        match self {
            Language::Rust => "src/lib.rs",
            Language::Python => "app.py",
            Language::Js => "app.js",
            Language::C => "process.c",
        }
    }

    /// What the build needs, for the README.
    fn toolchain(self) -> &'static str {
        match self {
            Language::Rust => {
                "It needs cargo; it adds the `wasm32-wasip2` target with rustup if it is\n\
                 missing, and the first build downloads the SDK's dependencies\n\
                 (wit-bindgen, serde, serde_json, base64) from crates.io."
            }
            Language::Python => {
                "It needs componentize-py 0.25.1 (`pip install componentize-py==0.25.1`);\n\
                 the component carries the Python interpreter (about 20 MB)."
            }
            Language::Js => {
                "It needs node and npm: the first build installs componentize-qjs\n\
                 (QuickJS), at the version locked in `sdk/package-lock.json`, into\n\
                 `sdk/node_modules`, unless `componentize-qjs` is on PATH."
            }
            Language::C => {
                "It needs clang, lld and wasi-libc (Debian: `clang lld wasi-libc\n\
                 libclang-rt-dev-wasm32`), wit-bindgen-cli 0.63.0 and wasm-tools\n\
                 (`cargo install`), and cargo, which fetches the WASI adapter once."
            }
        }
    }

    /// README rows for the language's own files.
    fn layout(self) -> &'static str {
        match self {
            Language::Rust => {
                "| `Cargo.toml` | the crate (a `cdylib`), its own workspace |\n\
                 | `sdk/` | the `wasmproc-guest` crate, a path dependency |\n"
            }
            Language::Python => {
                "| `locate-sdk.sh` | where `build.sh` finds `sdk/` and `wit/` (or WASMPROC_SDK, WASMPROC_WIT) |\n\
                 | `sdk/wasmproc.py` | the SDK module (`Process`, `Inputs`, `Output`, `log`, `progress`) |\n\
                 | `sdk/componentize.sh` | runs componentize-py |\n"
            }
            Language::Js => {
                "| `locate-sdk.sh` | where `build.sh` finds `sdk/` and `wit/` (or WASMPROC_SDK, WASMPROC_WIT) |\n\
                 | `sdk/wasmproc.js` | the SDK module (`defineProcess`, `Output`, `log`, `progress`) |\n\
                 | `sdk/componentize.sh`, `sdk/package*.json` | runs componentize-qjs, pinned |\n"
            }
            Language::C => {
                "| `locate-sdk.sh` | where `build.sh` finds `sdk/` and `wit/` (or WASMPROC_SDK, WASMPROC_WIT) |\n\
                 | `sdk/wasmproc.h`, `sdk/wasmproc.c` | the SDK (inputs, outputs, JSON, `wp_log`, `wp_progress`) |\n\
                 | `sdk/wasmproc-cc.sh`, `sdk/adapter/` | compile, bind and wrap as a component |\n"
            }
        }
    }

    /// Build outputs a project should not commit.
    fn gitignore(self) -> &'static str {
        match self {
            Language::Rust => "*.wasm\n/target/\n",
            Language::Python => "*.wasm\n__pycache__/\n",
            Language::Js => "*.wasm\nnode_modules/\n",
            Language::C => "*.wasm\n/sdk/adapter/target/\n",
        }
    }
}

/// Inputs the generated example answers `{"words": 2}` to; printed after
/// creating a project and used in its README.
pub(crate) const EXAMPLE_INPUTS: &str = r#"{"text": "the quick brown fox", "minLength": 4}"#;

/// One file of a new project.
#[derive(Debug)]
pub(crate) struct ProjectFile {
    /// Relative to the project folder, `/`-separated.
    pub(crate) path: &'static str,
    /// The whole file: a compiled-in file as it is, or rewritten for the
    /// project's name and language.
    pub(crate) contents: String,
    /// Scripts get mode 0755.
    pub(crate) executable: bool,
}

/// A plain (not executable) file of the project.
fn file(path: &'static str, contents: impl Into<String>) -> ProjectFile {
    ProjectFile {
        path,
        contents: contents.into(),
        executable: false,
    }
}

/// A file of `guest-sdk/` that a project gets as it is: where it goes,
/// its compiled-in contents, and whether it is a script that is run
/// directly (`./build.sh`, the SDK's helpers), which gets mode 0755.
struct Copied(&'static str, &'static str, bool);

impl Copied {
    fn project_file(&self) -> ProjectFile {
        let Copied(path, contents, executable) = *self;
        ProjectFile {
            path,
            contents: contents.into(),
            executable,
        }
    }
}

/// What a Rust project copies: its build script and the SDK crate.
#[rustfmt::skip]
const RUST_COPIED: &[Copied] = &[
    Copied("build.sh", include_str!("../../../guest-sdk/rust/template/build.sh"), true),
    Copied("sdk/Cargo.toml", include_str!("../../../guest-sdk/rust/sdk-Cargo.toml"), false),
    Copied("sdk/src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs"), false),
    Copied("sdk/src/inputs.rs", include_str!("../../../guest-sdk/src/inputs.rs"), false),
    Copied("sdk/src/output.rs", include_str!("../../../guest-sdk/src/output.rs"), false),
];

/// What a Python project copies: its build script, the SDK module and
/// the componentize-py wrapper.
#[rustfmt::skip]
const PYTHON_COPIED: &[Copied] = &[
    Copied("build.sh", include_str!("../../../guest-sdk/python/template/build.sh"), true),
    Copied("sdk/wasmproc.py", include_str!("../../../guest-sdk/python/wasmproc.py"), false),
    Copied("sdk/componentize.sh", include_str!("../../../guest-sdk/python/componentize.sh"), true),
];

/// What a JavaScript project copies: its build script, the SDK module,
/// the componentize-qjs wrapper and the npm package that pins it.
#[rustfmt::skip]
const JS_COPIED: &[Copied] = &[
    Copied("build.sh", include_str!("../../../guest-sdk/js/template/build.sh"), true),
    Copied("sdk/wasmproc.js", include_str!("../../../guest-sdk/js/wasmproc.js"), false),
    Copied("sdk/componentize.sh", include_str!("../../../guest-sdk/js/componentize.sh"), true),
    Copied("sdk/package.json", include_str!("../../../guest-sdk/js/package.json"), false),
    Copied("sdk/package-lock.json", include_str!("../../../guest-sdk/js/package-lock.json"), false),
];

/// What a C project copies: its build script, the SDK's header and
/// source, the compiler wrapper and the Rust adapter crate that exports
/// the WIT world.
#[rustfmt::skip]
const C_COPIED: &[Copied] = &[
    Copied("build.sh", include_str!("../../../guest-sdk/c/template/build.sh"), true),
    Copied("sdk/wasmproc.h", include_str!("../../../guest-sdk/c/wasmproc.h"), false),
    Copied("sdk/wasmproc.c", include_str!("../../../guest-sdk/c/wasmproc.c"), false),
    Copied("sdk/wasmproc-cc.sh", include_str!("../../../guest-sdk/c/wasmproc-cc.sh"), true),
    Copied("sdk/adapter/Cargo.toml", include_str!("../../../guest-sdk/c/adapter/Cargo.toml"), false),
    Copied("sdk/adapter/Cargo.lock", include_str!("../../../guest-sdk/c/adapter/Cargo.lock"), false),
    Copied("sdk/adapter/src/lib.rs", include_str!("../../../guest-sdk/c/adapter/src/lib.rs"), false),
];

/// Replace `from` in a template, failing when it is not there: a template
/// edited in `guest-sdk/` without updating this file must fail the unit
/// tests, not produce a project that still says `my-process` or imports
/// `../wasmproc.js`.
fn rewrite(text: &str, template: &str, from: &str, to: &str) -> anyhow::Result<String> {
    if !text.contains(from) {
        bail!("the {template} template no longer contains {from:?}; update host/src/cli/new.rs");
    }
    Ok(text.replace(from, to))
}

/// An SDK template with the process id set to `name` and its header saying
/// where it came from.
fn example(template: &str, text: &str, name: &str) -> anyhow::Result<String> {
    let text = rewrite(
        text,
        template,
        "copy this folder and edit.",
        "generated by `wasmproc new`.",
    )?;
    rewrite(&text, template, "my-process", name)
}

/// Fill the `{{name}}`-style placeholders of a file of `host/new-project/`.
fn fill(text: &str, name: &str, language: Language) -> String {
    text.replace("{{name}}", name)
        .replace("{{lang}}", language.flag())
        .replace("{{language}}", language.title())
        .replace("{{source}}", language.source())
        .replace("{{toolchain}}", language.toolchain())
        .replace("{{layout}}", language.layout())
}

/// Every file of a `language` project named `name` (already checked).
///
/// Common to all: the README (placeholders filled), a `.gitignore` for
/// the build outputs, and the WIT contract in `wit/`; to all but Rust,
/// `locate-sdk.sh`, which their `build.sh` sources. Then the language's
/// own: `build.sh`, the example source rewritten for `name`, and the SDK
/// files under `sdk/`, copied as they are. An error here means a template
/// changed under this file (see `rewrite`), never a user's mistake.
pub(crate) fn project_files(language: Language, name: &str) -> anyhow::Result<Vec<ProjectFile>> {
    let mut files = vec![
        file(
            "README.md",
            fill(include_str!("../../new-project/README.md"), name, language),
        ),
        file(".gitignore", language.gitignore()),
        file("wit/process.wit", include_str!("../../../wit/process.wit")),
    ];
    if language != Language::Rust {
        // The SDK and WIT lookup that the C, JavaScript and Python
        // `build.sh` share (sourced, so not executable).
        files.push(file(
            "locate-sdk.sh",
            include_str!("../../../guest-sdk/locate-sdk.sh"),
        ));
    }
    // The language's example, rewritten for `name`, then what it copies.
    let copied = match language {
        Language::Rust => {
            let manifest = include_str!("../../../guest-sdk/rust/template/Cargo.toml");
            let source = include_str!("../../../guest-sdk/rust/template/src/lib.rs");
            files.push(file(
                "Cargo.toml",
                rewrite(manifest, "Rust", "my-process", name)?,
            ));
            files.push(file("src/lib.rs", example("Rust", source, name)?));
            RUST_COPIED
        }
        Language::Python => {
            let source = include_str!("../../../guest-sdk/python/template/app.py");
            let app = example("Python", source, name)?;
            let from = "guest-sdk/python on PYTHONPATH";
            files.push(file(
                "app.py",
                rewrite(&app, "Python", from, "sdk/ on PYTHONPATH")?,
            ));
            PYTHON_COPIED
        }
        Language::Js => {
            let source = include_str!("../../../guest-sdk/js/template/app.js");
            files.push(file("app.js", example("JavaScript", source, name)?));
            JS_COPIED
        }
        Language::C => {
            let source = include_str!("../../../guest-sdk/c/template/my_process.c");
            files.push(file("process.c", example("C", source, name)?));
            C_COPIED
        }
    };
    files.extend(copied.iter().map(Copied::project_file));
    Ok(files)
}

/// Longest name: the folder, the process id (the server allows 128) and
/// the file name stay readable, and far from any file-name limit.
const MAX_NAME_LEN: usize = 64;

/// Names cargo refuses for a package or its library (keywords and the
/// crates of the standard distribution).
const RESERVED_IN_RUST: &[&str] = &[
    "alloc",
    "core",
    "proc-macro",
    "std",
    "test",
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
];

/// Check `name`: lowercase ASCII letters, digits and single hyphens,
/// starting with a letter, not ending with a hyphen. It is at once a folder,
/// a process id, a `.wasm` file name, a Rust package name and a string in
/// JSON, C and shell scripts: this set needs no quoting or escaping in any
/// of them.
pub(crate) fn check_name(name: &str, language: Language) -> Result<(), String> {
    let well_formed = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !well_formed {
        return Err(format!(
            "invalid project name {name:?}: use 1–{MAX_NAME_LEN} lowercase letters, digits and \
             single hyphens, starting with a letter (e.g. word-count)"
        ));
    }
    if language == Language::Rust && RESERVED_IN_RUST.contains(&name) {
        return Err(format!(
            "invalid project name {name:?}: cargo refuses it as a Rust package name (a keyword or a \
             standard crate); pick another"
        ));
    }
    Ok(())
}

/// Write `files` into `dir`, which must not exist or be empty. When the
/// folder was created here and a write fails, it is removed again, so a
/// failed `new` leaves nothing behind.
pub(crate) fn write_project(dir: &Path, files: &[ProjectFile]) -> anyhow::Result<()> {
    let created = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} already exists and is not empty", dir.display());
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            true
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{} exists and cannot be listed", dir.display()));
        }
    };
    let written = files.iter().try_for_each(|f| write_file(dir, f));
    if written.is_err() && created {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

/// Write one file under `dir`, creating its parent folders, and on Unix
/// make a script executable (0755). Every error names the path.
fn write_file(dir: &Path, file: &ProjectFile) -> anyhow::Result<()> {
    let path = dir.join(file.path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if file.executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} executable", path.display()))?;
    }
    Ok(())
}

/// `wasmproc new`: create `./NAME`, then say how to build and run it.
/// A bad name or an existing non-empty folder is an error (exit status 2).
///
/// The name is checked before any file is rendered or written, so a
/// refused name leaves nothing behind; the folder is created in the
/// current directory, whatever it is. On success stdout says where the
/// project is, the build command, a `wasmproc run` with inputs the
/// example accepts, and which file to edit.
pub(crate) fn new_project(args: NewArgs) -> anyhow::Result<ExitCode> {
    check_name(&args.name, args.lang).map_err(anyhow::Error::msg)?;
    let files = project_files(args.lang, &args.name)?;
    let dir = PathBuf::from(&args.name);
    write_project(&dir, &files)?;
    println!(
        "created a {} process project in ./{name}\n\n\
         build it (one command):  cd {name} && ./build.sh\n\
         run it:                  wasmproc run {name}.wasm --inputs '{EXAMPLE_INPUTS}'\n\n\
         then edit {source}; {name}/README.md says what each file is.",
        args.lang.title(),
        name = args.name,
        source = args.lang.source(),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGUAGES: [Language; 4] = [Language::Rust, Language::Python, Language::Js, Language::C];

    #[test]
    fn every_language_renders_with_no_placeholder_or_template_path_left() {
        for language in LANGUAGES {
            let files = project_files(language, "word-count").expect("templates rewrite");
            let source = files
                .iter()
                .find(|f| f.path == language.source())
                .unwrap_or_else(|| panic!("{language:?}: no {}", language.source()));
            assert!(
                source.contents.contains("word-count"),
                "{language:?}: the process id is not the name:\n{}",
                source.contents
            );
            for f in &files {
                // The files made here (SDK files are copied as they are,
                // and C has `{{` of its own).
                let ours = f.path == language.source()
                    || ["build.sh", "locate-sdk.sh", "README.md", "Cargo.toml"].contains(&f.path);
                if ours {
                    assert!(
                        !f.contents.contains("{{"),
                        "{language:?} {}: a placeholder is left",
                        f.path
                    );
                    assert!(
                        !f.contents.contains("my-process"),
                        "{language:?} {}",
                        f.path
                    );
                    // The build scripts name guest-sdk/ where they say
                    // what WASMPROC_SDK is; nothing else may point into
                    // the repository.
                    if !["build.sh", "locate-sdk.sh"].contains(&f.path) {
                        assert!(!f.contents.contains("guest-sdk"), "{language:?} {}", f.path);
                    }
                }
            }
            let build = files
                .iter()
                .find(|f| f.path == "build.sh")
                .expect("build.sh");
            assert!(build.executable, "{language:?}");
            // The template's own scripts: they name the component after
            // the folder, which is the name (C and Rust in build.sh, the
            // others in the locate-sdk.sh it sources).
            let names_after_folder =
                |f: &ProjectFile| f.contents.contains("$(basename \"$here\").wasm");
            let sourced = files.iter().find(|f| f.path == "locate-sdk.sh");
            assert!(
                names_after_folder(build) || sourced.is_some_and(names_after_folder),
                "{language:?}"
            );
            assert_eq!(
                sourced.is_some(),
                language != Language::Rust,
                "{language:?}: locate-sdk.sh is for the sourcing builds"
            );
        }
    }

    #[test]
    fn names_that_are_not_a_safe_id_file_and_crate_name_are_refused() {
        for good in ["a", "word-count", "ndvi2", "x-1-y"] {
            assert_eq!(check_name(good, Language::Rust), Ok(()), "{good}");
        }
        let too_long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "", "-a", "a-", "a--b", "Word", "1st", "a_b", "a.b", "../x", "a b", "é", &too_long,
        ] {
            assert!(
                check_name(bad, Language::Python).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(check_name("match", Language::Rust).is_err());
        assert_eq!(check_name("match", Language::Python), Ok(()));
    }

    /// The vendored Rust SDK's manifest asks for the versions the workspace
    /// builds and tests the SDK with.
    #[test]
    fn the_vendored_rust_sdk_uses_the_workspace_versions() {
        let workspace: toml::Table =
            toml::from_str(include_str!("../../../Cargo.toml")).expect("workspace manifest");
        let vendored: toml::Table =
            toml::from_str(include_str!("../../../guest-sdk/rust/sdk-Cargo.toml"))
                .expect("sdk manifest");
        let sdk: toml::Table = toml::from_str(include_str!("../../../guest-sdk/Cargo.toml"))
            .expect("guest-sdk manifest");
        let wanted = sdk["dependencies"].as_table().expect("dependencies");
        let have = vendored["dependencies"].as_table().expect("dependencies");
        assert_eq!(
            wanted.keys().collect::<Vec<_>>(),
            have.keys().collect::<Vec<_>>(),
            "guest-sdk and the vendored manifest name different dependencies"
        );
        for name in wanted.keys() {
            let spec = &workspace["workspace"]["dependencies"][name];
            let version = |v: &toml::Value| match v {
                toml::Value::String(s) => s.clone(),
                other => other["version"].as_str().expect("a version").to_owned(),
            };
            assert_eq!(version(spec), version(&have[name]), "{name}");
            if let Some(features) = spec.get("features") {
                assert_eq!(
                    Some(features),
                    have[name].get("features"),
                    "{name} features"
                );
            }
        }
    }

    #[test]
    fn an_existing_non_empty_folder_is_refused_and_an_empty_one_filled() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let files = project_files(Language::C, "p").expect("files");
        std::fs::write(dir.path().join("keep.txt"), "mine").expect("write");
        let error = write_project(dir.path(), &files).expect_err("non-empty folder");
        assert!(error.to_string().contains("not empty"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        write_project(&empty, &files).expect("an empty folder is filled");
        assert!(empty.join("sdk/adapter/Cargo.lock").is_file());
    }
}
