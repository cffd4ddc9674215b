//! What the jobs of one tree of nested processes share: a fuel budget for
//! all of them, and the calls already made, so that a call written twice
//! runs once (a diamond).
//!
//! A [`Tree`] is made when a job that has nested processes starts (the
//! top of the tree) and handed down to every step, and to the steps'
//! steps (`jobs/steps.rs` → `Scheduler::run_step` → `jobs/run.rs`).
//!
//! # The fuel budget (`execution.workflow_fuel`)
//! Each step keeps its own fuel limit; the tree's budget bounds what all
//! of its guests burn together, the top job's own run included. Before a
//! guest starts it reserves its limit from the budget
//! ([`FuelBudget::reserve`]) and gives back what it did not burn when it
//! ends ([`FuelBudget::settle`]), so the guests running at any moment can
//! never together burn more than is left: the bound is exact, not
//! checked after the fact. A guest that finds less left than its limit
//! waits while others hold reservations (they end within their own
//! limits, and give back what they did not use); once nobody holds one,
//! it gets what is left, and when that is nothing it fails at once,
//! naming the budget.
//!
//! # A diamond: one call, several places
//! Nested JSON is a tree, so a value two steps need is written twice:
//! `d(b(a(x)), c(a(x)))`. Within one tree, identical calls (the same
//! process, inputs, outputs and map, compared as canonical JSON) run once:
//! the first place to need the value runs the call, the others wait for
//! it, and each parent lists that one job among its steps.
//! [`Tree::call_slot`] gives the place where a call's outcome is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;
use tokio::sync::{Notify, OnceCell};

use super::steps::StepFailed;
use crate::store::Step;

/// The path of the place that made a call, the steps it ran there, and
/// the value it gave or why it gave none.
pub(super) type SharedCall = (String, Vec<Step>, Result<Value, StepFailed>);

/// What the jobs of one tree share (see the module documentation).
pub(super) struct Tree {
    /// The fuel all of the tree's guests may burn together.
    pub(super) fuel: FuelBudget,
    /// Calls by their canonical JSON: made once, read by every place.
    calls: Mutex<HashMap<String, Arc<OnceCell<SharedCall>>>>,
}

impl Tree {
    /// A tree whose guests may burn `fuel` in all.
    pub(super) fn new(fuel: u64) -> Self {
        Self {
            fuel: FuelBudget::new(fuel),
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Where the outcome of the call whose canonical JSON is `key` is
    /// kept: the same cell for every identical call of the tree.
    pub(super) fn call_slot(&self, key: String) -> Arc<OnceCell<SharedCall>> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone()
    }
}

/// The reservations of one budget.
#[derive(Debug)]
struct Reservations {
    /// Fuel neither burnt nor reserved.
    left: u64,
    /// Guests holding a reservation.
    holders: usize,
}

/// A fuel budget shared by guests that run at the same time (see the
/// module documentation).
pub(super) struct FuelBudget {
    total: u64,
    state: Mutex<Reservations>,
    /// Woken when a reservation is settled.
    settled: Notify,
}

impl FuelBudget {
    fn new(total: u64) -> Self {
        Self {
            total,
            state: Mutex::new(Reservations {
                left: total,
                holders: 0,
            }),
            settled: Notify::new(),
        }
    }

    /// The whole budget.
    pub(super) fn total(&self) -> u64 {
        self.total
    }

    /// Reserve up to `wanted` fuel for one guest: all of it when that much
    /// is left; else, once no other guest holds a reservation, what is
    /// left (zero when nothing is: the guest must not run). Settle every
    /// reservation of more than zero with [`Self::settle`].
    pub(super) async fn reserve(&self, wanted: u64) -> u64 {
        loop {
            // Registered before the check, so a settle between the check
            // and the wait still wakes this one.
            let settled = self.settled.notified();
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.left >= wanted || state.holders == 0 {
                    let granted = wanted.min(state.left);
                    state.left -= granted;
                    if granted > 0 {
                        state.holders += 1;
                    }
                    return granted;
                }
            }
            settled.await;
        }
    }

    /// End a reservation of `reserved` fuel of which the guest burnt
    /// `burnt`: the rest is left for others.
    pub(super) fn settle(&self, reserved: u64, burnt: u64) {
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.left += reserved.saturating_sub(burnt);
            state.holders = state.holders.saturating_sub(1);
        }
        self.settled.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn reservations_never_exceed_the_budget_and_waiters_get_what_is_given_back() {
        let budget = Arc::new(FuelBudget::new(100));
        assert_eq!(budget.reserve(60).await, 60);
        // 40 left: a guest wanting 60 waits while another holds fuel...
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(60).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        // ...and gets its 60 once the first gives back what it did not burn.
        budget.settle(60, 10);
        let granted = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(granted, 60);
        budget.settle(60, 60);
        // 30 left and nobody holding any: a guest gets what is left...
        assert_eq!(budget.reserve(50).await, 30);
        budget.settle(30, 30);
        // ...and nothing once it is all burnt.
        assert_eq!(budget.reserve(50).await, 0);
    }

    #[test]
    fn identical_calls_share_one_slot() {
        let tree = Tree::new(1);
        let a = tree.call_slot("a".into());
        assert!(Arc::ptr_eq(&a, &tree.call_slot("a".into())));
        assert!(!Arc::ptr_eq(&a, &tree.call_slot("b".into())));
    }
}
