//! The tenant frame: how crmbench wraps every transaction it sends on a
//! workload's behalf, so that row-level security sees the tenant the way the
//! application sets it — `BEGIN`, optionally `SET LOCAL ROLE`,
//! `SELECT set_config(setting, tenant, true)`, the statements, then `COMMIT`
//! or `ROLLBACK`. It is the executable meaning of a workload file's
//! `[context]`, which is why it lives here and not in `pg` (which knows no
//! workload). The run driver prepares it once per connection and pipelines it
//! with the statements (no extra round trip on the hot path) or sends it as
//! one simple-protocol text; the pre-run check, `explain` and what-if costing
//! send it step by step; remedy measurement, which times single statements,
//! sets the tenant for the session instead. One place writes this SQL, so a
//! measured transaction, a captured plan and a what-if cost are all taken
//! under the same frame.

use tokio_postgres::{Client, Statement};

use super::Workload;
use crate::error::{Error, Result};
use crate::pg::{quote_ident, quote_literal};

/// Opens the frame.
pub const BEGIN: &str = "BEGIN";
/// Ends a frame whose work is kept.
pub const COMMIT: &str = "COMMIT";
/// Ends a frame whose work is discarded (or that failed).
pub const ROLLBACK: &str = "ROLLBACK";
/// Sets the tenant for the rest of the transaction: `$1` the setting, `$2`
/// the tenant id (`is_local = true`, so it ends with the frame).
pub const SET_TENANT: &str = "SELECT set_config($1, $2, true)";
/// Sets the tenant for the whole session (`is_local = false`).
pub const SET_TENANT_SESSION: &str = "SELECT set_config($1, $2, false)";

/// How a workload's transactions are framed: the setting that carries the
/// tenant, if any, and a role to take inside the frame, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFrame {
    setting: Option<String>,
    role: Option<String>,
    /// `SET LOCAL setting = 'tenant'` instead of set_config (Citus).
    set_local: bool,
}

/// The frame's statements prepared on one connection (the run driver's,
/// once per connection).
pub struct PreparedFrame {
    /// `BEGIN`.
    pub begin: Statement,
    /// [`SET_TENANT`], when the workload carries a tenant set by set_config
    /// (a `SET LOCAL` frame takes the tenant as a literal: see
    /// [`TenantFrame::set_local_sql`]).
    pub set_tenant: Option<Statement>,
    /// `COMMIT`.
    pub commit: Statement,
    /// `ROLLBACK`.
    pub rollback: Statement,
}

impl TenantFrame {
    /// A frame that sets the tenant through `setting` (none: no tenant).
    pub fn new(setting: Option<&str>) -> TenantFrame {
        TenantFrame {
            setting: setting.map(str::to_string),
            role: None,
            set_local: false,
        }
    }

    /// Set the tenant with `SET LOCAL` instead of set_config.
    pub fn with_set_local(mut self, set_local: bool) -> TenantFrame {
        self.set_local = set_local;
        self
    }

    /// `SET LOCAL setting = 'tenant'` when this frame sets the tenant that
    /// way (each part of a dotted setting name quoted on its own).
    pub fn set_local_sql(&self, tenant: &str) -> Option<String> {
        let setting = self.setting.as_deref().filter(|_| self.set_local)?;
        Some(format!(
            "SET LOCAL {} = {}",
            setting
                .split('.')
                .map(quote_ident)
                .collect::<Vec<_>>()
                .join("."),
            quote_literal(tenant)
        ))
    }

    /// The statement that sets the tenant in the frame, as text with literals.
    fn set_text(&self, tenant: &str) -> Option<String> {
        if let Some(sql) = self.set_local_sql(tenant) {
            return Some(sql);
        }
        let setting = self.setting.as_deref()?;
        Some(format!(
            "SELECT set_config({}, {}, true)",
            quote_literal(setting),
            quote_literal(tenant)
        ))
    }

    /// The frame of `workload`'s `[context]`. The role is not part of it:
    /// the workload's connections are opened as that role (see
    /// [`super::context::spec_for`]).
    pub fn for_workload(workload: &Workload) -> TenantFrame {
        TenantFrame::new(workload.context.tenant_setting.as_deref())
            .with_set_local(workload.context.tenant_frame == super::FrameForm::SetLocal)
    }

    /// Also take `role` inside the frame (`SET LOCAL ROLE`), for a session
    /// that connects as another user and must plan as the workload's role
    /// (what-if costing). Applies to [`TenantFrame::begin`] only.
    pub fn with_role(mut self, role: Option<&str>) -> TenantFrame {
        self.role = role.map(str::to_string);
        self
    }

    /// The setting that carries the tenant, if any.
    pub fn setting(&self) -> Option<&str> {
        self.setting.as_deref()
    }

    /// The setting as a `&String` (a ToSql parameter without a copy).
    pub fn setting_ref(&self) -> Option<&String> {
        self.setting.as_ref()
    }

