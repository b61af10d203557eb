//! The measurement window: start the driver, let it warm up unrecorded, then
//! open the window (a snapshot of the server's counters, the wall-clock
//! start) and feed every interval to the collector with a progress line,
//! until the duration is over, a stop signal ([`crate::signals`]: Ctrl-C,
//! SIGTERM, SIGHUP), or an error stops the clients; then
//! stop the driver, count what finished after the last tick, and take the
//! server's counters again (when they cannot be had, or the server reset
//! them, the statistics are marked missing with the reason). A run that
//! fails before its first transaction is an error; one that fails later is
//! kept, marked partial.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

use super::RunOptions;
use super::collect::{Collector, progress_line};
use super::driver::{self, DriverConfig, Shared};
use super::pgstat::{self, StatsConn};
use super::sequential::Looker;
use crate::error::{Error, Result};
use crate::results::{IndexUsage, StatementStats};
use crate::workload::Workload;
use chrono::{DateTime, Utc};

/// What the window measured.
pub struct Measured {
    /// Totals, series and pairs.
    pub collected: Collector,
    /// Why the run ended early, if it did.
    pub partial: Option<String>,
    /// When the window opened (wall clock).
    pub started_at: DateTime<Utc>,
    /// Length of the window, seconds (never zero).
    pub seconds: f64,
    /// Index use over the window.
    pub index_usage: Vec<IndexUsage>,
    /// Statement statistics over the window.
    pub statements: Vec<StatementStats>,
    /// Why the two are empty, when the server's counters could not be read.
    pub stats_missing: Option<String>,
    /// Failed reconnection attempts by code.
    pub reconnect_errors: BTreeMap<String, u64>,
    /// The looks of a sequential run.
    pub looker: Option<Looker>,
    /// What the read replicas served, and how stale.
    pub stale: super::replicas::StaleCounters,
    /// `--trace-params`: each client's first transactions.
    pub traces: BTreeMap<usize, Vec<String>>,
}

/// Run the driver with `config` and measure, as `opts` says; `stats` reads
/// the server's counters.
pub async fn measure(
    stats: &mut StatsConn,
    config: DriverConfig,
    opts: &RunOptions,
) -> Result<Measured> {
    let workload = config.workload.clone();
    let paired = config.candidate.is_some();
    let classed = config.pools.tenants.has_classes();
    let mut window = Window::new();
    // Without warm-up the window opens before the first transaction: nothing
    // the clients do (a killed backend in the first second included) is lost.
    if opts.warmup.is_zero() {
        window.open(stats).await;
    }
    let shared = Shared::new(&workload, config.threads, paired);
    let mut driver = Running {
        handles: driver::start(config, shared.clone())?,
        shared,
    };
    let mut collected = Collector::new(&workload, paired, opts.seed);
    if opts.worker.is_some() {
        collected.keep_interval_histograms();
    }
    let mut looker = match (&opts.sequential, paired) {
        (Some(seq), true) => Some(Looker::new(
            &workload,
            seq,
            (opts.duration, classed),
            opts.seed,
        )?),
        _ => None,
    };
    let mut ticking = Ticking {
        window: &mut window,
        collected: &mut collected,
        looker: looker.as_mut(),
    };
    let mut partial = match tick_until_done(stats, &mut ticking, &driver, &workload, opts).await {
        Ok(partial) => partial,
        Err(fatal) => {
            let _ = driver.stop().await;
            return Err(Error::State {
                message: format!("the run could not start: {fatal}"),
                fix: "check the server and the workload (`crmbench run --check`)".into(),
            });
        }
    };
    if let Err(e) = driver.stop().await {
        partial.get_or_insert(e.to_string());
    }
    // What finished after the last tick still counts.
    if let Some(since) = window.since {
        let slot = driver.shared.swap(&workload, paired);
        collected.add_tail(since.elapsed().as_secs_f64(), &slot);
    }
    // The window ends when the clients were told to stop, not after they
    // drained and the last look's bootstrap ran (which made a 30 s
    // sequential run report 34–37 s).
    let seconds = window
        .since
        .map_or(0.0, |s| {
            window
                .ended
                .map_or_else(|| s.elapsed(), |e| e.saturating_duration_since(s))
                .as_secs_f64()
        })
        .max(1e-9);
    let (index_usage, statements, stats_missing) = match window.close(stats).await {
        Ok((index_usage, statements)) => (index_usage, statements, None),
        Err(reason) => (Vec::new(), Vec::new(), Some(reason)),
    };
    let reconnect_errors = driver
        .shared
        .reconnect_errors
        .lock()
        .map(|counts| counts.clone())
        .unwrap_or_default();
    Ok(Measured {
        collected,
        partial,
        started_at: window.started_at,
        seconds,
        index_usage,
        statements,
        stats_missing,
        reconnect_errors,
        looker,
        stale: driver.shared.stale.snapshot(),
        traces: driver
            .shared
            .traces
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default(),
    })
}

/// What each tick updates.
struct Ticking<'a> {
    window: &'a mut Window,
    collected: &'a mut Collector,
    looker: Option<&'a mut Looker>,
}

