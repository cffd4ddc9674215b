//! `hostile`: a process that misbehaves on purpose, for tests.
//!
//! Input `behaviour` picks the attack: `infinite-loop`, `memory-bomb`,
//! `deep-recursion`, `panic`, `huge-output`, `endless-sleep`, `log-flood`,
//! `process-error`, `exit`, `read-file`, `open-socket`, `progress-storm`
//! (`size` progress reports, a million by default), `slow-log-then-fail`
//! (a `host.log` line, a stdout line, a pause of `size` ms, 1000 by
//! default, a stderr line, then a process error: a log that must be shown
//! as it is written, not after). A well-behaved host
//! fails only this job, with a reason naming the limit that was hit, and
//! carries on.
//!
//! `snoop` looks for what earlier jobs left in the instance's memory,
//! returns it (`""` when nothing), then leaves its own `secret` there: 64
//! KiB of it in a static and the heap it points to, and a copy at the start
//! of every other page of a 4 MiB buffer (512 separate runs of written
//! pages, more than a memory reset may copy back in one go). The search
//! reads every page of linear memory, so it finds a page a reset missed
//! even when the static that pointed to it was reset: a host that reused a
//! sandbox, or reset its memory incompletely, shows one job's data to the
//! next.
//!
//! Malformed results, for the boundary between guest and host:
//! `invalid-json` (a `json` value that is not JSON), `undeclared-output`
//! (an output id the description does not declare), `wrong-media-type`
//! (`text/html` for the output declared `image/png`). The host must fail
//! the job with a reason naming the output, never store or serve them.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Duration;

use wasmproc_guest::{
    Inputs, Level, Output, OutputValue, Process, ProcessError, Value, export_process, json, log,
    progress,
};

struct Hostile;

/// Where `snoop` leaves its secret: the static sits in the module's data,
/// the strings it holds on the heap past it.
static LEFT_BEHIND: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The page size a host resets memory in (wasmtime on x86-64 and aarch64
/// Linux): `snoop` marks whole pages.
const PAGE: usize = 4096;
/// Pages `snoop` scatters its secret over, every other page of a buffer, so
/// that each is a run of its own.
const SCATTERED_PAGES: usize = 512;
/// The first 8 bytes of a page `snoop` wrote. An integer constant is an
/// immediate in wasm code, and code is not in linear memory, so memory holds
/// these bytes only where `snoop` put them.
const MARK: u64 = 0x5e5e_c4e7_9a1d_0b17;

/// Bytes of linear memory the instance has now.
#[cfg(target_arch = "wasm32")]
fn memory_bytes() -> usize {
    core::arch::wasm32::memory_size(0) * 65_536
}

/// Hostile runs only as a component; built natively (never done by the
/// workspace) it has no linear memory to search.
#[cfg(not(target_arch = "wasm32"))]
fn memory_bytes() -> usize {
    0
}

/// Every page of linear memory that starts with [`MARK`]: the first 32
/// characters of the secret an earlier job wrote after it.
fn marked_pages() -> Vec<String> {
    let mut found = Vec::new();
    // Page 0 holds address 0: never a heap page.
    for page in (PAGE..memory_bytes()).step_by(PAGE) {
        #[allow(
            unsafe_code,
            reason = "reading linear memory by address is the point of the check: every \
                      address below memory.size is readable in wasm"
        )]
        // SAFETY: `page + PAGE <= memory_bytes()`, so the page is inside
        // linear memory; `read_volatile` keeps the read from being assumed
        // away, and it races with nothing (a component is single-threaded).
        let (mark, text) = unsafe {
            let mark = std::ptr::read_volatile(page as *const u64);
            let text = std::slice::from_raw_parts((page + 8) as *const u8, 32);
            (mark, text)
        };
        if mark == MARK {
            found.push(
                String::from_utf8_lossy(text)
                    .trim_end_matches('\0')
                    .to_string(),
            );
        }
    }
    found
}

/// Write [`MARK`] and `secret` at the start of [`SCATTERED_PAGES`] pages,
/// every other page of a fresh allocation, and keep the allocation: the
/// instance ends with the job.
fn scatter(secret: &str) {
    let mut buffer: Vec<u8> = Vec::with_capacity((2 * SCATTERED_PAGES + 1) * PAGE);
    let first = (buffer.as_ptr() as usize).next_multiple_of(PAGE) - buffer.as_ptr() as usize;
    let mut text = [0u8; 32];
    let n = secret.len().min(32);
    text[..n].copy_from_slice(&secret.as_bytes()[..n]);
    let spare = buffer.spare_capacity_mut();
    for i in 0..SCATTERED_PAGES {
        let at = first + 2 * i * PAGE;
        for (slot, byte) in spare[at..at + 40]
            .iter_mut()
            .zip(MARK.to_ne_bytes().iter().chain(&text))
        {
            slot.write(*byte);
        }
    }
    std::mem::forget(buffer);
}

