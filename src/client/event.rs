//! The event thread [ClientCnxn.EventThread]: runs watchers and async callbacks, one at a
//! time, in the order the send thread queued them.
//!
//! Owns nothing but its receiving channel. A panicking watcher or callback is logged and the
//! thread carries on, so one bad callback cannot silence the others. Stops at
//! [`EventItem::Stop`], which the send thread queues after everything else.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crossbeam_channel::Receiver;

use super::{WatchedEvent, Watcher};

/// One unit of work for the event thread.
pub(crate) enum EventItem {
    /// A watch or state event and the watchers to give it to.
    Event(WatchedEvent, Vec<Watcher>),
    /// An async completion (the result already bound in).
    Run(Box<dyn FnOnce() + Send>),
    /// Everything before has been queued; exit.
    Stop,
}

/// The thread body.
pub(crate) fn run(items: Receiver<EventItem>) {
    for item in items {
        match item {
            EventItem::Event(event, watchers) => {
                for w in watchers {
                    let e = event.clone();
                    if catch_unwind(AssertUnwindSafe(|| w.deliver(e))).is_err() {
                        log::error!("client: watcher panicked on {:?}", event.event_type);
                    }
                }
            }
            EventItem::Run(f) => {
                if catch_unwind(AssertUnwindSafe(f)).is_err() {
                    log::error!("client: async callback panicked");
                }
            }
            EventItem::Stop => break,
        }
    }
}
