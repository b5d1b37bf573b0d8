//! The election thread: the shell around [`Election`] (STYLE §2). Not wired into the server
//! yet; the peer thread will own it.
//!
//! A short loop and no protocol logic: wait on the receive channel, a control channel, or the
//! core's next deadline; feed the core with `Instant::now()`; drain every output: messages to
//! the [`CnxManager`] (a message to myself comes back through the receive channel, as in
//! Apache), outcomes to the peer thread. Frames that do not decode are logged and dropped.

use std::thread;
use std::time::Instant;

use crossbeam_channel::{never, select, Receiver, Sender};
use log::{debug, warn};

use crate::proto::Zxid;
use crate::quorum::cnxmanager::{CnxManager, Received};
use crate::quorum::election::{Election, Outcome};
use crate::quorum::wire::Notification;

/// What the peer thread asks of the election thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Start a new election (entering LOOKING) with these vote inputs.
    Start {
        /// The last logged zxid.
        last_logged_zxid: Zxid,
        /// The current epoch.
        current_epoch: i64,
    },
    /// A new leader is established in this epoch: advertise it in my vote.
    UpdateElectionVote(i64),
    /// Stop the thread.
    Stop,
}

/// Runs `core` until [`Control::Stop`] (or until the control channel closes), sending
/// outcomes to `outcomes`. Blocks the calling thread: spawn it.
pub fn run(
    mut core: Election,
    cnx: CnxManager,
    received: Receiver<Received>,
    control: Receiver<Control>,
    outcomes: Sender<Outcome>,
) {
    loop {
        while let Some((to, n)) = core.poll_send() {
            cnx.send(to, n.encode());
        }
        while let Some(outcome) = core.poll_outcome() {
            if outcomes.send(outcome).is_err() {
                return;
            }
        }
        if let Some(config) = core.poll_newer_config() {
            // Reconfig is not supported yet: log it; the election carries on.
            warn!("sid {} ignores a newer config ({} bytes)", core.my_id(), config.len());
        }
        let deadline = core.poll_timeout();
        let timer = match deadline {
            Some(at) => crossbeam_channel::at(at),
            None => never(),
        };
        select! {
            recv(received) -> message => match message {
                Ok((from, bytes)) => match Notification::decode(&bytes) {
                    Ok(n) => core.handle_notification(from, &n, Instant::now()),
                    Err(e) => debug!("sid {from}: election message dropped: {e}"),
                },
                Err(_) => return,
            },
            recv(control) -> command => match command {
                Ok(Control::Start { last_logged_zxid, current_epoch }) => {
                    core.set_vote_inputs(last_logged_zxid, current_epoch);
                    core.start(Instant::now());
                }
                Ok(Control::UpdateElectionVote(epoch)) => core.update_election_vote(epoch),
                Ok(Control::Stop) | Err(_) => return,
            },
            recv(timer) -> _ => core.handle_timeout(Instant::now()),
        }
    }
}

/// Spawns [`run`] on a thread named `election-<sid>`.
pub fn spawn(
    core: Election,
    cnx: CnxManager,
    received: Receiver<Received>,
    control: Receiver<Control>,
    outcomes: Sender<Outcome>,
) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("election-{}", core.my_id()))
        .spawn(move || run(core, cnx, received, control, outcomes))
}
