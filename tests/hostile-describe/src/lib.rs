//! `hostile-describe`: a process whose `describe()` returns something that
//! is not a usable process description, for the deploy boundary tests.
//!
//! `describe()` takes no input, so the variant is chosen in the built
//! component: [`VARIANT`] holds the marker `HOSTILE-DESCRIBE-VARIANT=`
//! followed by a 24-byte, space-padded variant name, and the tests patch
//! those bytes in a copy of the `.wasm` (same length, so the module stays
//! valid). One build gives every variant. Unpatched it is `valid`.
//!
//! Variants: `valid`, `not-json`, `not-an-object`, `missing-version`,
//! `bad-id`, `bad-input-schema`, `bad-output-schema`,
//! `occurs-contradiction`, `oversized` (a valid description of 2 MiB).

use wasmproc_guest::bindings::Guest;
use wasmproc_guest::bindings::wasmproc::process::types::{Output, ProcessError, Value};
use wasmproc_guest::json;

/// The marker and the variant name the tests overwrite.
static VARIANT: [u8; 49] = *b"HOSTILE-DESCRIBE-VARIANT=valid                   ";

/// Length of the marker before the variant name.
const MARKER_LEN: usize = "HOSTILE-DESCRIBE-VARIANT=".len();

/// The variant in the component's data, read as it is at run time.
fn variant() -> String {
    // SAFETY: `VARIANT` is a valid, aligned, initialised static; the
    // volatile read only stops the compiler from folding the bytes it saw
    // at build time, because the tests change them afterwards.
    #[allow(unsafe_code)]
    let bytes = unsafe { std::ptr::read_volatile(&raw const VARIANT) };
    String::from_utf8_lossy(&bytes[MARKER_LEN..])
        .trim()
        .to_owned()
}

/// A description with one input and one output, both well-formed.
fn valid() -> wasmproc_guest::Value {
    json!({
        "id": "hostile-describe",
        "version": "1.0.0",
        "title": "Hostile describe",
        "inputs": { "x": { "minOccurs": 0, "schema": { "type": "string" } } },
        "outputs": { "result": { "schema": { "type": "string" } } }
    })
}

/// The exported process: `describe()` per variant, `execute` always fine.
struct HostileDescribe;

impl Guest for HostileDescribe {
    fn describe() -> String {
        let mut description = valid();
        match variant().as_str() {
            "not-json" => return "this is not JSON {".into(),
            "not-an-object" => return r#"["hostile-describe", "1.0.0"]"#.into(),
            "missing-version" => {
                description.as_object_mut().map(|d| d.remove("version"));
            }
            "bad-id" => description["id"] = json!("../../etc/passwd"),
            "bad-input-schema" => {
                description["inputs"]["x"]["schema"] = json!({ "type": "banana" })
            }
            "bad-output-schema" => {
                description["outputs"]["result"]["schema"] = json!({ "type": "banana" })
            }
            "occurs-contradiction" => {
                description["inputs"]["x"]["minOccurs"] = json!(3);
                description["inputs"]["x"]["maxOccurs"] = json!(1);
            }
            "oversized" => description["description"] = json!("x".repeat(2 * 1024 * 1024)),
            _ => {}
        }
        description.to_string()
    }

    fn execute(_inputs: String) -> Result<Vec<Output>, ProcessError> {
        Ok(vec![Output {
            id: "result".into(),
            media_type: None,
            value: Value::Json("\"described\"".into()),
        }])
    }
}

wasmproc_guest::bindings::export_bindings!(HostileDescribe with_types_in wasmproc_guest::bindings);