impl Process for Hostile {
    fn describe() -> Value {
        json!({
            "id": "hostile",
            "version": "1.0.0",
            "title": "Hostile",
            "description": "Misbehaves on purpose to test the sandbox.",
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "inputs": {
                "behaviour": { "minOccurs": 1, "schema": { "type": "string", "enum": [
                    "infinite-loop", "memory-bomb", "deep-recursion", "panic", "huge-output",
                    "endless-sleep", "log-flood", "process-error", "exit",
                    "read-file", "open-socket", "progress-storm", "slow-log-then-fail",
                    "invalid-json", "undeclared-output", "wrong-media-type", "null-output", "snoop"
                ] } },
                "size": { "minOccurs": 0, "schema": { "type": "integer", "minimum": 0 } },
                "secret": { "minOccurs": 0, "schema": { "type": "string" } }
            },
            "outputs": {
                "result": { "schema": { "type": "string", "contentEncoding": "binary" } },
                "image": { "schema": { "type": "string", "contentEncoding": "binary", "contentMediaType": "image/png" } }
            }
        })
    }

    fn execute(inputs: Inputs) -> Result<Vec<Output>, ProcessError> {
        let size = inputs
            .optional_f64("size")?
            .unwrap_or(64.0 * 1024.0 * 1024.0) as usize;
        match inputs.required_str("behaviour")? {
            "infinite-loop" => {
                let mut n: u64 = 0;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xAB; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "deep-recursion" => Ok(vec![Output::json("result", &recurse(black_box(0)))]),
            "panic" => panic!("hostile process panicked on purpose"),
            "huge-output" => Ok(vec![Output::bytes(
                "result",
                "application/octet-stream",
                vec![7; size],
            )]),
            "endless-sleep" => {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(vec![])
            }
            "log-flood" => {
                let line = "x".repeat(1024);
                for _ in 0..20_000 {
                    log(Level::Info, &line);
                    println!("{line}");
                    eprintln!("{line}");
                }
                Ok(vec![Output::json("result", &"flooded")])
            }
            "process-error" => Err(ProcessError::new("hostile-refusal", "refusing on purpose")),
            "progress-storm" => {
                let reports = inputs.optional_f64("size")?.map_or(1_000_000, |n| n as u64);
                for i in 0..reports {
                    progress((i % 100) as u8, None);
                }
                Ok(vec![Output::json("result", &"stormed")])
            }
            "slow-log-then-fail" => {
                let pause = inputs.optional_f64("size")?.map_or(1000, |ms| ms as u64);
                log(Level::Info, "first: host.log");
                println!("second: stdout");
                std::thread::sleep(Duration::from_millis(pause));
                eprintln!("third: stderr, after {pause} ms");
                Err(ProcessError::new(
                    "logged-then-failed",
                    "failing on purpose after three log lines",
                ))
            }
            "exit" => std::process::exit(3),
            // Capabilities the sandbox links but does not grant: both must
            // fail inside the guest, and the guest reports the error.
            "read-file" => match std::fs::read("/etc/passwd") {
                Ok(bytes) => Ok(vec![Output::json(
                    "result",
                    &format!("read {} bytes", bytes.len()),
                )]),
                Err(e) => Err(ProcessError::new(
                    "no-filesystem",
                    format!("reading /etc/passwd failed: {e}"),
                )),
            },
            "open-socket" => match std::net::TcpStream::connect(("127.0.0.1", 9)) {
                Ok(_) => Ok(vec![Output::json("result", &"connected")]),
                Err(e) => Err(ProcessError::new(
                    "no-network",
                    format!("connecting to 127.0.0.1:9 failed: {e}"),
                )),
            },
            "invalid-json" => Ok(vec![Output {
                id: "result".into(),
                media_type: None,
                value: OutputValue::Json("{\"unterminated\": [1, 2".into()),
            }]),
            "undeclared-output" => Ok(vec![
                Output::json("result", &"declared"),
                Output::json("surprise", &"not in the description"),
            ]),
            // Served raw, this would be a page of the server's origin
            // running the guest's script in a browser.
            // `null` where the description declares a string: the output
            // schema check must catch it.
            "null-output" => Ok(vec![Output::json("result", &Value::Null)]),
            "snoop" => {
                let secret = inputs.optional_str("secret")?.unwrap_or("secret");
                let mut left = LEFT_BEHIND.lock().unwrap_or_else(|e| e.into_inner());
                let mut found: Vec<String> =
                    left.iter().map(|s| s.chars().take(32).collect()).collect();
                found.extend(marked_pages());
                let found = found.join(",");
                left.push(secret.repeat(65_536 / secret.len().max(1)));
                scatter(secret);
                Ok(vec![Output::json("result", &found)])
            }
            "wrong-media-type" => Ok(vec![Output::bytes(
                "image",
                "text/html",
                b"<script>alert(document.cookie)</script>".to_vec(),
            )]),
            other => Err(ProcessError::invalid_input(format!(
                "unknown behaviour {other}"
            ))),
        }
    }
}

/// Recurse without end; the frame is kept alive so it cannot become a loop.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 16]);
    recurse(frame[3] + 1) + frame[7]
}

export_process!(Hostile);
