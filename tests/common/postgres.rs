//! A fresh PostgreSQL database per test, on the server `BOUNCER_TEST_POSTGRES` names
//! (`.ci/run` sets it). Without it, tests that need one say they were skipped and pass.

use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, PgConnection};

/// The variable naming the server: `postgres://root@127.0.0.1:5432/test` on CI.
pub const VAR: &str = "BOUNCER_TEST_POSTGRES";

/// Says, where the harness does not hide it, that `test` was skipped and why.
pub fn skipped(test: &str) {
    // Straight to stderr: the test harness captures `eprintln!`, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr().lock(),
        "{test}: skipped: PostgreSQL not configured (set {VAR}=postgres://user@host/db)"
    );
}

/// A database made for one test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (reported as skipped) when no server is configured.
    /// A configured server that cannot be reached fails the test: CI must not skip silently.
    pub async fn create(test: &str) -> Option<TestDatabase> {
        let Ok(server) = std::env::var(VAR) else {
            skipped(test);
            return None;
        };
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "bouncer_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("{VAR} is set but PostgreSQL is unreachable: {e}"));
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let url = with_database(&server, &name);
        Some(TestDatabase { url, name, server })
    }

    /// Drops the database now, with every connection to it (the store "goes away").
    pub async fn drop_database(&self) {
        let mut admin = PgConnection::connect(&self.server).await.unwrap();
        admin
            .execute(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name).as_str())
            .await
            .unwrap();
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread of its own: drop may run inside a runtime.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await.ok()?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// `server` with its database part replaced by `name`.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}
