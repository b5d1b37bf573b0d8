//! A bounded number of heavy things (server processes, ensembles) running at once in one test
//! binary: the machine has few cores and timing-sensitive tests fail when too many compete.
#![allow(dead_code)]

use std::sync::{Condvar, Mutex};

/// A counting semaphore for a `static`.
pub struct Slots {
    taken: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    /// No slot taken.
    pub const fn new() -> Slots {
        Slots { taken: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits until fewer than `max` slots are taken and takes one; freed on drop.
    pub fn acquire(&'static self, max: usize) -> Slot {
        let mut n = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max.max(1) {
            n = self.freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot(self)
    }
}

/// A taken slot.
pub struct Slot(&'static Slots);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = self.0.taken.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        self.0.freed.notify_one();
    }
}

/// `var` parsed as a count, or `default`.
pub fn limit(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(1)
}