impl Ticking<'_> {
    /// A sequential run's look, when one is due `t` seconds into the window
    /// (`end`: the last); `true` when the run is decided or over. After the
    /// last look the pairs are frozen, so the file holds what it decided on.
    fn look(&mut self, t: f64, end: bool, quiet: bool, shared: &Shared) -> bool {
        if end {
            // Over: stop the clients before the last look's bootstrap runs,
            // so the window is as long as asked.
            self.stop_clients(shared);
        }
        let Some(looker) = self.looker.as_deref_mut() else {
            return end;
        };
        if !looker.due(t, end) {
            return false;
        }
        let decided = looker.look(t, end, &self.collected.pairs);
        if !quiet {
            crate::console::err_line(looker.progress_line());
        }
        if decided || end {
            self.stop_clients(shared);
            self.collected.freeze_pairs();
            return true;
        }
        false
    }

    /// The window ends now (the first call counts).
    fn stop_clients(&mut self, shared: &Shared) {
        shared.stop_now();
        self.window.ended.get_or_insert_with(Instant::now);
    }
}

/// The window's state: open (`since`) or still warming up.
struct Window {
    since: Option<Instant>,
    /// When the clients were told to stop at the window's end.
    ended: Option<Instant>,
    started_at: DateTime<Utc>,
    /// The counters when it opened, or why they could not be read.
    before: std::result::Result<pgstat::Snapshot, String>,
}

impl Window {
    fn new() -> Window {
        Window {
            since: None,
            ended: None,
            started_at: Utc::now(),
            before: Ok(pgstat::Snapshot::default()),
        }
    }

    /// From now on everything counts.
    async fn open(&mut self, stats: &mut StatsConn) {
        self.before = stats
            .snapshot()
            .await
            .map_err(|e| format!("reading them as the window opened: {e}"));
        self.started_at = Utc::now();
        self.since = Some(Instant::now());
    }

    /// The server's index and statement counters over the window, or why
    /// they are missing.
    async fn close(
        &self,
        stats: &mut StatsConn,
    ) -> std::result::Result<(Vec<IndexUsage>, Vec<StatementStats>), String> {
        if self.since.is_none() {
            return Err("the run ended before the window opened".into());
        }
        let before = self.before.as_ref().map_err(Clone::clone)?;
        let after = stats
            .snapshot()
            .await
            .map_err(|e| format!("reading them as the window closed: {e}"))?;
        if pgstat::went_back(before, &after) {
            return Err(
                "the server reset its counters during the window (a crash restart or \
                        pg_stat_reset)"
                    .into(),
            );
        }
        Ok(pgstat::delta(before, &after))
    }
}

/// Tick every interval until the window is over or the run must stop
/// (`Ok`: why it stopped early, if it did); `Err` with the cause when the
/// clients failed before anything ran.
async fn tick_until_done(
    stats: &mut StatsConn,
    ticking: &mut Ticking<'_>,
    driver: &Running,
    workload: &Workload,
    opts: &RunOptions,
) -> std::result::Result<Option<String>, String> {
    let shared = &driver.shared;
    let paired = ticking.collected.paired();
    let started = Instant::now();
    let mut partial: Option<String> = None;
    let mut tick = tokio::time::interval(opts.interval);
    tick.tick().await;
    let mut last_done = 0u64;
    // SIGINT, SIGTERM or SIGHUP (one that came before the window too).
    let stop = crate::signals::stop_requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            signal = &mut stop => {
                partial = Some(format!("interrupted ({signal})"));
            }
        }
        if let Some(fatal) = shared.fatal.lock().ok().and_then(|f| f.clone()) {
            let panicked = shared.panicked.load(Ordering::Relaxed);
            if ticking.window.since.is_none()
                && shared.done.load(Ordering::Relaxed) == 0
                && !panicked
            {
                return Err(fatal);
            }
            partial.get_or_insert(format!("stopped by an error: {fatal}"));
        }
        let slot = shared.swap(workload, paired);
        let done = shared.done.load(Ordering::Relaxed);
        match ticking.window.since {
            None if started.elapsed() >= opts.warmup => {
                ticking.window.open(stats).await;
                // Warm-up over: what finished during it is dropped.
                let _ = shared.swap(workload, paired);
                last_done = shared.done.load(Ordering::Relaxed);
                if !opts.quiet {
                    crate::console::err_line(format!(
                        "run: warm-up done, measuring for {:?}",
                        opts.duration
                    ));
                }
            }
            None => {}
            Some(since) => {
                let t = since.elapsed().as_secs_f64();
                ticking.collected.add_interval(t, &slot);
                if !opts.quiet {
                    let interval = opts.interval.as_secs_f64();
                    crate::console::err_line(progress_line(t, &slot, done - last_done, interval));
                }
                last_done = done;
                if ticking.look(t, since.elapsed() >= opts.duration, opts.quiet, shared) {
                    break;
                }
            }
        }
        if partial.is_some() {
            break;
        }
    }
    Ok(partial)
}

/// The driver's threads while they run.
struct Running {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stop every client and wait for the threads (off the runtime).
    async fn stop(&mut self) -> Result<()> {
        self.shared.stop_now();
        let handles = std::mem::take(&mut self.handles);
        tokio::task::spawn_blocking(move || driver::join(handles))
            .await
            .map_err(|e| Error::Internal {
                message: e.to_string(),
                fix: String::new(),
            })?
    }
}
