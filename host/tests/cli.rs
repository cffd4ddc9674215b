//! `wasmproc run` and `wasmproc describe` on the examples and the hostile
//! process: outputs on stdout, a stats line on stderr, and the exit status.
//! `wasmproc config check`: the effective configuration, and contradictions
//! refused. `wasmproc serve --log-format json`: its log as JSON lines.

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_wasmproc");
const HELLO: &str = env!("WASMPROC_GUEST_HELLO_WORLD");
const ECHO: &str = env!("WASMPROC_GUEST_ECHO");
const HOSTILE: &str = env!("WASMPROC_GUEST_HOSTILE");

fn wasmproc(args: &[&str]) -> Output {
    Command::new(BINARY)
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
    Command::new(BINARY)
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
/// killed once that line is read (at most 60 s: it compiles the built-in
/// processes first).
#[test]
fn serve_with_log_format_json_writes_json_lines() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(BINARY)
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wasmproc serve runs");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    let started = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no start-up line within 60 s; stderr so far:\n{}", seen.join("\n"));
        };
        let parsed: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        seen.push(line);
        if parsed["fields"]["message"] == "wasmproc started" {
            break parsed;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(
        started["fields"]["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{started}"
    );
    assert!(started["timestamp"].is_string(), "{started}");
}