    /// Whether a transaction of `statements` statements is framed at all: a
    /// workload without a tenant sends a single statement alone
    /// (autocommit), as such an application does.
    pub fn frames(&self, statements: usize) -> bool {
        self.setting.is_some() || statements > 1
    }

    /// Prepare the frame's statements on `client`.
    pub async fn prepare(&self, client: &Client) -> Result<PreparedFrame> {
        let prep = |sql: &'static str| async move {
            client
                .prepare(sql)
                .await
                .map_err(|e| Error::from_pg(format!("preparing `{sql}`"), e))
        };
        let begin = prep(BEGIN).await?;
        let commit = prep(COMMIT).await?;
        let rollback = prep(ROLLBACK).await?;
        let set_tenant = match &self.setting {
            Some(_) if !self.set_local => Some(prep(SET_TENANT).await?),
            _ => None,
        };
        Ok(PreparedFrame {
            begin,
            set_tenant,
            commit,
            rollback,
        })
    }

    /// The frame's opening as simple-protocol text with literals, each
    /// command ended by `;`: `BEGIN;SELECT set_config('…', '…', true);`.
    pub fn open_text(&self, tenant: &str) -> String {
        let mut text = format!("{BEGIN};");
        if let Some(role) = &self.role {
            text.push_str(&format!("SET LOCAL ROLE {};", quote_ident(role)));
        }
        if let Some(set) = self.set_text(tenant) {
            text.push_str(&set);
            text.push(';');
        }
        text
    }

    /// The frame's closing as simple-protocol text.
    pub fn commit_text(&self) -> String {
        format!("{COMMIT};")
    }

    /// Open the frame step by step: `BEGIN` (with `SET LOCAL ROLE` in the
    /// same message), then the tenant. Errors name the step and `context`
    /// (what the frame is for; may be empty).
    pub async fn begin(&self, client: &Client, tenant: &str, context: &str) -> Result<()> {
        let begin = match &self.role {
            Some(role) => format!("{BEGIN}; SET LOCAL ROLE {}", quote_ident(role)),
            None => BEGIN.to_string(),
        };
        client
            .batch_execute(&begin)
            .await
            .map_err(|e| Error::from_pg(step(&begin, context), e))?;
        if let Some(sql) = self.set_local_sql(tenant) {
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::from_pg(step(&sql, context), e))?;
        } else if let Some(setting) = &self.setting {
            client
                .query(SET_TENANT, &[setting, &tenant])
                .await
                .map_err(|e| Error::from_pg(step(&format!("set_config({setting})"), context), e))?;
        }
        Ok(())
    }

    /// End the frame, discarding its work (also after a failed statement).
    pub async fn rollback(&self, client: &Client, context: &str) -> Result<()> {
        client
            .batch_execute(ROLLBACK)
            .await
            .map_err(|e| Error::from_pg(step(ROLLBACK, context), e))
    }

    /// Set the tenant for the whole session, without a frame: for
    /// measurements that time single statements and must not time a frame
    /// around each one.
    pub async fn set_for_session(&self, client: &Client, tenant: &str) -> Result<()> {
        if let Some(setting) = &self.setting {
            client
                .query(SET_TENANT_SESSION, &[setting, &tenant])
                .await
                .map_err(|e| Error::from_pg("setting the tenant", e))?;
        }
        Ok(())
    }
}

fn step(what: &str, context: &str) -> String {
    if context.is_empty() {
        what.to_string()
    } else {
        format!("{what} for {context}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_text_frames_as_the_driver_always_sent_it() {
        let frame = TenantFrame::new(Some("app.current_tenant_id"));
        assert_eq!(
            frame.open_text("t'1"),
            "BEGIN;SELECT set_config('app.current_tenant_id', 't''1', true);"
        );
        assert_eq!(frame.commit_text(), "COMMIT;");
        assert!(frame.frames(1));
        let bare = TenantFrame::default();
        assert_eq!(bare.open_text("x"), "BEGIN;");
        assert!(!bare.frames(1) && bare.frames(2));
        let as_role = TenantFrame::new(None).with_role(Some("app"));
        assert_eq!(as_role.open_text(""), "BEGIN;SET LOCAL ROLE \"app\";");
    }

    #[test]
    fn set_local_frames_take_the_tenant_as_a_literal() {
        let frame = TenantFrame::new(Some("app.current_tenant_id")).with_set_local(true);
        assert_eq!(
            frame.open_text("t'1"),
            "BEGIN;SET LOCAL \"app\".\"current_tenant_id\" = 't''1';"
        );
        assert!(TenantFrame::new(Some("a.b")).set_local_sql("x").is_none());
        assert!(
            TenantFrame::new(None)
                .with_set_local(true)
                .set_local_sql("x")
                .is_none()
        );
    }
}
