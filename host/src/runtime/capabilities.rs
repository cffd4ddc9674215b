//! What a process component may import, checked when it is loaded (at
//! deploy), so that a component needing a capability we do not grant is
//! refused with a clear reason instead of failing at run time.
//!
//! Three kinds of WASI interfaces:
//! - **granted**: `wasi:cli` (no arguments, no environment, stdin closed,
//!   stdout/stderr captured into the bounded job log), `wasi:clocks`,
//!   `wasi:random`, `wasi:io`, and our own `wasmproc:process` host;
//! - **inert**: `wasi:filesystem` and `wasi:sockets`. Their interfaces are
//!   linked because common toolchains import them whether or not the code
//!   uses them (wasi-libc for C, QuickJS, CPython), but they grant nothing:
//!   there are no preopened directories, so no file can be named, and TCP,
//!   UDP and name lookup are switched off, so every socket call fails with
//!   "access denied". An operator can refuse them too with
//!   [`ImportPolicy::denied`] (e.g. a Rust-only server:
//!   `deny_imports = ["wasi:filesystem", "wasi:sockets"]`);
//! - **not granted**: everything else, notably `wasi:http` (outgoing HTTP)
//!   and any non-WASI import.

use wasmtime::Engine;
use wasmtime::component::Component;

/// Interface prefixes a process always gets.
const GRANTED: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
    "wasmproc:process/",
];

/// Interface prefixes linked without any capability behind them.
const INERT: &[&str] = &["wasi:filesystem/", "wasi:sockets/"];

/// Which imports an operator refuses on top of the ungranted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPolicy {
    /// Interface name prefixes (`wasi:sockets`, `wasi:filesystem/types`)
    /// refused at load even though they would be inert.
    pub denied: Vec<String>,
}

impl ImportPolicy {
    /// Every import of `component` that this policy refuses, each with why;
    /// empty when the component may be loaded.
    pub(crate) fn refused_imports(&self, engine: &Engine, component: &Component) -> Vec<String> {
        component
            .component_type()
            .imports(engine)
            .filter_map(|(name, _)| self.refusal(name))
            .collect()
    }

    /// Why the import `name` is refused, or `None` when it is allowed. An
    /// operator's `denied` prefix is checked first, so it can refuse even
    /// a granted or inert interface; names are matched by prefix, so one
    /// entry covers every version of an interface (`wasi:sockets/tcp@…`).
    fn refusal(&self, name: &str) -> Option<String> {
        if let Some(prefix) = self
            .denied
            .iter()
            .find(|prefix| !prefix.is_empty() && name.starts_with(prefix.as_str()))
        {
            return Some(format!(
                "`{name}` (refused by this server's deny_imports entry `{prefix}`)"
            ));
        }
        let known = GRANTED.iter().chain(INERT).any(|p| name.starts_with(p));
        if known {
            return None;
        }
        let what = if name.starts_with("wasi:http/") {
            "outgoing HTTP is not granted to processes; give data as inputs (href inputs are fetched by the server)"
        } else if name.starts_with("wasi:") {
            "this WASI interface is not granted to processes"
        } else {
            "not an interface this server provides"
        };
        Some(format!("`{name}` ({what})"))
    }
}

/// The message for a refused component, listing the refusals and what is
/// granted instead.
pub(crate) fn refusal_message(refused: &[String]) -> String {
    format!(
        "{}; processes get only wasi:cli (captured stdio, no args or env), wasi:clocks, wasi:random, wasi:io, wasmproc:process, and inert wasi:filesystem (no directories) and wasi:sockets (no network)",
        refused.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_and_inert_imports_pass_others_are_refused_with_a_reason() {
        let policy = ImportPolicy::default();
        for ok in [
            "wasi:cli/stdout@0.2.6",
            "wasi:io/streams@0.2.12",
            "wasi:filesystem/preopens@0.2.9",
            "wasi:sockets/tcp@0.2.9",
            "wasmproc:process/host@0.1.0",
        ] {
            assert_eq!(policy.refusal(ok), None, "{ok}");
        }
        let http = policy.refusal("wasi:http/outgoing-handler@0.2.0").unwrap();
        assert!(http.contains("outgoing HTTP is not granted"), "{http}");
        let foreign = policy.refusal("evil:net/sockets@1.0.0").unwrap();
        assert!(
            foreign.contains("not an interface this server provides"),
            "{foreign}"
        );
        let nn = policy.refusal("wasi:nn/inference@0.2.0").unwrap();
        assert!(nn.contains("WASI interface is not granted"), "{nn}");
    }

    #[test]
    fn denied_prefixes_refuse_inert_imports() {
        let policy = ImportPolicy {
            denied: vec!["wasi:sockets".into(), String::new()],
        };
        let refusal = policy.refusal("wasi:sockets/tcp@0.2.9").unwrap();
        assert!(
            refusal.contains("deny_imports entry `wasi:sockets`"),
            "{refusal}"
        );
        assert_eq!(policy.refusal("wasi:filesystem/types@0.2.9"), None);
        assert_eq!(
            policy.refusal("wasi:cli/stdout@0.2.6"),
            None,
            "an empty entry refuses nothing"
        );
    }
}
