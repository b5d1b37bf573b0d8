//! Pieces shared by the cluster simulations (`sim_election.rs`, `sim_zab.rs`): the seeded
//! random number generator and the seed-selection convention.
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
