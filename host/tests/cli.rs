//! `wasmproc run` and `wasmproc describe` on the examples and the hostile
//! process: outputs on stdout, a stats line on stderr, and the exit status.
//! `wasmproc config check`: the effective configuration, and contradictions
//! refused. `wasmproc serve --log-format json`: its log as JSON lines.

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_wasmproc");
const HELLO: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const ECHO: &str = env!("WASMPROC_GUEST_ECHO");
const HOSTILE: &str = env!("WASMPROC_GUEST_HOSTILE");

/// The binary, its artifact cache kept in the build's temporary folder
/// (not the user's `~/.cache`).
fn binary() -> Command {
    let mut command = Command::new(BINARY);
    command.env("WASMPROC_CACHE_DIR", RUN_CACHE);
    command
}

/// Where the tests' `wasmproc run` keeps compiled components.
const RUN_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/run-cache");

fn wasmproc(args: &[&str]) -> Output {
    binary()
        .args(args)
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .expect("wasmproc runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_prints_outputs_as_json_and_a_stats_line() {
    let output = wasmproc(&[
        "run",
        HELLO,
        "--inputs",
        r#"{"name": "Joe", "message": "hi"}"#,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let outputs: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(outputs, serde_json::json!({ "echo": "Hello Joe! hi" }));
    let stats = stderr(&output);
    assert!(stats.contains("outcome=success"), "{stats}");
    assert!(
        stats.contains("fuel=") && stats.contains("peak_memory=") && stats.contains("duration="),
        "{stats}"
    );
}

#[test]
fn binary_outputs_are_printed_as_base64_qualified_values() {
    let output = wasmproc(&[
        "run",
        ECHO,
        "--inputs",
        r#"{"stringInput": "s", "binaryInput": {"value": "AAEC", "mediaType": "image/png"}}"#,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let outputs: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(outputs["binaryInput"]["value"], "AAEC");
    assert_eq!(outputs["binaryInput"]["mediaType"], "image/png");
}

#[test]
fn each_hostile_behaviour_fails_with_its_outcome_and_exit_status_1() {
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "infinite-loop",
            &["--fuel", "1000000"],
            "outcome=fuel-exhausted",
            "fuel limit exhausted",
        ),
        (
            "endless-sleep",
            &["--timeout", "300ms"],
            "outcome=timeout",
            "wall-clock limit exceeded",
        ),
        (
            "memory-bomb",
            &["--memory", "16MiB"],
            "outcome=memory-limit",
            "memory limit exceeded",
        ),
        ("deep-recursion", &[], "outcome=trap", "the process trapped"),
        ("panic", &[], "outcome=trap", "panicked or aborted"),
        (
            "huge-output",
            &["--output-limit", "1MiB"],
            "outcome=output-too-large",
            "output limit exceeded",
        ),
        (
            "process-error",
            &[],
            "outcome=process-error",
            "hostile-refusal",
        ),
        ("exit", &[], "outcome=trap", "exit"),
        (
            "invalid-json",
            &[],
            "outcome=invalid-output",
            "invalid output 'result': its json value is not valid JSON",
        ),
        (
            "undeclared-output",
            &[],
            "outcome=invalid-output",
            "invalid output 'surprise': the process description does not declare it",
        ),
        (
            "wrong-media-type",
            &[],
            "outcome=invalid-output",
            "invalid output 'image': media type 'text/html' contradicts the description, which declares image/png",
        ),
        (
            "null-output",
            &[],
            "outcome=invalid-output",
            "invalid output 'result': null is not of type \"string\"",
        ),
    ];
    for (behaviour, flags, outcome, reason) in cases {
        let inputs = format!(r#"{{"behaviour": "{behaviour}"}}"#);
        let mut args = vec!["run", HOSTILE, "--inputs", inputs.as_str()];
        args.extend_from_slice(flags);
        let output = wasmproc(&args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{behaviour}: {err}");
        assert!(err.contains(outcome), "{behaviour}: {err}");
        assert!(err.contains(reason), "{behaviour}: {err}");
        assert!(output.stdout.is_empty(), "{behaviour} printed outputs");
    }
}

/// Inputs the server answers 400 to are refused before the guest runs,
/// with the server's own reason (it names the input) and what to do;
/// `--no-validate` runs them anyway.
#[test]
fn run_refuses_the_inputs_the_server_refuses_naming_them() {
    let cases = [
        (
            HELLO,
            r#"{"name": "x", "bogus": 1}"#,
            "unknown input 'bogus'; this process takes: message, name",
        ),
        (HELLO, r#"{"message": "hi"}"#, "input 'name' is required"),
        (
            HELLO,
            r#"{"name": 5}"#,
            "input 'name': 5 is not of type \"string\"",
        ),
        (
            HOSTILE,
            r#"{"behaviour": "acres"}"#,
            "input 'behaviour': \"acres\" is not one of",
        ),
        (
            ECHO,
            r#"{"stringInput": "s", "arrayInput": [1,2,3,4,5,6,7,8,9,10,11]}"#,
            "input 'arrayInput'",
        ),
        (
            HELLO,
            r#"{"name": {"href": "file:///etc/passwd"}}"#,
            "only http and https references are supported",
        ),
    ];
    for (module, inputs, reason) in cases {
        let output = wasmproc(&["run", module, "--inputs", inputs]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{inputs}: {err}");
        assert!(err.contains(reason), "{inputs}: {err}");
        assert!(
            err.contains("--no-validate") && err.contains("wasmproc describe"),
            "{inputs}: says what to do: {err}"
        );
        assert!(!err.contains("outcome="), "{inputs}: the guest ran: {err}");
    }
    let unchecked = wasmproc(&[
        "run",
        HELLO,
        "--no-validate",
        "--inputs",
        r#"{"name": "x", "bogus": 1}"#,
    ]);
    assert!(unchecked.status.success(), "{}", stderr(&unchecked));
    let unchecked = wasmproc(&[
        "run",
        HOSTILE,
        "--no-validate",
        "--inputs",
        r#"{"behaviour": "null-output"}"#,
    ]);
    assert!(
        unchecked.status.success(),
        "output checks are skipped too: {}",
        stderr(&unchecked)
    );
}

/// An HTTP server on 127.0.0.1 that answers one request with `body` as
/// text/plain; its address.
fn serve_one_text_response(body: &'static str) -> std::net::SocketAddr {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// `href` inputs go through the server's SSRF guard: loopback is refused
/// with the flag that allows it, and fetched once allowed.
#[test]
fn run_fetches_href_inputs_behind_the_servers_guard() {
    let addr = serve_one_text_response("Ann");
    let inputs = format!(r#"{{"name": {{"href": "http://{addr}/name.txt"}}}}"#);
    let refused = wasmproc(&["run", HELLO, "--inputs", &inputs]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("input 'name'") && err.contains("non-public address 127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("--allow-href-host 127.0.0.1"), "{err}");
    let fetched = wasmproc(&[
        "run",
        HELLO,
        "--allow-href-host",
        "127.0.0.1",
        "--inputs",
        &inputs,
    ]);
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    let outputs: serde_json::Value = serde_json::from_slice(&fetched.stdout).expect("JSON");
    assert_eq!(outputs, serde_json::json!({ "echo": "Hello Ann!" }));
}

/// The artifact cache of `wasmproc run`: the first run of a component
/// compiles it into the cache directory, the second loads it from there
/// and says so on the stats line; `--no-cache` compiles again.
#[test]
fn a_second_run_of_the_same_component_loads_it_from_the_cache() {
    let cache = tempfile::tempdir().expect("temporary directory");
    let run = |extra: &[&str]| {
        let mut command = Command::new(BINARY);
        command
            .env("WASMPROC_CACHE_DIR", cache.path())
            .args(["run", HELLO, "--inputs", r#"{"name": "Joe"}"#])
            .args(extra);
        let output = command.output().expect("wasmproc runs");
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    let first = run(&[]);
    assert!(
        first.contains("compile=") && !first.contains("compile=cached"),
        "{first}"
    );
    let artifacts: Vec<_> = std::fs::read_dir(cache.path().join("artifacts"))
        .expect("the cache directory was made")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".cwasm"))
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let second = run(&[]);
    assert!(second.contains("compile=cached"), "{second}");
    let uncached = run(&["--no-cache"]);
    assert!(!uncached.contains("compile=cached"), "{uncached}");
}

#[test]
fn describe_prints_the_process_description() {
    let output = wasmproc(&["describe", ECHO]);
    assert!(output.status.success(), "{}", stderr(&output));
    let description: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(description["id"], "echo");
    assert!(description["inputs"]["pause"].is_object());
}

#[test]
fn unusable_modules_and_inputs_exit_with_status_2_and_a_reason() {
    let not_wasm = wasmproc(&["run", env!("CARGO_MANIFEST_DIR"), "--inputs", "{}"]);
    assert_eq!(not_wasm.status.code(), Some(2));
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let garbage = wasmproc(&["run", manifest]);
    assert_eq!(garbage.status.code(), Some(2));
    assert!(
        stderr(&garbage).contains("not a WebAssembly binary"),
        "{}",
        stderr(&garbage)
    );
    let bad_inputs = wasmproc(&["run", HELLO, "--inputs", "[1, 2]"]);
    assert_eq!(bad_inputs.status.code(), Some(2));
    assert!(
        stderr(&bad_inputs).contains("JSON object"),
        "{}",
        stderr(&bad_inputs)
    );
}

/// `wasmproc config check --config FILE` with `WASMPROC_ADMIN_TOKEN` set.
fn config_check(toml: &str) -> Output {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("wasmproc.toml");
    std::fs::write(&file, toml).expect("write the config");
    binary()
        .args(["config", "check", "--config"])
        .arg(&file)
        .env_remove("WASMPROC_CONFIG")
        .env("WASMPROC_ADMIN_TOKEN", "s3cret-token")
        .output()
        .expect("wasmproc runs")
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_redacted() {
    let output = config_check(
        r#"
        [limits.default]
        timeout = "30s"
        [limits.max]
        memory_bytes = 1073741824
        [processes.echo]
        limits = { timeout = "10m" }
        "#,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(!stdout.contains("s3cret-token"), "{stdout}");
    let effective: toml::Table = toml::from_str(&stdout).expect("TOML on stdout");
    assert_eq!(
        effective["auth"]["admin_token"].as_str(),
        Some("<redacted>")
    );
    // Each table merged field by field: the process inherits the rest from
    // `[limits.default]`, `[limits.max]` keeps the built-in maxima.
    let echo = &effective["processes"]["echo"]["limits"];
    assert_eq!(echo["timeout"].as_str(), Some("10m"), "{stdout}");
    assert_eq!(echo["fuel"], effective["limits"]["default"]["fuel"]);
    assert_eq!(
        effective["limits"]["default"]["timeout"].as_str(),
        Some("30s")
    );
    assert_eq!(effective["limits"]["max"]["timeout"].as_str(), Some("1h"));
    // What it prints is a configuration `serve` reads back.
    let again = config_check(&stdout.replace("<redacted>", "s3cret-token"));
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn config_check_exits_1_naming_every_contradiction() {
    let output = config_check(
        r#"
        [limits.max]
        timeout = "1h"
        [processes.echo]
        limits = { timeout = "2h" }
        [processes.geometry.limits]
        memory_bytes = 2147483648
        "#,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let errors = stderr(&output);
    for expected in [
        "processes.echo.limits.timeout = 2h is above limits.max.timeout = 1h",
        "processes.geometry.limits.memory_bytes = 2147483648 is above limits.max.memory_bytes = 1073741824",
    ] {
        assert!(errors.contains(expected), "{errors}");
    }
    let unreadable = config_check("[limits.max]\ntimeout = 12");
    assert_eq!(unreadable.status.code(), Some(2), "{}", stderr(&unreadable));
}

/// `serve --log-format json`: every line the server writes to stderr is a
/// JSON object; the start-up line says where it listens. The server is
/// killed once that line is read.
#[test]
fn serve_with_log_format_json_writes_json_lines() {
    let (server, started) = start_serve(&[], |line| {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
    });
    drop(server);
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(
        started["fields"]["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{started}"
    );
    assert!(started["timestamp"].is_string(), "{started}");
}

/// Where a child's output goes: files, so a chatty child never blocks on a
/// full pipe while the test waits for it.
struct Captured {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `command` to the end, at most `limit`: polled every 100 ms, killed
/// and failed past the limit. Its stdout and stderr are captured in files.
fn run_bounded(mut command: Command, limit: std::time::Duration, what: &str) -> Captured {
    use std::process::Stdio;
    let logs = tempfile::tempdir().expect("temporary directory");
    let out_path = logs.path().join("stdout");
    let err_path = logs.path().join("stderr");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    Captured {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// `wasmproc new --lang LANG NAME` in `dir`.
fn wasmproc_new(dir: &std::path::Path, lang: &str, name: &str) -> Output {
    binary()
        .args(["new", "--lang", lang, name])
        .current_dir(dir)
        .output()
        .expect("wasmproc runs")
}

/// The generated example's inputs, and what it answers.
const NEW_PROJECT_INPUTS: &str = r#"{"text": "the quick brown fox", "minLength": 4}"#;

/// A first Rust build compiles wit-bindgen and serde; a Python one runs
/// componentize-py for ~15 s of CPU; a JavaScript one may install
/// componentize-qjs from npm first. All on two busy cores.
const NEW_PROJECT_BUILD_LIMIT: std::time::Duration = std::time::Duration::from_secs(900);

/// The repository this test runs in.
fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `./build.sh` in `project`, with the toolchains found as
/// `polyglot/build-all.sh` finds them (PATH, and componentize-qjs in
/// `guest-sdk/js/node_modules` when `polyglot/install-toolchains.sh` put it
/// there).
fn guest_build(project: &std::path::Path) -> Command {
    let mut build = Command::new("./build.sh");
    build.current_dir(project);
    toolchain_env(&mut build, &[]);
    build
}

/// The environment of a guest build: the toolchains on PATH (after
/// `first_on_path`), no SDK location inherited, and a shared Rust target
/// directory without the outer cargo's flags.
fn toolchain_env(command: &mut Command, first_on_path: &[&std::path::Path]) {
    let repository = repository();
    let mut path = std::ffi::OsString::new();
    for dir in first_on_path {
        path.push(dir.as_os_str());
        path.push(":");
    }
    let npm_tools = repository.join("guest-sdk/js/node_modules/.bin");
    if npm_tools.is_dir() {
        path.push(npm_tools.as_os_str());
        path.push(":");
    }
    path.push(std::env::var_os("PATH").unwrap_or_default());
    command
        .env("PATH", path)
        .env_remove("WASMPROC_SDK")
        .env_remove("WASMPROC_WIT")
        // Rust: one target directory for every build of these tests, so
        // only the first compiles the SDK's dependencies. The outer
        // cargo's flags are for the host, not for this guest.
        .env("CARGO_TARGET_DIR", repository.join("target/new-projects"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
}

/// Copy the folder `from` to `to` (files and folders; what a build left in
/// the template, its vendored SDK, target and components, is skipped).
fn copy_template(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create the copy");
    for entry in std::fs::read_dir(from).expect("list the template") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["sdk", "wit", "target", "node_modules"].contains(&name.as_str())
            || name.ends_with(".wasm")
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type().expect("file type").is_symlink() {
            // As `cp -r` leaves it: the same link, which may dangle in the
            // copy (the templates' locate-sdk.sh).
            let target = std::fs::read_link(&path).expect("read the link");
            std::os::unix::fs::symlink(target, to.join(&name)).expect("copy a link");
        } else if path.is_dir() {
            copy_template(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy a file");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path)
                    .expect("metadata")
                    .permissions()
                    .mode();
                std::fs::set_permissions(to.join(&name), std::fs::Permissions::from_mode(mode))
                    .expect("keep the mode");
            }
        }
    }
}

/// `cp -r guest-sdk/LANG/template my-process && cd my-process && ./build.sh`
/// outside the repository: without `WASMPROC_SDK` the build stops and says
/// to set it (and `WASMPROC_WIT`); with them it builds, taking `args`
/// (output name, sources, compiler flags) after `extra` files are added,
/// and `wasmproc run` gets the template's answer.
fn template_builds_anywhere(
    lang: &str,
    sdk: &str,
    extra: &[(&str, &str)],
    args: &[&str],
    wasm: &str,
) {
    let dir = tempfile::Builder::new()
        .prefix("wasmproc-template-")
        .tempdir()
        .expect("temporary directory");
    let project = dir.path().join("my-process");
    copy_template(
        &repository().join(format!("guest-sdk/{lang}/template")),
        &project,
    );
    for (file, contents) in extra {
        std::fs::write(project.join(file), contents).expect("write an extra source");
    }
    let refused = run_bounded(
        guest_build(&project),
        NEW_PROJECT_BUILD_LIMIT,
        "build.sh without an SDK",
    );
    assert!(!refused.status.success(), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("WASMPROC_SDK") && refused.stderr.contains("WASMPROC_WIT"),
        "the error says what to set: {}",
        refused.stderr
    );
    let mut build = guest_build(&project);
    build
        .args(args)
        .env("WASMPROC_SDK", repository().join(sdk))
        .env("WASMPROC_WIT", repository().join("wit"));
    let built = run_bounded(
        build,
        NEW_PROJECT_BUILD_LIMIT,
        &format!("{lang} template build.sh"),
    );
    assert!(
        built.status.success(),
        "{lang} template: build.sh failed ({}); are the toolchains installed \
         (polyglot/install-toolchains.sh)?\n{}{}",
        built.status,
        built.stdout,
        built.stderr
    );
    let wasm = project.join(wasm);
    assert!(
        wasm.is_file(),
        "no {} after the build:\n{}",
        wasm.display(),
        built.stdout
    );
    let ran = wasmproc(&[
        "run",
        wasm.to_str().expect("UTF-8"),
        "--inputs",
        NEW_PROJECT_INPUTS,
    ]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    let outputs: serde_json::Value = serde_json::from_slice(&ran.stdout).expect("JSON");
    assert_eq!(outputs, serde_json::json!({ "words": 2 }));
}

#[test]
fn rust_template_copied_anywhere_builds_and_vendors_the_sdk() {
    template_builds_anywhere("rust", "guest-sdk", &[], &[], "my-process.wasm");
}

#[test]
fn python_template_copied_anywhere_builds_to_the_output_named() {
    template_builds_anywhere(
        "python",
        "guest-sdk/python",
        &[],
        &["-o", "out/counted.wasm"],
        "out/counted.wasm",
    );
}

#[test]
fn js_template_copied_anywhere_builds() {
    template_builds_anywhere("js", "guest-sdk/js", &[], &[], "my-process.wasm");
}

/// C: every `.c` of the folder is built, flags after the sources reach the
/// compiler, and `M_PI` is declared (gnu11).
#[test]
fn c_template_copied_anywhere_builds_every_source_with_the_flags_given() {
    let area = "#include <math.h>\n\
                #ifndef WP_FLAGS_FORWARDED\n\
                #error \"build.sh did not forward the compiler flags\"\n\
                #endif\n\
                double circle_area(double r);\n\
                double circle_area(double r) { return M_PI * r * r; }\n";
    template_builds_anywhere(
        "c",
        "guest-sdk/c",
        &[("area.c", area)],
        &["-DWP_FLAGS_FORWARDED"],
        "my-process.wasm",
    );
}

/// `wasmproc new` creates a LANG project in a temporary folder; the one
/// command it prints (`cd NAME && ./build.sh`) builds it; `wasmproc run`
/// runs the component it wrote, with the example's answer, and the
/// example's own failure. The toolchains are found as
/// `polyglot/build-all.sh` finds them (PATH, and componentize-qjs in
/// `guest-sdk/js/node_modules` when `polyglot/install-toolchains.sh` put it
/// there); a missing one fails the test with the build's own message.
fn new_project_builds_and_runs(lang: &str) {
    let dir = tempfile::Builder::new()
        .prefix("wasmproc-new-")
        .tempdir()
        .expect("temporary directory");
    let name = format!("count-words-{lang}");
    let created = wasmproc_new(dir.path(), lang, &name);
    assert!(created.status.success(), "{}", stderr(&created));
    let said = String::from_utf8_lossy(&created.stdout).into_owned();
    assert!(said.contains(&format!("cd {name} && ./build.sh")), "{said}");
    let project = dir.path().join(&name);
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    assert!(readme.contains("./build.sh") && readme.contains(&format!("{name}.wasm")));

    let build = guest_build(&project);
    let built = run_bounded(build, NEW_PROJECT_BUILD_LIMIT, &format!("{name}/build.sh"));
    assert!(
        built.status.success(),
        "{name}/build.sh failed ({}); are the toolchains installed \
         (polyglot/install-toolchains.sh)?\n{}{}",
        built.status,
        built.stdout,
        built.stderr
    );
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "no {} after the build", wasm.display());

    let described = wasmproc(&["describe", wasm.to_str().expect("UTF-8 path")]);
    assert!(described.status.success(), "{}", stderr(&described));
    let description: serde_json::Value =
        serde_json::from_slice(&described.stdout).expect("JSON description");
    assert_eq!(description["id"], name.as_str());

    let ran = binary()
        .args([
            "run",
            &format!("{name}.wasm"),
            "--inputs",
            NEW_PROJECT_INPUTS,
        ])
        .current_dir(&project)
        .output()
        .expect("wasmproc runs");
    assert!(ran.status.success(), "{}", stderr(&ran));
    let outputs: serde_json::Value = serde_json::from_slice(&ran.stdout).expect("JSON outputs");
    assert_eq!(outputs, serde_json::json!({ "words": 2 }), "{lang}");
    assert!(stderr(&ran).contains("outcome=success"), "{}", stderr(&ran));

    let refused = wasmproc(&[
        "run",
        wasm.to_str().expect("UTF-8 path"),
        "--inputs",
        r#"{"text": "a bb", "minLength": 3}"#,
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("outcome=process-error")
            && stderr(&refused).contains("no word is that long"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn new_rust_project_builds_with_one_command_and_runs() {
    new_project_builds_and_runs("rust");
}

#[test]
fn new_python_project_builds_with_one_command_and_runs() {
    new_project_builds_and_runs("python");
}

#[test]
fn new_js_project_builds_with_one_command_and_runs() {
    new_project_builds_and_runs("js");
}

#[test]
fn new_c_project_builds_with_one_command_and_runs() {
    new_project_builds_and_runs("c");
}

#[test]
fn new_refuses_a_bad_name_and_a_non_empty_folder_with_status_2() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for bad in ["Word_Count", "x-", "../escape", ""] {
        let output = wasmproc_new(dir.path(), "python", bad);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("invalid project name"),
            "{bad:?}: {}",
            stderr(&output)
        );
    }
    let reserved = wasmproc_new(dir.path(), "rust", "match");
    assert_eq!(reserved.status.code(), Some(2), "{}", stderr(&reserved));
    assert!(
        stderr(&reserved).contains("cargo refuses"),
        "{}",
        stderr(&reserved)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list").count(),
        0,
        "a refused name wrote files"
    );

    std::fs::create_dir(dir.path().join("taken")).expect("mkdir");
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").expect("write");
    let taken = wasmproc_new(dir.path(), "c", "taken");
    assert_eq!(taken.status.code(), Some(2), "{}", stderr(&taken));
    assert!(
        stderr(&taken).contains("already exists and is not empty"),
        "{}",
        stderr(&taken)
    );
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("taken"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(kept, ["notes.txt"]);
}

/// The lines `child` writes to its piped stderr, each with the time it
/// came, from a thread that reads to the end (so the child never blocks
/// on a full pipe, also once the receiver is gone).
fn stderr_lines(
    child: &mut std::process::Child,
) -> std::sync::mpsc::Receiver<(std::time::Instant, String)> {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((std::time::Instant::now(), line));
        }
    });
    rx
}

/// `--show-log` prints each log line when the guest writes it: the guest
/// writes two lines, sleeps 3 s, writes a third and fails, and the third
/// line must come about 3 s after the second (printed after the run, all
/// would come at once). Then the stats line and the error, in that order.
#[test]
fn show_log_streams_log_lines_in_order_as_the_guest_writes_them() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = binary()
        .args([
            "run",
            HOSTILE,
            "--inputs",
            r#"{"behaviour": "slow-log-then-fail", "size": 3000}"#,
            "--show-log",
        ])
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmproc runs");
    let rx = stderr_lines(&mut child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines: Vec<(Instant, String)> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("wasmproc run did not end within 60 s: {lines:?}");
            }
        }
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{lines:?}");
    let position = |needle: &str| {
        lines
            .iter()
            .position(|(_, line)| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:?}"))
    };
    let first = position("[info] first: host.log");
    let second = position("[stdout] second: stdout");
    let third = position("[stderr] third: stderr, after 3000 ms");
    let stats = position("outcome=process-error");
    let error = position("error: process error (logged-then-failed)");
    assert!(
        first < second && second < third && third < stats && stats < error,
        "{lines:?}"
    );
    let gap = lines[third].0 - lines[second].0;
    assert!(
        gap >= Duration::from_millis(2500),
        "the lines before the guest's 3 s pause came only {gap:?} before the one after it: not streamed"
    );
    // Each log line carries its time, as in the stored job log.
    let time = lines[first].1.split(' ').next().unwrap_or_default();
    assert!(chrono_like(time), "{}", lines[first].1);
}

/// `2026-01-02T03:04:05.678Z`: the shape of a log line's time.
fn chrono_like(time: &str) -> bool {
    time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T'
}

/// With stderr not a terminal and no `--show-log`, stderr is exactly the
/// stats line and the error: no progress bar, no log.
#[test]
fn without_a_terminal_run_writes_no_progress_bar_or_log() {
    let output = wasmproc(&[
        "run",
        HOSTILE,
        "--inputs",
        r#"{"behaviour": "slow-log-then-fail", "size": 0}"#,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("outcome=process-error "), "{err}");
    assert!(
        lines[1].starts_with("error: process error (logged-then-failed)"),
        "{err}"
    );
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), `run`
/// draws a progress bar with the guest's progress message while the guest
/// runs, then the stats line. `echo` reports 10% "pausing" and pauses 1 s.
#[test]
fn on_a_terminal_run_shows_a_progress_bar_with_the_guests_message() {
    let command =
        format!("{BINARY} run {ECHO} --inputs '{{\"stringInput\": \"hi\", \"pause\": 1}}'");
    let mut script = Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    let ran = run_bounded(script, std::time::Duration::from_secs(60), "script");
    assert!(ran.status.success(), "{}{}", ran.stdout, ran.stderr);
    // `script` copies the terminal's output to its stdout: the bar's frames
    // (redrawn in place with escape sequences), then the stats line.
    let screen = ran.stdout;
    assert!(
        screen.contains("pausing"),
        "no progress message drawn:\n{screen:?}"
    );
    assert!(screen.contains("10%"), "no percentage drawn:\n{screen:?}");
    let bar = screen.find("pausing").expect("drawn");
    let stats = screen.find("outcome=success").expect("the stats line");
    assert!(bar < stats, "{screen:?}");
    assert!(screen.contains("\"stringInput\": \"hi\""), "{screen:?}");
}

/// A `wasmproc serve` on 127.0.0.1 (a free port) with a temporary data
/// directory and an admin token; killed when dropped.
struct Served {
    child: std::process::Child,
    base_url: String,
    _data: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin token of [`serve`].
const ADMIN_TOKEN: &str = "cli-t0ken";

/// Start `wasmproc serve --log-format json` (RUST_LOG=info, and `envs`)
/// on 127.0.0.1 (a free port) with a temporary data directory, and wait
/// at most 60 s (it compiles the built-in processes first) for the
/// start-up line that says where it listens: the server, and that line.
/// Each stderr line until then goes through `parse`; a thread reads the
/// rest, so the server never blocks on a full pipe.
fn start_serve(
    envs: &[(&str, &str)],
    parse: fn(&str) -> serde_json::Value,
) -> (Served, serde_json::Value) {
    use std::process::Stdio;
    let data = tempfile::tempdir().expect("temporary directory");
    let mut child = binary()
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(data.path())
        .envs(envs.iter().copied())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmproc serve runs");
    let lines = stderr_lines(&mut child);
    // Killed when dropped: also when a line fails `parse` or the wait.
    let mut served = Served {
        child,
        base_url: String::new(),
        _data: data,
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok((_, line)) = lines.recv_timeout(left) else {
            panic!(
                "wasmproc serve did not start within 60 s; stderr so far:\n{}",
                seen.join("\n")
            );
        };
        let parsed = parse(&line);
        seen.push(line);
        if parsed["fields"]["message"] == "wasmproc started" {
            served.base_url = parsed["fields"]["base_url"]
                .as_str()
                .expect("base_url")
                .to_owned();
            return (served, parsed);
        }
    }
}

/// [`start_serve`] with the admin token [`ADMIN_TOKEN`].
fn serve() -> Served {
    let envs = [("WASMPROC_ADMIN_TOKEN", ADMIN_TOKEN)];
    start_serve(&envs, |line| serde_json::from_str(line).unwrap_or_default()).0
}

/// `wasmproc deploy` of an id that is taken: exit 1 with the server's
/// reason and the command that replaces it; `--replace` replaces it, and
/// deploys an id that is not taken yet.
#[test]
fn deploy_of_a_taken_id_points_to_replace_and_replace_works() {
    let server = serve();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "deploy",
            HELLO,
            "--url",
            server.base_url.as_str(),
            "--token",
            ADMIN_TOKEN,
        ];
        args.extend_from_slice(extra);
        wasmproc(&args)
    };
    let first = deploy(&["--id", "greeter"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let again = deploy(&["--id", "greeter"]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let err = stderr(&again);
    assert!(err.contains("greeter") && err.contains("409"), "{err}");
    assert!(
        err.contains(&format!("wasmproc deploy {HELLO} --id greeter --replace")),
        "{err}"
    );
    let replaced = deploy(&["--id", "greeter", "--replace"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(String::from_utf8_lossy(&replaced.stdout).contains("replaced greeter"));
    let fresh = deploy(&["--id", "greeter-two", "--replace"]);
    assert!(
        fresh.status.success(),
        "nothing to replace: deployed: {}",
        stderr(&fresh)
    );
    let listed = wasmproc(&["processes", "--url", server.base_url.as_str()]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("greeter\t") && listed.contains("greeter-two\t"),
        "{listed}"
    );
}

/// The commands of a guide: the fenced `sh` block right after the line
/// `<!-- ci: guide-steps -->`. A guide without one fails the test.
fn guide_steps(guide: &str, name: &str) -> String {
    let (_, after) = guide
        .split_once("<!-- ci: guide-steps -->")
        .unwrap_or_else(|| panic!("{name} has no <!-- ci: guide-steps --> block"));
    let after = after.trim_start();
    let body = after.strip_prefix("```sh\n").unwrap_or_else(|| {
        panic!("{name}: the guide-steps marker is not followed by a ```sh block")
    });
    let (steps, _) = body
        .split_once("\n```")
        .unwrap_or_else(|| panic!("{name}: the guide-steps block is not closed"));
    steps.to_owned()
}

/// Run a guide's commands as written (extracted from the guide, not copied
/// here) with bash -euo pipefail, in an empty folder outside the
/// repository, with this build's `wasmproc` first on PATH and a real
/// `wasmproc serve` on 127.0.0.1 named by WASMPROC_URL and
/// WASMPROC_ADMIN_TOKEN. Then hold the result to what the guide says each
/// step shows: the local answer, the refusal of a bad input, the server's
/// answer, the replacement.
fn guide_steps_run_as_written(guide: &str) {
    let text = std::fs::read_to_string(repository().join(guide)).expect("read the guide");
    let steps = guide_steps(&text, guide);
    let server = serve();
    let work = tempfile::Builder::new()
        .prefix("wasmproc-guide-")
        .tempdir()
        .expect("temporary directory");
    let script = work.path().join("guide-steps.sh");
    std::fs::write(&script, &steps).expect("write the steps");
    let folder = work.path().join("author");
    std::fs::create_dir(&folder).expect("the author's folder");
    let cache = work.path().join("cache");
    let bin = std::path::Path::new(BINARY)
        .parent()
        .expect("the binary's folder");
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail"])
        .arg(&script)
        .current_dir(&folder)
        .env("WASMPROC_URL", &server.base_url)
        .env("WASMPROC_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("WASMPROC_CACHE_DIR", &cache);
    toolchain_env(&mut command, &[bin]);
    let ran = run_bounded(command, NEW_PROJECT_BUILD_LIMIT, guide);
    assert!(
        ran.status.success(),
        "{guide}: the guide's steps failed ({}); are the toolchains installed \
         (polyglot/install-toolchains.sh)?\nsteps:\n{steps}\nstdout:\n{}\nstderr:\n{}",
        ran.status,
        ran.stdout,
        ran.stderr
    );
    let on_stdout = [
        ("\"words\": 2", "the local run's answer"),
        ("{\"words\":2}", "the server's answer"),
        ("replaced word-count", "the replacement"),
    ];
    let on_stderr = [
        ("unknown input 'txt'", "the refusal of a bad input"),
        ("outcome=success", "the stats line"),
        ("words", "a log line of --show-log"),
    ];
    for (stream, text, expected) in [
        ("stdout", &ran.stdout, on_stdout),
        ("stderr", &ran.stderr, on_stderr),
    ] {
        for (shown, what) in expected {
            assert!(
                text.contains(shown),
                "{guide}: no {what} ({shown}) on {stream}:\n{text}"
            );
        }
    }
}

#[test]
fn guide_steps_run_as_written_rust() {
    guide_steps_run_as_written("README.md");
}

#[test]
fn guide_steps_run_as_written_python() {
    guide_steps_run_as_written("guest-sdk/python/README.md");
}

#[test]
fn guide_steps_run_as_written_js() {
    guide_steps_run_as_written("guest-sdk/js/README.md");
}

#[test]
fn guide_steps_run_as_written_c() {
    guide_steps_run_as_written("guest-sdk/c/README.md");
}

#[test]
fn guide_steps_are_found_only_after_their_marker() {
    let guide = "# G\n```sh\nnot this\n```\n<!-- ci: guide-steps -->\n```sh\na\nb\n```\n";
    assert_eq!(guide_steps(guide, "g"), "a\nb");
    let unmarked = std::panic::catch_unwind(|| guide_steps("```sh\nx\n```", "g"));
    assert!(unmarked.is_err(), "a guide without the marker must fail");
}

/// A loopback HTTP/1.1 peer for the client commands. `answers` gets the
/// peer's base URL and returns the JSON bodies to answer its first
/// connections with (200, one request per connection), or `None` for a
/// peer that accepts one connection and never answers. The peer records
/// each request's path, and gives up after 30 s whatever happens.
fn loopback_peer(
    answers: impl FnOnce(&str) -> Option<Vec<String>>,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let answers = answers(&base);
    let peer = std::thread::spawn(move || {
        let mut paths = Vec::new();
        let Some(answers) = answers else {
            let held = listener.accept().expect("accept");
            std::thread::sleep(std::time::Duration::from_secs(30));
            drop(held);
            return paths;
        };
        for answer in answers {
            let (stream, _) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .expect("timeout");
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).expect("request line");
            paths.push(line.split(' ').nth(1).unwrap_or("").to_owned());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .expect("answer");
        }
        paths
    });
    (base, peer)
}

/// `processes` follows `next` links until a page has none, printing every
/// page's processes in order.
#[test]
fn processes_lists_every_page() {
    let page = |ids: &[&str], next: Option<String>| {
        let processes: Vec<_> = ids
            .iter()
            .map(|id| serde_json::json!({"id": id, "version": "1", "mutable": true, "title": id}))
            .collect();
        let links: Vec<_> = next
            .map(|href| serde_json::json!({"rel": "next", "href": href}))
            .into_iter()
            .collect();
        serde_json::json!({"processes": processes, "links": links}).to_string()
    };
    let (base, peer) = loopback_peer(|base| {
        Some(vec![
            page(
                &["a", "b"],
                Some(format!("{base}/processes?limit=10000&cursor=2")),
            ),
            page(&["c"], None),
        ])
    });
    let output = wasmproc(&["processes", "--url", &base, "--timeout", "20"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split('\t').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let paths = peer.join().expect("peer");
    assert_eq!(
        paths,
        ["/processes?limit=10000", "/processes?limit=10000&cursor=2"]
    );
}

/// A server that accepts the connection and never answers: the command
/// gives up after `--timeout` and exits 2 saying it timed out, instead of
/// waiting for ever.
#[test]
fn a_client_command_gives_up_on_a_server_that_never_answers() {
    let (base, _peer) = loopback_peer(|_| None);
    let output = wasmproc(&["processes", "--url", &base, "--timeout", "1"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output).to_lowercase();
    assert!(
        message.contains("contacting the server") && message.contains("timed out"),
        "{message}"
    );
}
