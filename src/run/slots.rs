//! Connection slots, checked before the clients connect: a server admits
//! `max_connections` client sessions, of which `superuser_reserved_connections`
//! (and, from PostgreSQL 16, `reserved_connections`) only privileged roles
//! may take. A run that needs more than are free would otherwise end after
//! its warm-up on the raw 53300 "too many clients"; it is refused up front
//! with the numbers and the fix. Best effort: when the figures cannot be
//! read, or a pooler sits between crmbench and the server (its sessions are
//! not the server's), the run goes ahead unchecked.

use tokio_postgres::Client;

use super::driver::DriverConfig;
use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec, Target};

/// One server's slots as seen from one session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Slots {
    /// Who the server is (postmaster start time and port): two targets on
    /// the same server share their slots.
    server: String,
    max: i64,
    /// Slots the clients' role may not take.
    reserved: i64,
    /// Client sessions open now (the reading session excluded).
    used: i64,
}

impl Slots {
    /// Read the slots of `client`'s server for the clients of `spec`; `None`
    /// when they cannot be read or a pooler is in between.
    async fn read(client: &Client, spec: &ConnSpec) -> Option<Slots> {
        let user = spec.config.get_user().unwrap_or_default();
        let row = client
            .query_one(
                "SELECT current_setting('max_connections')::int8, \
                        current_setting('superuser_reserved_connections')::int8 \
                          + coalesce(nullif(current_setting('reserved_connections', true), '')::int8, 0), \
                        (SELECT count(*) FROM pg_stat_activity \
                          WHERE coalesce(backend_type, 'client backend') = 'client backend' \
                            AND pid <> pg_backend_pid()), \
                        coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = $1), false), \
                        current_setting('port')::int4, \
                        pg_postmaster_start_time()::text || ' port ' || current_setting('port')",
                &[&user],
            )
            .await
            .map_err(|e| tracing::debug!("connection slots not checked: {e}"))
            .ok()?;
        let port: i32 = row.get(4);
        let ports = spec.config.get_ports();
        if !ports.is_empty() && !ports.iter().any(|p| i32::from(*p) == port) {
            tracing::debug!("connection slots not checked: a pooler or proxy is in between");
            return None;
        }
        let superuser: bool = row.get(3);
        Some(Slots {
            server: row.get(5),
            max: row.get(0),
            reserved: if superuser { 0 } else { row.get(1) },
            used: row.get(2),
        })
    }

    fn free(&self) -> i64 {
        self.max - self.reserved - self.used
    }

    /// Refuse `clients` × `sides` more sessions when they do not fit
    /// (`label` names the server; `kept` sessions of crmbench's own stay
    /// open through the run).
    fn check(&self, clients: usize, sides: usize, kept: i64, label: &str) -> Result<()> {
        let need = i64::try_from(clients.saturating_mul(sides)).unwrap_or(i64::MAX);
        let free = self.free() - kept;
        if need <= free {
            return Ok(());
        }
        let per_side = usize::try_from(free.max(0)).unwrap_or(0) / sides;
        let sides_text = if sides == 1 {
            String::new()
        } else {
            format!(" ({clients} clients × {sides} sides)")
        };
        Err(Error::Usage {
            message: format!(
                "the run needs {need} connections{sides_text} on {label}, but only {free} are \
                 free: max_connections {} − {} reserved for superusers − {} in use{}",
                self.max,
                self.reserved,
                self.used + kept,
                if kept > 0 {
                    " (crmbench's own statistics session among them)"
                } else {
                    ""
                }
            ),
            fix: format!(
                "run with --clients {} or fewer, end idle sessions, or raise max_connections \
                 (ALTER SYSTEM SET max_connections = {}; then restart the server)",
                per_side.max(1),
                self.max + need - free
            ),
        })
    }
}

/// Check that the server of `admin` (the statistics session, which stays
/// open) and, for a candidate elsewhere (`candidate`, a `--candidate-url`),
/// that server too, have a slot for every client `config` opens.
pub(super) async fn check(
    admin: &Client,
    label: &str,
    config: &DriverConfig,
    candidate: Option<&Target>,
) -> Result<()> {
    let Some(here) = Slots::read(admin, &config.baseline).await else {
        return Ok(());
    };
    let mut sides_here = 1;
    match (&config.candidate, candidate) {
        (None, _) => {}
        // A database on the same server (a clone, or the A/A self-check).
        (Some(_), None) => sides_here = 2,
        (Some(spec), Some(target)) => {
            let Ok(client) = pg::connect(&target.admin()).await else {
                // The clients' own connection attempt will say what is wrong.
                return here.check(config.clients, 1, 1, label);
            };
            match Slots::read(&client, spec).await {
                Some(there) if there.server == here.server => sides_here = 2,
                Some(there) => there.check(config.clients, 1, 0, &target.describe())?,
                None => {}
            }
        }
    }
    here.check(config.clients, sides_here, 1, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(max: i64, reserved: i64, used: i64) -> Slots {
        Slots {
            server: "s".into(),
            max,
            reserved,
            used,
        }
    }

    #[test]
    fn a_run_that_fits_passes_and_one_that_does_not_says_the_numbers() {
        assert!(slots(100, 3, 5).check(91, 1, 1, "db").is_ok());
        let e = slots(100, 3, 5).check(92, 1, 1, "db").unwrap_err();
        let text = format!("{e} {}", e.fix().unwrap());
        assert!(text.contains("needs 92 connections on db"), "{text}");
        assert!(text.contains("only 91 are free"), "{text}");
        assert!(text.contains("max_connections 100 − 3 reserved"), "{text}");
        assert!(text.contains("--clients 91 or fewer"), "{text}");
        assert!(text.contains("max_connections = 101"), "{text}");
    }

    #[test]
    fn paired_runs_on_one_server_need_both_sides() {
        let e = slots(100, 3, 0).check(50, 2, 1, "db").unwrap_err();
        let text = format!("{e} {}", e.fix().unwrap());
        assert!(
            text.contains("needs 100 connections (50 clients × 2 sides)"),
            "{text}"
        );
        assert!(text.contains("--clients 48 or fewer"), "{text}");
    }
}
