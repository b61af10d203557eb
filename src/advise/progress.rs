//! Progress of `advise`'s long steps (what-if costing, paired verification,
//! remedy timings): which candidate or index is at work, how many remain,
//! the time elapsed and an estimate of the time left. A bar on a terminal
//! (indicatif), a plain line every [`LINE_EVERY`] otherwise (CI logs, the
//! demo), so a step of minutes is never silent.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written when standard error is not a
/// terminal.
pub const LINE_EVERY: Duration = Duration::from_secs(10);

/// One step's progress.
#[derive(Debug)]
pub struct Progress {
    what: String,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    start: Instant,
    last_line: Instant,
}

impl Progress {
    /// `total` units of `what` (e.g. "advise: what-if costing").
    pub fn new(what: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix} {elapsed_precise} [{bar:25}] {pos}/{len}  eta {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(what.to_string());
            bar
        });
        let long_ago = Instant::now()
            .checked_sub(LINE_EVERY)
            .unwrap_or_else(Instant::now);
        Progress {
            what: what.to_string(),
            bar,
            total,
            done: 0,
            start: Instant::now(),
            last_line: long_ago,
        }
    }

    /// A larger total (a search that finds more work than it expected).
    pub fn set_total(&mut self, total: u64) {
        self.total = total.max(self.done);
        if let Some(bar) = &self.bar {
            bar.set_length(self.total);
        }
    }

    /// `label` is being worked on now (the unit before it is done).
    pub fn at(&mut self, done: u64, label: &str) {
        self.done = done.min(self.total);
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            bar.set_message(label.to_string());
        } else if self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            crate::console::err_line(self.line(label));
        }
    }

    /// The plain line: `what: 3/8 (label), 42 s elapsed, about 70 s left`.
    pub fn line(&self, label: &str) -> String {
        let elapsed = self.start.elapsed().as_secs_f64();
        let left = eta(elapsed, self.done, self.total)
            .map(|s| format!(", about {} left", seconds(s)))
            .unwrap_or_default();
        format!(
            "{}: {}/{} ({label}), {} elapsed{left}",
            self.what,
            self.done,
            self.total,
            seconds(elapsed)
        )
    }

    /// Remove the bar (the step's own summary line follows).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Seconds left at the mean pace so far; `None` before the first unit.
pub fn eta(elapsed: f64, done: u64, total: u64) -> Option<f64> {
    (done > 0).then(|| elapsed / done as f64 * total.saturating_sub(done) as f64)
}

fn seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_follows_the_pace_so_far() {
        assert_eq!(eta(30.0, 0, 8), None);
        assert_eq!(eta(30.0, 3, 8), Some(50.0));
        assert_eq!(eta(30.0, 8, 8), Some(0.0));
        let p = Progress::new("advise: verifying", 4);
        let line = p.line("orders_tenant_id_customer_id_idx");
        assert!(
            line.starts_with("advise: verifying: 0/4 (orders_tenant_id_customer_id_idx), "),
            "{line}"
        );
        assert!(!line.contains("left"), "{line}");
    }
}
