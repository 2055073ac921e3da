//! What Tessera's test suites share, so that each test file holds its tests and not
//! a copy of their setup. A dev-dependency only: no production crate depends on it,
//! and it is never published.
//!
//! - [`Backend`] and the databases behind it ([`databases`]): a fresh SQLite file or
//!   a fresh PostgreSQL database per test; [`both_backends!`] runs a test body on
//!   each.
//! - [`conformance`]: the storage conformance suite every `Store` must pass.
//! - [`fixtures`]: a bootstrapped administrator, a workload, authentication
//!   settings, a clock a test can move.
//! - [`server`]: the real `tessera serve`, started and stopped for black-box tests,
//!   and the Node scripts in `e2e/` run against it.
//!
//! It is test code: a failed setup panics with what went wrong, like an assertion.
//! The macros expand to `#[tokio::test]`, so a crate using them has `tokio` among
//! its dev-dependencies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod conformance;
pub mod databases;
pub mod fixtures;
pub mod server;

pub use databases::{Backend, PostgresDatabase, postgres_temp, sqlite_temp};
pub use fixtures::{Admin, ShiftedClock, Workload, auth_settings, bootstrap_admin, workload};
pub use server::{PostgresNode, Server, run_ok, venv_bin};

/// Runs async test functions on SQLite and on PostgreSQL, each on a fresh, empty
/// database: a module `sqlite` and a module `postgres`, each with one
/// `#[tokio::test]` per name.
///
/// - `both_backends!(a, b)` calls `a(store).await` with an `Arc<dyn Store>`;
/// - `both_backends!(setup = harness; a, b)` calls `a(harness(backend).await).await`,
///   where `harness` is an async function of a [`Backend`] in scope where the macro
///   is used.
#[macro_export]
macro_rules! both_backends {
    (setup = $setup:path; $($name:ident),* $(,)?) => {
        $crate::both_backends!(@modules [super] $setup; $($name),*);
    };
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!(@modules [super] $crate::Backend::store; $($name),*);
    };
    (@modules [$($module:tt)*] $setup:path; $($name:ident),*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $crate::both_backends!(@tests Sqlite [$($module)*] $setup; $($name),*);
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $crate::both_backends!(@tests Postgres [$($module)*] $setup; $($name),*);
        }
    };
    (@tests $backend:ident [$($module:tt)*] $setup:path; $name:ident $(, $rest:ident)*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $($module)*::$name($setup($crate::Backend::$backend).await).await;
        }
        $crate::both_backends!(@tests $backend [$($module)*] $setup; $($rest),*);
    };
    (@tests $backend:ident [$($module:tt)*] $setup:path;) => {};
}
