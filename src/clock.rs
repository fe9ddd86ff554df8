//! Time as a value passed in. The authorization (token expiry, refresh margins, back-off), the
//! OAuth state store and device flows read a [`Clock`] instead of the system's time, so tests
//! move time forward instead of sleeping through token lifetimes and `slow_down` intervals.
//!
//! A clock is the system's (the default, and what `serve` uses) or adjustable: the system's
//! time plus every [`Clock::advance`] so far. Sleeping on an adjustable clock ends when the
//! time has passed by either way, waiting or advancing.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wall-clock time in milliseconds since 1970, as tokens and states keep it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// `None`: the system's time.
    shift: Option<Arc<Shift>>,
}

#[derive(Debug, Default)]
struct Shift {
    /// How far this clock is ahead of the system's.
    ahead_ms: AtomicI64,
    /// Wakes sleepers when the clock is moved.
    moved: tokio::sync::Notify,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Clock {
    /// The system's time.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that tests move forward with [`Clock::advance`].
    pub fn adjustable() -> Clock {
        Clock {
            shift: Some(Arc::default()),
        }
    }

    pub fn now_ms(&self) -> i64 {
        let system = chrono::Utc::now().timestamp_millis();
        match &self.shift {
            None => system,
            Some(shift) => system.saturating_add(shift.ahead_ms.load(Ordering::SeqCst)),
        }
    }

    /// Moves an adjustable clock forward by `by` and wakes whoever sleeps on it. The system's
    /// clock cannot be moved: there it does nothing.
    pub fn advance(&self, by: Duration) {
        if let Some(shift) = &self.shift {
            shift.ahead_ms.fetch_add(millis(by), Ordering::SeqCst);
            shift.moved.notify_waiters();
        }
    }

    /// Waits until `duration` has passed on this clock.
    pub async fn sleep(&self, duration: Duration) {
        let Some(shift) = &self.shift else {
            return tokio::time::sleep(duration).await;
        };
        let until = self.now_ms().saturating_add(millis(duration));
        loop {
            // Registered before the time is read, so an advance in between is not missed.
            let moved = shift.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let left = until - self.now_ms();
            if left <= 0 {
                return;
            }
            let left = Duration::from_millis(u64::try_from(left).unwrap_or_default());
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                _ = &mut moved => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_adjustable_clock_moves_forward_and_wakes_its_sleepers() {
        let clock = Clock::adjustable();
        let before = clock.now_ms();
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(3600)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "half an hour is not an hour");
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the sleeper wakes when the hour has passed")
            .expect("the sleeper ends well");
        assert!(clock.now_ms() - before >= 3_600_000);
    }

    #[tokio::test]
    async fn the_system_clock_cannot_be_moved() {
        let clock = Clock::system();
        let before = clock.now_ms();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now_ms() - before < 60_000);
    }
}
