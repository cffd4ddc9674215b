//! `[limits]`: what a job gets by default, the server-wide maxima, and the
//! partial tables of the file (`[limits.default]`, `[limits.max]`, a
//! process's `limits`), each resolved field by field over its own base, so
//! that the rest of the code only ever sees complete [`Limits`]. A limit
//! above its maximum is refused by [`super::Config::validate`], naming the
//! field; it is never silently capped.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runtime::Limits;

/// Resource limits: what a job gets by default, and the server-wide
/// maximum that no per-process setting may exceed. Both are complete: the
/// file's partial tables are resolved when it is read (`LimitTables`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "LimitTables")]
pub struct LimitsConfig {
    /// Limits of a job whose process has no override. A field left out of
    /// `[limits.default]` keeps its built-in default ([`Limits::default`]).
    pub default: Limits,
    /// Server-wide maxima. A field left out of `[limits.max]` keeps its
    /// built-in maximum ([`LimitsConfig::builtin_max`]).
    pub max: Limits,
}

impl LimitsConfig {
    /// The built-in maxima: 1e12 fuel, 1 GiB of memory, one hour of wall
    /// clock, 256 MiB of outputs, 1 MiB of log. Generous on purpose: they
    /// bound what a process's override may ask for, while
    /// [`Limits::default`] is what a job gets.
    pub fn builtin_max() -> Limits {
        Limits {
            fuel: 1_000_000_000_000,
            memory_bytes: 1024 * 1024 * 1024,
            timeout: Duration::from_secs(3600),
            output_bytes: 256 * 1024 * 1024,
            log_bytes: 1024 * 1024,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: Limits::default(),
            max: Self::builtin_max(),
        }
    }
}

/// `[limits]` as written: two partial tables, each resolved field by field
/// over its own built-in base (serde `from`, so the rest of the code only
/// ever sees complete [`Limits`]).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitTables {
    /// `[limits.default]`, over [`Limits::default`].
    default: PartialLimits,
    /// `[limits.max]`, over [`LimitsConfig::builtin_max`].
    max: PartialLimits,
}

impl From<LimitTables> for LimitsConfig {
    fn from(tables: LimitTables) -> Self {
        Self {
            default: tables.default.over(&Limits::default()),
            max: tables.max.over(&LimitsConfig::builtin_max()),
        }
    }
}

/// A limits table as written in the file: every field optional. Which
/// value a field left out takes depends on the table, so it is resolved
/// over a base ([`PartialLimits::over`]) rather than defaulted by serde.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PartialLimits {
    /// Instructions (wasmtime fuel units).
    pub fuel: Option<u64>,
    /// Linear memory, in bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock time, e.g. `"10m"`.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Total size of the outputs, in bytes.
    pub output_bytes: Option<u64>,
    /// Size of the job log, in bytes.
    pub log_bytes: Option<u64>,
}

impl PartialLimits {
    /// The fields given here, the others from `base`.
    pub fn over(&self, base: &Limits) -> Limits {
        Limits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            timeout: self.timeout.unwrap_or(base.timeout),
            output_bytes: self.output_bytes.unwrap_or(base.output_bytes),
            log_bytes: self.log_bytes.unwrap_or(base.log_bytes),
        }
    }

    /// The names of the fields given here.
    pub(super) fn given(&self) -> Vec<&'static str> {
        [
            ("fuel", self.fuel.is_some()),
            ("memory_bytes", self.memory_bytes.is_some()),
            ("timeout", self.timeout.is_some()),
            ("output_bytes", self.output_bytes.is_some()),
            ("log_bytes", self.log_bytes.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

impl From<Limits> for PartialLimits {
    /// Every field given.
    fn from(limits: Limits) -> Self {
        Self {
            fuel: Some(limits.fuel),
            memory_bytes: Some(limits.memory_bytes),
            timeout: Some(limits.timeout),
            output_bytes: Some(limits.output_bytes),
            log_bytes: Some(limits.log_bytes),
        }
    }
}

/// The fields of `limits` above `max`, each as `(field, value, maximum)`
/// written the way the file writes them.
pub(super) fn fields_above(limits: &Limits, max: &Limits) -> Vec<(&'static str, String, String)> {
    let duration = |d: Duration| humantime::format_duration(d).to_string();
    let mut above = Vec::new();
    let numbers = [
        ("fuel", limits.fuel, max.fuel),
        ("memory_bytes", limits.memory_bytes, max.memory_bytes),
        ("output_bytes", limits.output_bytes, max.output_bytes),
        ("log_bytes", limits.log_bytes, max.log_bytes),
    ];
    for (name, value, maximum) in numbers {
        if value > maximum {
            above.push((name, value.to_string(), maximum.to_string()));
        }
    }
    if limits.timeout > max.timeout {
        above.push(("timeout", duration(limits.timeout), duration(max.timeout)));
    }
    above.sort_by_key(|(name, _, _)| *name);
    above
}
