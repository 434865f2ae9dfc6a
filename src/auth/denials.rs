//! Refusals, aggregated per caller and minute, so that refused requests cannot flood the register: the
//! first refusal of a caller opens a one-minute window and is recorded at once; the refusals that follow in
//! the window are held and become one entry with their count when the window closes.
//!
//! Owns: which refusals are recorded when. Must not touch: the register (the API writes the entries).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one caller's refusals are gathered into one entry.
pub const WINDOW: Duration = Duration::from_secs(60);

/// One refused request, as the register names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub actor: String,
    pub addr: Option<String>,
    /// `METHOD /path`.
    pub route: String,
    pub reason: String,
    /// RFC 3339.
    pub time: String,
}

/// Refusals held back in a window that closed: the first of them, and how many there were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub first: Denial,
    pub count: u64,
}

struct Window {
    opened: Instant,
    held: Option<Held>,
}

#[derive(Default)]
pub struct DenialLedger {
    windows: Mutex<HashMap<String, Window>>,
}

impl DenialLedger {
    /// Notes `denial` at `now`: the denial back when it opens its caller's window (record it now), else
    /// `None` (it is held and counted).
    pub fn note(&self, denial: Denial, now: Instant) -> Option<Denial> {
        let mut windows = self.windows.lock().expect("denial ledger lock is never poisoned");
        match windows.get_mut(&denial.actor) {
            // Open, or closed with refusals not yet taken: this one joins those held.
            Some(window) if now.duration_since(window.opened) < WINDOW || window.held.is_some() => {
                Self::hold(window, denial);
                None
            }
            _ => {
                windows.insert(denial.actor.clone(), Window { opened: now, held: None });
                Some(denial)
            }
        }
    }

    fn hold(window: &mut Window, denial: Denial) {
        match &mut window.held {
            Some(held) => held.count += 1,
            None => window.held = Some(Held { first: denial, count: 1 }),
        }
    }

    /// The held refusals of every window closed by `now`, one [`Held`] each; closed windows are forgotten.
    pub fn closed(&self, now: Instant) -> Vec<Held> {
        let mut windows = self.windows.lock().expect("denial ledger lock is never poisoned");
        let mut held = Vec::new();
        windows.retain(|_, window| {
            let open = now.duration_since(window.opened) < WINDOW;
            if !open {
                held.extend(window.held.take());
            }
            open
        });
        held
    }

    /// Every held refusal, open windows too (at shutdown).
    pub fn drain(&self) -> Vec<Held> {
        let mut windows = self.windows.lock().expect("denial ledger lock is never poisoned");
        windows.drain().filter_map(|(_, window)| window.held).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(actor: &str, reason: &str) -> Denial {
        Denial {
            actor: actor.into(),
            addr: None,
            route: "POST /v1/sign".into(),
            reason: reason.into(),
            time: "2025-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn the_first_refusal_of_a_window_is_recorded_at_once_and_the_rest_become_one_count() {
        let ledger = DenialLedger::default();
        let start = Instant::now();
        assert_eq!(ledger.note(denial("a", "first"), start), Some(denial("a", "first")));
        for n in 0..1000 {
            assert_eq!(ledger.note(denial("a", &format!("again {n}")), start), None);
        }
        assert!(ledger.note(denial("b", "other caller"), start).is_some());
        assert!(ledger.closed(start + WINDOW / 2).is_empty(), "a window closed early");
        let held = ledger.closed(start + WINDOW);
        assert_eq!(held, [Held { first: denial("a", "again 0"), count: 1000 }]);
        assert!(ledger.closed(start + WINDOW * 2).is_empty());
        assert!(ledger.note(denial("a", "next minute"), start + WINDOW * 2).is_some());
    }

    #[test]
    fn a_refusal_after_the_window_but_before_it_is_taken_joins_the_held_count() {
        let ledger = DenialLedger::default();
        let start = Instant::now();
        ledger.note(denial("a", "first"), start);
        ledger.note(denial("a", "second"), start);
        assert_eq!(ledger.note(denial("a", "late"), start + WINDOW), None);
        assert_eq!(ledger.closed(start + WINDOW)[0].count, 2);
    }

    #[test]
    fn shutdown_takes_what_open_windows_hold() {
        let ledger = DenialLedger::default();
        let start = Instant::now();
        ledger.note(denial("a", "first"), start);
        assert!(ledger.drain().is_empty(), "a recorded refusal was held as well");
        ledger.note(denial("a", "first"), start);
        ledger.note(denial("a", "second"), start);
        assert_eq!(ledger.drain(), [Held { first: denial("a", "second"), count: 1 }]);
    }
}
