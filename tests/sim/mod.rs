//! Pieces shared by the cluster simulations (`sim_election.rs`, `sim_zab.rs`): the seeded
//! random number generator, the seed-selection convention, and the lossy network (its
//! parameters and its queue of messages in flight).
//!
//! Seeds: `ZK_SIM_SEED=<n>` replays one seed (the simulations print it on failure);
//! `ZK_SIM_RUNS=<n>` sets the number of seeds per scenario.

/// xorshift64*: small, seedable, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON < p
    }
}

/// The seeds of one scenario: `ZK_SIM_SEED` alone if set, else `ZK_SIM_RUNS` (default
/// `default_runs`) seeds salted by the scenario so that scenarios do not share seeds.
pub fn seeds(salt: u64, default_runs: u64) -> Vec<u64> {
    if let Ok(seed) = std::env::var("ZK_SIM_SEED") {
        return vec![seed.parse().expect("ZK_SIM_SEED is a number")];
    }
    let runs: u64 =
        std::env::var("ZK_SIM_RUNS").map_or(default_runs, |r| r.parse().expect("a number"));
    (0..runs).map(|r| salt * 1_000_000 + r).collect()
}

/// How lossy the simulated network is.
#[derive(Clone, Copy, Debug)]
pub struct NetParams {
    /// Probability that a message is dropped.
    pub drop_p: f64,
    /// Probability that a message is delivered twice.
    pub dup_p: f64,
    /// Each copy is delayed by 0..=this many ms.
    pub max_delay_ms: u64,
}

impl NetParams {
    /// One of the chaos presets, chosen by `rng`.
    pub fn random(rng: &mut Rng) -> NetParams {
        NetParams {
            drop_p: [0.0, 0.05, 0.2, 0.5][rng.below(4) as usize],
            dup_p: [0.0, 0.1, 0.3][rng.below(3) as usize],
            max_delay_ms: [10, 100, 400, 1500][rng.below(4) as usize],
        }
    }
}

/// Messages in flight on the simulated lossy network, by delivery time; each directed link
/// holds at most `capacity` undelivered messages (a new one pushes out the link's oldest, as
/// a send queue of one-ish would).
pub struct InFlight<M> {
    /// (deliver at, sequence) -> (from index, to index, message).
    by_time: std::collections::BTreeMap<(u64, u64), (usize, usize, M)>,
    /// Undelivered messages per directed link, oldest first (keys into `by_time`).
    links: std::collections::BTreeMap<(usize, usize), std::collections::VecDeque<(u64, u64)>>,
    seq: u64,
    capacity: usize,
}

impl<M> InFlight<M> {
    /// An empty network whose links hold `capacity` messages each.
    pub fn new(capacity: usize) -> InFlight<M> {
        InFlight {
            by_time: std::collections::BTreeMap::new(),
            links: std::collections::BTreeMap::new(),
            seq: 0,
            capacity,
        }
    }

    /// Queues `m` from `from` to `to` for delivery at `at`.
    pub fn push(&mut self, at: u64, from: usize, to: usize, m: M) {
        self.seq += 1;
        self.by_time.insert((at, self.seq), (from, to, m));
        let queue = self.links.entry((from, to)).or_default();
        queue.push_back((at, self.seq));
        if queue.len() > self.capacity {
            if let Some(oldest) = queue.pop_front() {
                self.by_time.remove(&oldest);
            }
        }
    }

    /// Sends `m` over a link that is up: dropped, duplicated and delayed as `net` says.
    pub fn transmit(
        &mut self,
        rng: &mut Rng,
        net: &NetParams,
        now: u64,
        from: usize,
        to: usize,
        m: M,
    ) where
        M: Clone,
    {
        if rng.chance(net.drop_p) {
            return;
        }
        let copies = if rng.chance(net.dup_p) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + rng.range(0, net.max_delay_ms);
            self.push(at, from, to, m.clone());
        }
    }

    /// The next message due at or before `now`, as (from, to, message).
    pub fn pop_due(&mut self, now: u64) -> Option<(usize, usize, M)> {
        let entry = self.by_time.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let key = *entry.key();
        let (from, to, m) = entry.remove();
        if let Some(queue) = self.links.get_mut(&(from, to)) {
            queue.retain(|k| *k != key);
        }
        Some((from, to, m))
    }

    /// When the next message is due.
    pub fn next_at(&self) -> Option<u64> {
        self.by_time.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Messages in flight.
    #[allow(dead_code)] // sim_zab does not bound the count
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Whether nothing is in flight.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}
