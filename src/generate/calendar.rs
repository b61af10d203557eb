//! Dates with growth and seasonality, anchored to a fixed epoch stored with
//! the dataset (never `now()`), so a seed gives the same dates on any day.
//!
//! Business grows about threefold over the five years before the epoch;
//! December (Christmas), early February (Valentine's), late November (Black
//! Friday) and May–September (wedding season) are busier.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

/// The dataset's "today": the last day data exists for.
pub const EPOCH: (i32, u32, u32) = (2025, 12, 31);
/// Years of history before the epoch.
pub const YEARS: i64 = 5;

/// The epoch as a date.
pub fn epoch_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(EPOCH.0, EPOCH.1, EPOCH.2).unwrap_or_default()
}

/// Inverse-CDF table over the days of the history window.
#[derive(Debug, Clone)]
pub struct Calendar {
    first: NaiveDate,
    cdf: Vec<f64>,
}

fn season(date: NaiveDate) -> f64 {
    let base = match date.month() {
        1 => 0.75,
        2 => 1.0,
        3 => 0.8,
        4 => 0.9,
        5 => 1.15,
        6 => 1.3,
        7 => 1.2,
        8 => 1.15,
        9 => 1.1,
        10 => 0.9,
        11 => 1.1,
        _ => 1.9,
    };
    let bump = match (date.month(), date.day()) {
        (2, 1..=14) => 0.9,   // Valentine's
        (11, 24..=30) => 0.8, // Black Friday week
        (12, 10..=24) => 1.0, // Christmas rush
        _ => 0.0,
    };
    base + bump
}

impl Calendar {
    /// The window of [`YEARS`] years ending at [`EPOCH`].
    pub fn new() -> Calendar {
        let last = epoch_date();
        let first = last - Duration::days(365 * YEARS + 1);
        let days = (last - first).num_days() + 1;
        let mut cdf = Vec::with_capacity(days as usize);
        let mut acc = 0.0;
        for d in 0..days {
            let date = first + Duration::days(d);
            let growth = 1.0 + 2.0 * d as f64 / days as f64;
            acc += growth * season(date);
            cdf.push(acc);
        }
        for v in &mut cdf {
            *v /= acc;
        }
        Calendar { first, cdf }
    }

    /// The day at quantile `u` in [0, 1).
    pub fn day(&self, u: f64) -> NaiveDate {
        let i = self
            .cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1);
        self.first + Duration::days(i as i64)
    }

    /// A timestamp at quantile `u` of the window, with a time of day from
    /// `tod` in [0, 1) (shop hours mostly; `online` spreads over the day).
    pub fn timestamp(&self, u: f64, tod: f64, online: bool) -> DateTime<Utc> {
        let day = self.day(u);
        let secs = if online {
            (tod * 86_400.0) as i64
        } else {
            // 09:30–18:30 local, shown in UTC.
            34_200 + (tod * 32_400.0) as i64
        };
        Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
            + Duration::seconds(secs)
    }

    /// First day of the window.
    pub fn first_day(&self) -> NaiveDate {
        self.first
    }
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::new()
    }
}

/// Quantile of row `i` of `n` with jitter `r` in [0, 1): stratified, so rows
/// of a tenant come out in time order (ids grow with time, as in an app).
pub fn stratified(i: u64, n: u64, r: f64) -> f64 {
    ((i as f64 + r) / n.max(1) as f64).min(0.999_999_999)
}

/// The epoch's last instant, as a timestamp.
pub fn epoch_end() -> DateTime<Utc> {
    Utc.from_utc_datetime(&epoch_date().and_hms_opt(23, 59, 59).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn december_is_busier_than_march_and_history_grows() {
        let cal = Calendar::new();
        let mut by_month = [0u32; 13];
        let mut by_year = std::collections::BTreeMap::new();
        for i in 0..100_000u64 {
            let d = cal.day(stratified(i, 100_000, 0.5));
            by_month[d.month() as usize] += 1;
            *by_year.entry(d.year()).or_insert(0u32) += 1;
        }
        assert!(
            by_month[12] as f64 > 2.0 * by_month[3] as f64,
            "{by_month:?}"
        );
        assert!(by_month[2] > by_month[3]);
        assert!(
            by_year[&2025] as f64 > 2.0 * by_year[&2021] as f64,
            "{by_year:?}"
        );
    }

    #[test]
    fn days_stay_in_the_window() {
        let cal = Calendar::new();
        assert_eq!(cal.day(0.0), cal.first_day());
        assert_eq!(cal.day(0.999_999_999), epoch_date());
        assert!(cal.timestamp(0.5, 0.99, false) < epoch_end());
    }
}
