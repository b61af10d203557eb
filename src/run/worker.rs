//! One slice of a run spread over several machines (`run --worker K/N
//! --start-at TIME`). Worker K of N runs the clients whose id is K modulo N
//! (ids 0..clients): disjoint slices that together are the whole run, each
//! client with the very stream a single-machine run gives it (a client's
//! stream depends only on the seed and its id). All workers open their
//! windows at the same wall-clock instant, so their series align by wall
//! clock; `crmbench merge` adds the folders up exactly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Worker K of N (K counts from 0, as a Kubernetes completion index does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSlice {
    /// K: this worker, 0 ≤ K < N.
    pub index: usize,
    /// N: the workers of the run.
    pub count: usize,
}

impl WorkerSlice {
    /// Parse `K/N` (0 ≤ K < N).
    pub fn parse(text: &str) -> Result<WorkerSlice> {
        let usage = |why: &str| Error::Usage {
            message: format!("--worker {text}: {why}"),
            fix: "give K/N with 0 <= K < N, e.g. --worker 0/4 … --worker 3/4 \
                  (K counts from 0, like a Kubernetes JOB_COMPLETION_INDEX)"
                .into(),
        };
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| usage("not of the form K/N"))?;
        let index: usize = k.trim().parse().map_err(|_| usage("K is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| usage("N is not a number"))?;
        if count == 0 || index >= count {
            return Err(usage("K must be below N"));
        }
        Ok(WorkerSlice { index, count })
    }

    /// The client ids of this slice among `clients` (all workers' clients).
    pub fn client_ids(&self, clients: usize) -> Vec<usize> {
        (self.index..clients).step_by(self.count).collect()
    }
}

/// The client ids a run with `clients` clients drives itself: all of them,
/// or a worker's slice.
pub fn local_clients(clients: usize, worker: Option<WorkerSlice>) -> Vec<usize> {
    match worker {
        Some(slice) => slice.client_ids(clients),
        None => (0..clients).collect(),
    }
}

/// What results.json records of a worker's slice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// K.
    pub index: usize,
    /// N.
    pub count: usize,
    /// Client ids this worker ran.
    pub clients: Vec<usize>,
    /// The agreed start (RFC 3339), when one was given.
    pub start_at: Option<String>,
}

/// Refuse a slice no worker can run: more workers than clients leaves one
/// with nothing to do, which is a mistake in the job, not a run.
pub fn check(worker: Option<WorkerSlice>, clients: usize) -> Result<()> {
    let Some(slice) = worker else {
        return Ok(());
    };
    if slice.count > clients {
        return Err(Error::Usage {
            message: format!(
                "--worker {}/{}: {} workers share --clients {clients}, so some would run no client",
                slice.index, slice.count, slice.count
            ),
            fix: format!(
                "--clients is the total over all workers: give at least {}",
                slice.count
            ),
        });
    }
    Ok(())
}

/// Parse `--start-at`: RFC 3339 (`2026-11-30T16:00:00Z`) or Unix seconds.
pub fn parse_start(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = text
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
    {
        return Ok(t);
    }
    Err(Error::Usage {
        message: format!("--start-at {text}: not a time"),
        fix: "give an RFC 3339 time such as 2026-11-30T16:00:00Z, or Unix seconds \
              (e.g. `date -d '+1 min' +%s`)"
            .into(),
    })
}

/// How long to wait from `now` until `start`; a start already passed by more
/// than `late_ok` is refused (that worker's window would not line up with
/// the others').
pub fn wait_for(
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    late_ok: std::time::Duration,
) -> Result<std::time::Duration> {
    match (start - now).to_std() {
        Ok(wait) => Ok(wait),
        Err(_) => {
            let late = (now - start).to_std().unwrap_or_default();
            if late <= late_ok {
                return Ok(std::time::Duration::ZERO);
            }
            Err(Error::Usage {
                message: format!(
                    "--start-at {}: that was {:.1} s ago; this worker's window would not line \
                     up with the others'",
                    start.to_rfc3339(),
                    late.as_secs_f64()
                ),
                fix: "give every worker a start time far enough ahead for all of them to be \
                      running (e.g. a minute), and check the machines' clocks (NTP)"
                    .into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_disjoint_and_cover_every_client() {
        for n in 1..6 {
            for clients in n..20 {
                let mut all: Vec<usize> = (0..n)
                    .flat_map(|k| WorkerSlice { index: k, count: n }.client_ids(clients))
                    .collect();
                all.sort_unstable();
                assert_eq!(
                    all,
                    (0..clients).collect::<Vec<_>>(),
                    "n={n} clients={clients}"
                );
            }
        }
        assert_eq!(local_clients(3, None), vec![0, 1, 2]);
    }

    #[test]
    fn worker_parsing() {
        assert_eq!(
            WorkerSlice::parse("2/4").unwrap(),
            WorkerSlice { index: 2, count: 4 }
        );
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(WorkerSlice::parse(bad).is_err(), "{bad}");
        }
        assert!(check(Some(WorkerSlice { index: 0, count: 5 }), 4).is_err());
        assert!(check(Some(WorkerSlice { index: 0, count: 4 }), 4).is_ok());
    }

    #[test]
    fn start_times() {
        let t = parse_start("2026-11-30T16:00:00Z").unwrap();
        assert_eq!(parse_start(&t.timestamp().to_string()).unwrap(), t);
        assert!(parse_start("tomorrow").is_err());
        let second = std::time::Duration::from_secs(1);
        let later = t + chrono::Duration::seconds(5);
        assert_eq!(wait_for(later, t, second).unwrap().as_secs(), 5);
        let slightly = t + chrono::Duration::milliseconds(500);
        assert!(wait_for(t, slightly, second).unwrap().is_zero());
        let err = wait_for(t, later, second).unwrap_err().to_string();
        assert!(err.contains("5.0 s ago"), "{err}");
    }
}
