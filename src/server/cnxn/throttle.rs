//! Connection-rate throttling (ZooKeeper's `BlueThrottle`) and the large-request budget
//! (`zookeeper.largeRequestMaxBytes` / `largeRequestThreshold`): two admission decisions the
//! selector makes, kept here as pure types driven by the caller's clock and coin, so they can
//! be tested without sockets or sleeps.
//!
//! The throttle is a token bucket on session requests (ConnectRequests): it starts full with
//! `connection_throttle_tokens` tokens and gains `fill_count` every `fill_time` ms. A new
//! session costs one token, or with `connection_throttle_weight_enabled` the global-session
//! weight (3) for a new session and the renew weight (2) for a re-attach, the bucket and
//! refill scaled by the global weight, as Apache does. With `freeze_time` set (not -1), the
//! BLUE part drops requests at random with a probability that rises by `drop_increase` each
//! freeze period the bucket is found empty and falls by `drop_decrease` while the deficit is
//! at most `decrease_ratio` of the bucket. A refused connection is closed (Apache's
//! `ClientCnxnLimitException`) and counted in `connection_rejected`.

pub use crate::config::{SessionWeights, ThrottleConfig};

/// The token bucket with BLUE random dropping. Time is milliseconds on the caller's clock.
#[derive(Debug, Clone)]
pub struct ConnThrottle {
    cfg: ThrottleConfig,
    max_tokens: i64,
    fill_count: i64,
    tokens: i64,
    last_fill_ms: u64,
    last_freeze_ms: u64,
    drop: f64,
}

impl ConnThrottle {
    /// A full bucket at `now_ms`.
    pub fn new(cfg: ThrottleConfig, now_ms: u64) -> ConnThrottle {
        // Apache scales the bucket and the refill by the global weight when weighing is on:
        // the configured numbers are meant in global sessions.
        let scale = cfg.weights.map_or(1, |w| i64::from(w.global));
        let max_tokens = i64::from(cfg.tokens) * scale;
        ConnThrottle {
            cfg,
            max_tokens,
            fill_count: i64::from(cfg.fill_count) * scale,
            tokens: max_tokens,
            last_fill_ms: now_ms,
            last_freeze_ms: now_ms,
            drop: 0.0,
        }
    }

    /// Whether throttling is on at all.
    pub fn enabled(&self) -> bool {
        self.max_tokens > 0
    }

    /// The tokens a session request costs: `renew` for a re-attach to an existing session.
    pub fn cost(&self, renew: bool) -> u32 {
        match self.cfg.weights {
            None => 1,
            Some(w) if renew => w.renew,
            Some(w) => w.global,
        }
    }

    /// Admits a session request costing `need` tokens at `now_ms`; `coin` is a uniform draw
    /// in `0..1` for the random drop.
    pub fn check(&mut self, need: u32, now_ms: u64, coin: f64) -> bool {
        if !self.enabled() {
            return true;
        }
        let fill_time = u64::from(self.cfg.fill_time_ms.max(1));
        let elapsed = now_ms.saturating_sub(self.last_fill_ms);
        if elapsed > fill_time {
            let refill = (elapsed as i64).saturating_mul(self.fill_count) / fill_time as i64;
            self.tokens = self.tokens.saturating_add(refill).min(self.max_tokens);
            self.last_fill_ms = now_ms;
        }
        if let Some(freeze) = self.cfg.freeze_time_ms {
            if !self.blue(now_ms, u64::from(freeze), coin) {
                return false;
            }
        }
        let need = i64::from(need);
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }

    /// BLUE: adjusts the drop probability once per freeze period, then draws.
    fn blue(&mut self, now_ms: u64, freeze_ms: u64, coin: f64) -> bool {
        let deficit = self.max_tokens - self.tokens;
        let threshold = (self.max_tokens as f64 * self.cfg.decrease_ratio).round() as i64;
        if now_ms.saturating_sub(self.last_freeze_ms) > freeze_ms {
            if deficit == self.max_tokens && self.drop < 1.0 {
                self.drop = (self.drop + self.cfg.drop_increase).min(1.0);
            } else if deficit <= threshold && self.drop > 0.0 {
                self.drop = (self.drop - self.cfg.drop_decrease).max(0.0);
            }
            self.last_freeze_ms = now_ms;
        }
        coin >= self.drop
    }

    /// The current drop probability (`connection_drop_probability` in mntr).
    pub fn drop_probability(&self) -> f64 {
        self.drop
    }

    /// Tokens missing from a full bucket (`connection_token_deficit`).
    pub fn deficit(&self) -> i64 {
        self.max_tokens - self.tokens
    }
}

/// The large-request budget: frames longer than `threshold` bytes may hold at most
/// `max_bytes` in the server at once; a frame that would pass it closes its connection
/// ("Rejecting large request"), as ZooKeeper does.
#[derive(Debug, Clone)]
pub struct LargeRequests {
    /// `largeRequestThreshold`; `None` (-1) turns the budget off.
    threshold: Option<usize>,
    /// `largeRequestMaxBytes`.
    max_bytes: usize,
    /// Bytes of large requests read and not yet answered.
    current: usize,
}

