//! Ctrl-C, SIGTERM and SIGHUP (a closed terminal): the first one asks the running command to
//! stop what it started and return; a second one exits at once, killing first the process
//! group of a child xtask waits for in its own group (the tests, [`crate::proc::wait_group`]),
//! which the terminal's signals no longer reach.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// The process group of the child [`crate::proc::wait_group`] waits for; 0 when none.
static CHILD_GROUP: AtomicU32 = AtomicU32::new(0);

pub fn set_child_group(group: u32) {
    CHILD_GROUP.store(group, Ordering::SeqCst);
}

#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn install(rt: &tokio::runtime::Runtime) -> Result<Self> {
        let (mut int, mut term, mut hup) = rt
            .block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                ))
            })
            .context("installing signal handlers")?;
        let flag = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&flag);
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                if seen.swap(true, Ordering::SeqCst) {
                    let group = CHILD_GROUP.load(Ordering::SeqCst);
                    if group != 0 {
                        crate::proc::signal_group(group, "KILL");
                    }
                    eprintln!("xtask: second signal, exiting without stopping anything else");
                    std::process::exit(130);
                }
                eprintln!("xtask: stopping (Ctrl-C again to exit at once)");
            }
        });
        Ok(Self(flag))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(!self.is_set(), "interrupted");
        Ok(())
    }

    /// Sleeps up to `duration`, returning early with an error when interrupted.
    pub fn sleep(&self, duration: Duration) -> Result<()> {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.check()?;
            std::thread::sleep(Duration::from_millis(50).min(duration));
        }
        self.check()
    }

    pub fn wait(&self) {
        while !self.is_set() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
