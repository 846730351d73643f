//! Concurrency helpers shared by the components: a lock that shrugs off poison, a named
//! background thread that runs a task periodically until stopped, and a runtime on a thread of
//! its own for a component's background I/O.

use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Locks `mutex`, ignoring poison.
///
/// Every mutex in this crate guards data that a panicking holder cannot leave half-updated
/// (whole-value replacements, pushes, removals), so a panic elsewhere must not disable the
/// request path.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Longest wait between two runs; keeps `Instant + every` from overflowing.
const MAX_EVERY: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// A named thread that runs a task every `every` until the handle is dropped or the task says
/// [`ControlFlow::Break`] (typically because the `Weak` it holds no longer upgrades).
///
/// Dropping the handle wakes the thread and waits for it to finish its current run, unless the
/// handle is dropped on that very thread (the task dropped the last owner of the handle), in
/// which case the thread just stops after the run.
#[derive(Debug)]
pub(crate) struct Periodic {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl Periodic {
    /// Starts the thread; the first run comes `every` after the start.
    pub(crate) fn spawn<F>(name: &str, every: Duration, mut task: F) -> std::io::Result<Periodic>
    where
        F: FnMut() -> ControlFlow<()> + Send + 'static,
    {
        let stop = Arc::new(Stop::default());
        let theirs = Arc::clone(&stop);
        let every = every.min(MAX_EVERY);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || loop {
                let deadline = Instant::now() + every;
                let mut stopped = lock(&theirs.stopped);
                // Loops on spurious wake-ups until the deadline.
                while !*stopped {
                    match deadline.checked_duration_since(Instant::now()) {
                        Some(left) if !left.is_zero() => {
                            stopped = theirs
                                .wake
                                .wait_timeout(stopped, left)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        _ => break,
                    }
                }
                if *stopped {
                    return;
                }
                drop(stopped);
                if task().is_break() {
                    return;
                }
            })?;
        Ok(Periodic {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        *lock(&self.stop.stopped) = true;
        self.stop.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != std::thread::current().id() {
                // A panic in the task has nothing to report here.
                let _ = thread.join();
            }
        }
    }
}

/// A current-thread tokio runtime for a component's background work (store calls, API calls),
/// to be driven by a named thread of its own: the component's I/O never runs on, nor needs, the
/// caller's runtime (actix runs one per worker thread).
pub(crate) struct RuntimeThread {
    runtime: tokio::runtime::Runtime,
}

impl RuntimeThread {
    /// The runtime, not running yet.
    pub(crate) fn new() -> std::io::Result<RuntimeThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(RuntimeThread { runtime })
    }

    /// Where tasks can be spawned on it, from any thread (the reputation client's upstream
    /// calls are).
    #[cfg_attr(not(any(feature = "reputation", feature = "redis")), allow(dead_code))]
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Starts the thread `name`, which runs the future `main` makes until it ends, then drops
    /// the runtime (cancelling whatever still runs on it).
    pub(crate) fn run<F, Fut>(self, name: &str, main: F) -> std::io::Result<()>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let runtime = self.runtime;
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || runtime.block_on(main()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn runs_until_dropped_and_joins() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let periodic = Periodic::spawn("test-periodic", Duration::from_millis(1), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            ControlFlow::Continue(())
        })
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(runs.load(Ordering::SeqCst) >= 3);
        drop(periodic);
        // Joined: the thread, and the task it owned, are gone.
        assert_eq!(Arc::strong_count(&runs), 1);
    }

    #[test]
    fn a_task_can_end_its_thread() {
        let periodic = Periodic::spawn("test-periodic", Duration::from_millis(1), || {
            ControlFlow::Break(())
        })
        .unwrap();
        let thread = periodic.thread.as_ref().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(thread.is_finished());
    }
}