impl LargeRequests {
    /// The budget from its two settings.
    pub fn new(threshold: Option<usize>, max_bytes: usize) -> LargeRequests {
        LargeRequests { threshold, max_bytes, current: 0 }
    }

    /// Whether a frame of `len` bytes counts as large.
    pub fn is_large(&self, len: usize) -> bool {
        self.threshold.is_some_and(|t| len > t)
    }

    /// Whether a frame whose length is known (its body may still be arriving) can be read:
    /// false if it is large and would not fit (ZooKeeperServer's check on reading a length).
    pub fn may_read(&self, len: usize) -> bool {
        !self.is_large(len) || self.current.saturating_add(len) <= self.max_bytes
    }

    /// A complete large request of `len` bytes enters the server; false (nothing held) when
    /// it does not fit any more.
    pub fn admit(&mut self, len: usize) -> bool {
        if !self.is_large(len) {
            return true;
        }
        if self.current.saturating_add(len) > self.max_bytes {
            return false;
        }
        self.current += len;
        true
    }

    /// A request of `len` bytes was answered (or its connection closed): a large one gives
    /// its bytes back.
    pub fn finished(&mut self, len: usize) {
        if self.is_large(len) {
            self.current = self.current.saturating_sub(len);
        }
    }

    /// Bytes of large requests held now.
    pub fn current(&self) -> usize {
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tokens: u32, fill_time_ms: u32, fill_count: u32) -> ThrottleConfig {
        ThrottleConfig { tokens, fill_time_ms, fill_count, ..ThrottleConfig::default() }
    }

    #[test]
    fn off_by_default_and_a_bucket_that_refills() {
        let mut off = ConnThrottle::new(ThrottleConfig::default(), 0);
        assert!((0..10_000).all(|_| off.check(1, 0, 0.5)));
        let mut t = ConnThrottle::new(cfg(3, 100, 1), 0);
        assert!(t.check(1, 0, 0.5) && t.check(1, 0, 0.5) && t.check(1, 0, 0.5));
        assert!(!t.check(1, 50, 0.5), "empty bucket");
        assert_eq!(t.deficit(), 3);
        // 250 ms later: two fills of one token.
        assert!(t.check(1, 250, 0.5));
        assert!(t.check(1, 250, 0.5));
        assert!(!t.check(1, 250, 0.5));
        // Refill never passes the bucket size.
        assert!((0..3).all(|_| t.check(1, 100_000, 0.5)));
        assert!(!t.check(1, 100_000, 0.5));
    }

    #[test]
    fn weights_scale_the_bucket_and_price_renewals() {
        let w = SessionWeights::corrected(3, 2, 1);
        let mut t = ConnThrottle::new(ThrottleConfig { weights: Some(w), ..cfg(2, 1000, 1) }, 0);
        assert_eq!((t.cost(false), t.cost(true)), (3, 2));
        // 2 global sessions' worth = 6 tokens: a new session (3), a renewal (2), then no
        // room for another new session.
        assert!(t.check(t.cost(false), 0, 0.5));
        assert!(t.check(t.cost(true), 0, 0.5));
        assert!(!t.check(t.cost(false), 0, 0.5));
        assert_eq!(SessionWeights::corrected(0, -1, 0), SessionWeights::corrected(3, 2, 1));
        let low = SessionWeights::corrected(1, 1, 4);
        assert_eq!((low.global, low.renew, low.local), (4, 4, 4));
    }

    #[test]
    fn blue_raises_the_drop_chance_while_the_bucket_stays_empty_and_lowers_it_after() {
        let mut t = ConnThrottle::new(
            ThrottleConfig {
                freeze_time_ms: Some(10),
                drop_increase: 0.25,
                drop_decrease: 0.25,
                ..cfg(1, 1_000_000, 1)
            },
            0,
        );
        assert!(t.check(1, 0, 0.99));
        for (i, now) in [20u64, 40, 60, 80].iter().enumerate() {
            // Empty at every freeze period: the chance rises by a quarter each time.
            let _ = t.check(1, *now, 0.99);
            assert!((t.drop_probability() - 0.25 * (i + 1) as f64).abs() < 1e-9);
        }
        assert!(!t.check(1, 85, 0.99), "drop chance 1 refuses every draw");
        // A bucket with no deficit (a refill) lowers it again.
        let _ = t.check(0, 2_000_000, 0.99);
        assert!((t.drop_probability() - 0.75).abs() < 1e-9);
    }

    #[test]
    fn large_requests_share_one_budget() {
        let off = LargeRequests::new(None, 10);
        assert!(off.may_read(1 << 30) && !off.is_large(1 << 30));
        let mut b = LargeRequests::new(Some(100), 1000);
        assert!(b.admit(100), "at the threshold is not large");
        assert_eq!(b.current(), 0);
        assert!(b.admit(600));
        assert!(b.may_read(400) && !b.may_read(401));
        assert!(!b.admit(401));
        assert!(b.admit(400));
        assert_eq!(b.current(), 1000);
        b.finished(600);
        b.finished(50);
        assert_eq!(b.current(), 400);
    }
}
