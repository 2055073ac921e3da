//! Shared by the service test files (each uses what it needs).
#![allow(dead_code)]

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

/// Instantiates async test functions on SQLite and on PostgreSQL, each on a fresh,
/// empty store: `on_both_backends!(a, b)` calls `a(store)`;
/// `on_both_backends!(with super::harness; a, b)` calls `a(harness(store).await)`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    (with $setup:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($setup(tessera_store_sql::testing::sqlite_temp().await).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($setup(tessera_store_sql::testing::postgres_temp().await).await).await;
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_store_sql::testing::sqlite_temp().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(tessera_store_sql::testing::postgres_temp().await).await;
                }
            )*
        }
    };
}
