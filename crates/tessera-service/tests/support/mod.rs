//! Shared by the service test files.

use tessera_core::{Clock, SystemClock, Timestamp};

/// The system clock plus an offset a test can move forward.
#[derive(Default)]
pub struct ShiftedClock {
    pub offset_micros: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    pub fn advance_seconds(&self, seconds: i64) {
        self.offset_micros
            .fetch_add(seconds * 1_000_000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let now = SystemClock.now();
        Timestamp::from_unix_micros(
            now.unix_micros() + self.offset_micros.load(std::sync::atomic::Ordering::SeqCst),
        )
    }
}
