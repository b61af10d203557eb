//! Stop signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP all ask crmbench to stop
//! the same way. Once [`install`]ed (the CLI does it before any command that
//! measures, loads or clones), none of them kills the process: the first one
//! is remembered, and every long stage — the run's measurement window,
//! generate's load, advise's verification and remedy measurement, the demo
//! between steps — sees it through [`stopped`] or [`stop_requested`], keeps
//! what it gathered (marked partial with the signal's name), drops the
//! databases it made for itself and exits 2. A second signal exits at once
//! (`crmbench schema gc` drops what that leaves behind).
//!
//! The handlers live on a thread of their own with its own small runtime, so
//! they outlive any one runtime (the library's tests run many) and a signal
//! that arrives before a stage starts listening is not lost.

use std::fmt;
use std::io::Write as _;
use std::sync::OnceLock;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// A signal that asks crmbench to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C in a terminal.
    Interrupt,
    /// SIGTERM: `kill`, a service manager, a CI runner's timeout.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
}

impl fmt::Display for StopSignal {
    /// How results name it: `interrupted (Ctrl-C)`, `interrupted (SIGTERM)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopSignal::Interrupt => "Ctrl-C",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        })
    }
}

/// The first stop signal received, once the handlers are installed
/// (`Err`: why they could not be).
static STOP: OnceLock<std::result::Result<watch::Receiver<Option<StopSignal>>, String>> =
    OnceLock::new();

/// Handle SIGINT, SIGTERM and SIGHUP from now on (idempotent). Call it before
/// work that must not be killed half-way: from then on those signals only
/// set the stop flag.
pub fn install() -> Result<()> {
    match STOP.get_or_init(listen) {
        Ok(_) => Ok(()),
        Err(e) => Err(Error::Internal {
            message: format!("cannot handle stop signals: {e}"),
            fix: "report this as a bug".into(),
        }),
    }
}

/// The stop signal received so far, if any (`None` too when the handlers
/// were never installed).
pub fn stopped() -> Option<StopSignal> {
    match STOP.get() {
        Some(Ok(rx)) => *rx.borrow(),
        _ => None,
    }
}

/// Resolves when a stop signal has arrived (at once when one already has).
/// Installs the handlers if nobody did; if they cannot be installed it
/// never resolves (the signals then act as they would without crmbench).
pub async fn stop_requested() -> StopSignal {
    if let Err(e) = install() {
        tracing::warn!("{e}");
    }
    let Some(Ok(rx)) = STOP.get() else {
        return std::future::pending().await;
    };
    let mut rx = rx.clone();
    loop {
        if let Some(signal) = *rx.borrow_and_update() {
            return signal;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Start the handler thread; returns once the handlers are in place.
fn listen() -> std::result::Result<watch::Receiver<Option<StopSignal>>, String> {
    let (tx, rx) = watch::channel(None);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::result::Result<(), String>>();
    std::thread::Builder::new()
        .name("crmbench-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(handle(tx, ready_tx));
        })
        .map_err(|e| e.to_string())?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(rx),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the signal thread ended before it was ready".into()),
    }
}

/// Register the three handlers, say so on `ready`, then publish the first
/// signal on `tx`; a second one exits the process.
async fn handle(
    tx: watch::Sender<Option<StopSignal>>,
    ready: std::sync::mpsc::Sender<std::result::Result<(), String>>,
) {
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    let (mut int, mut term, mut hup) = match streams {
        (Ok(i), Ok(t), Ok(h)) => (i, t, h),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    loop {
        let received = tokio::select! {
            _ = int.recv() => StopSignal::Interrupt,
            _ = term.recv() => StopSignal::Terminate,
            _ = hup.recv() => StopSignal::Hangup,
        };
        // Written without panicking: after SIGHUP the terminal may be gone.
        let mut stderr = std::io::stderr();
        if tx.borrow().is_some() {
            // The user insists: no more cleaning up.
            let _ = writeln!(
                stderr,
                "crmbench: {received} again: exiting now; `crmbench schema gc` drops the \
                 databases this run leaves behind"
            );
            std::process::exit(2);
        }
        tx.send_replace(Some(received));
        let _ = writeln!(
            stderr,
            "crmbench: {received}: stopping (again to exit at once)"
        );
    }
}
