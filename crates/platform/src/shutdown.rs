//! A cloneable shutdown signal: SIGTERM / Ctrl-C in services, an explicit trigger in tests.

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

#[derive(Clone, Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has been triggered (immediately if it already was).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|v| *v).await;
    }

    /// A shutdown that fires when this one does, or when its own trigger is pulled: how a part
    /// that fails (the gRPC server refusing its TLS key) stops the parts started beside it.
    pub fn linked(&self) -> (ShutdownTrigger, Shutdown) {
        let (trigger, linked) = channel();
        let (mut outer, tx) = (self.clone(), trigger.0.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = outer.wait() => {
                    let _ = tx.send(true);
                }
                // Nobody is listening any more.
                _ = tx.closed() => {}
            }
        });
        (trigger, linked)
    }
}

/// The exit status of a process stopped by Ctrl-C during its stop (128 + SIGINT, as shells
/// report an interrupted program).
pub const FORCED_EXIT_CODE: i32 = 130;

/// Triggers on SIGTERM or Ctrl-C (SIGINT). Ctrl-C (SIGINT) while the stop is still draining
/// exits the process at once with [`FORCED_EXIT_CODE`]: an operator who cannot wait for a
/// long drain is not left with SIGKILL alone. Nothing committed is lost (the outbox keeps what
/// the relay had not published, and the next start publishes it); calls in flight fail and
/// are retried by their callers with their request ids. Another SIGTERM changes nothing:
/// supervisors send several (a stop command and the service manager's own signal, a hook and
/// the orchestrator's), and the drain they asked for runs to its end.
pub fn on_signals() -> (ShutdownTrigger, Shutdown) {
    let (trigger, shutdown) = channel();
    let tx = trigger.0.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
            // Received for as long as the process lives (tokio keeps its handler installed), so
            // a repeat is told what ends the stop now.
            tokio::spawn(async move {
                while term.recv().await.is_some() {
                    tracing::info!("SIGTERM again: the stop already runs (Ctrl-C ends it now)");
                }
            });
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown requested");
            let _ = tx.send(true);
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::warn!(
            code = FORCED_EXIT_CODE,
            "Ctrl-C during the stop: exiting now, without the rest of the drain"
        );
        std::process::exit(FORCED_EXIT_CODE);
    });
    (trigger, shutdown)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::channel;

    #[tokio::test]
    async fn a_linked_shutdown_fires_with_its_origin_or_on_its_own() {
        let (outer_trigger, outer) = channel();
        let (_own, mut linked) = outer.linked();
        assert!(!linked.is_triggered());
        outer_trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), linked.wait())
            .await
            .expect("fires when its origin does");

        let (_outer_trigger, outer) = channel();
        let (own, mut linked) = outer.linked();
        own.trigger();
        tokio::time::timeout(Duration::from_secs(5), linked.wait())
            .await
            .expect("fires on its own trigger");
        assert!(!outer.is_triggered(), "without stopping its origin");
    }
}
