//! Progress of a long load: a bar with rows/s and MB/s on a terminal, a plain
//! line every few seconds otherwise (CI logs), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    total: u64,
    bytes_per_row: f64,
    start: Instant,
    last_line: Instant,
}

impl Progress {
    /// `total` rows expected, about `total_bytes` landing; `quiet` shows nothing.
    pub fn new(total: u64, total_bytes: f64, quiet: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            plain: !quiet && !terminal,
            total: total.max(1),
            bytes_per_row: total_bytes / total.max(1) as f64,
            start: Instant::now(),
            last_line: Instant::now(),
        }
    }

    /// Report `rows` written so far.
    pub fn update(&mut self, rows: u64) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let mbps = rows as f64 * self.bytes_per_row / secs / 1e6;
        if let Some(bar) = &self.bar {
            bar.set_position(rows);
            bar.set_message(format!("≈{mbps:.0} MB/s"));
        } else if self.plain && self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            crate::console::err_line(format!(
                "generate: {rows}/{} rows ({:.0}%), {:.0} rows/s, ≈{mbps:.0} MB/s",
                self.total,
                100.0 * rows as f64 / self.total as f64,
                rows as f64 / secs
            ));
        }
    }

    /// Say what phase is running.
    pub fn phase(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.println(format!("generate: {what}"));
        } else if self.plain {
            crate::console::err_line(format!("generate: {what}"));
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
