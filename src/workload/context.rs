//! The workload context: a workload file loaded and validated once, checked
//! against the server once (every statement prepared as the workload's role
//! with a tenant set), its parameter pools sampled once, with the connection
//! and the tenant frame its transactions use. A command builds one and hands
//! it to every stage that replays or inspects the workload — `run`,
//! `explain`, and advise's verification and remedy measurement — so one
//! `advise --verify` loads and samples the file once, not once per stage.
//! (Not to be confused with [`super::Context`], the file's `[context]`
//! section, which this carries inside the workload.)
//!
//! A workload file is code that runs on the target, so who runs it is
//! decided here: its tenants and sample queries run as
//! [`roles::SAMPLER`] (read-only), its statements as the role it names —
//! and on the private server never as the superuser: a file without `role`
//! runs as [`roles::APP`], and a named role must be a LOGIN role that is not
//! a superuser, which crmbench logs in as.

use std::path::Path;
use std::sync::Arc;

use super::frame::TenantFrame;
use super::params::{self, Pools};
use super::{Workload, check, sampler};
use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec, Target, roles};

/// A workload ready to run on a server: loaded, checked, pools sampled.
#[derive(Debug, Clone)]
pub struct WorkloadContext {
    workload: Arc<Workload>,
    pools: Arc<Pools>,
    spec: ConnSpec,
    frame: TenantFrame,
    runs_as: String,
}

impl WorkloadContext {
    /// Load the workload at `path`, sample its pools on `target` and check
    /// every statement there (what `run --check` does). On the private
    /// server the roles are made sure of first; a missing database is
    /// refused ([`crate::Error::NoSuchDatabase`]), never created.
    pub async fn prepare(target: &Target, path: &Path) -> Result<WorkloadContext> {
        let workload = Workload::load(path)?;
        params::check_tenants_query(&workload)?;
        pg::bootstrap_roles(target).await?;
        let admin = pg::connect(&target.admin()).await?;
        check_role(target, &admin, &workload).await?;
        let pools = sample(target, &admin, &workload).await?;
        let spec = spec_for(target, &workload);
        let client = pg::connect(&spec).await?;
        let (big, _) = pools.tenants.big_and_small();
        check::check(&client, &workload, &pools, big)
            .await
            .map_err(|e| with_role_hint(e, target, &workload))?;
        Ok(WorkloadContext {
            runs_as: runs_as(target, &workload),
            frame: TenantFrame::for_workload(&workload),
            workload: Arc::new(workload),
            pools: Arc::new(pools),
            spec,
        })
    }

    /// The same context with the tenant set the `form` way (`run
    /// --tenant-frame`, overriding the file's `[context] tenant_frame`).
    pub fn with_frame_form(mut self, form: super::FrameForm) -> WorkloadContext {
        let mut workload = (*self.workload).clone();
        workload.context.tenant_frame = form;
        self.frame = TenantFrame::for_workload(&workload);
        self.workload = Arc::new(workload);
        self
    }

    /// The validated workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The workload, shared (the driver threads each hold it).
    pub fn shared_workload(&self) -> Arc<Workload> {
        self.workload.clone()
    }

    /// The parameter pools sampled from the data.
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The pools, shared (the driver threads each hold them).
    pub fn shared_pools(&self) -> Arc<Pools> {
        self.pools.clone()
    }

    /// The connection the workload's transactions use on the target the
    /// context was prepared on.
    pub fn spec(&self) -> &ConnSpec {
        &self.spec
    }

    /// The connection the workload's transactions use on `target` (a clone,
    /// a candidate database): the same role, another place.
    pub fn spec_on(&self, target: &Target) -> ConnSpec {
        spec_for(target, &self.workload)
    }

    /// Who the workload's statements run as, for messages: the role, or
    /// "the connecting user" on a URL target without one.
    pub fn runs_as(&self) -> &str {
        &self.runs_as
    }

    /// How the workload's transactions are framed.
    pub fn frame(&self) -> &TenantFrame {
        &self.frame
    }

    /// The workload and pools, owned (compatibility with callers that took
    /// them apart).
    pub fn into_parts(self) -> (Workload, Pools) {
        (
            Arc::unwrap_or_clone(self.workload),
            Arc::unwrap_or_clone(self.pools),
        )
    }
}

/// The connection `workload`'s transactions use on `target`: as the role
/// the file names; without one, as [`roles::APP`] on the private server
/// (never its superuser) and as the URL's user on a URL target (the identity
/// the user gave crmbench there).
pub fn spec_for(target: &Target, workload: &Workload) -> ConnSpec {
    match workload.context.role.as_deref() {
        Some(role) => target.as_role(role),
        None if target.is_external() => target.admin(),
        None => target.app(),
    }
}

fn runs_as(target: &Target, workload: &Workload) -> String {
    match workload.context.role.as_deref() {
        Some(role) => role.to_string(),
        None if target.is_external() => "the connecting user".into(),
        None => roles::APP.into(),
    }
}

/// The pools, read by the sampler when the workload reads from the data.
async fn sample(
    target: &Target,
    admin: &tokio_postgres::Client,
    workload: &Workload,
) -> Result<Pools> {
    let epoch = params::dataset_epoch(admin).await;
    if !params::needs_sampling(workload) {
        return Ok(Pools::without_sampling(epoch));
    }
    sampler::ready(target, admin, workload).await?;
    let client = pg::connect(&target.sampler()).await?;
    Pools::load(&client, workload, epoch).await
}

/// On the private server, the role the workload runs as must exist, log in
/// and not be a superuser (crmbench logs in as it: a role taken with
/// `SET ROLE` from the superuser's session is left again by one
/// `set_config('role', …)` in a statement).
async fn check_role(
    target: &Target,
    admin: &tokio_postgres::Client,
    workload: &Workload,
) -> Result<()> {
    if target.is_external() {
        return Ok(());
    }
    let role = workload.context.role.as_deref().unwrap_or(roles::APP);
    let problem = match roles::attributes_of(admin, role).await? {
        None => "does not exist on the server".to_string(),
        Some(a) if a.superuser => format!(
            "is a superuser: a workload file is code, and on the private server it runs as a \
             role that is not ({} or a LOGIN role you create)",
            roles::APP
        ),
        Some(a) if !a.login => format!(
            "cannot log in: on the private server crmbench logs in as the workload's role \
             (ALTER ROLE {} LOGIN, or use {})",
            pg::quote_ident(role),
            roles::APP
        ),
        Some(_) => return Ok(()),
    };
    Err(Error::Workload {
        file: workload.path.clone(),
        line: 0,
        query: None,
        message: format!("[context] role = \"{role}\" {problem}"),
    })
}

/// A statement refused for lack of privilege in a workload without `role`
/// on the private server: say which role ran it and what to grant.
fn with_role_hint(e: Error, target: &Target, workload: &Workload) -> Error {
    match e {
        Error::Workload {
            file,
            line,
            query,
            message,
        } if message.contains("SQLSTATE 42501")
            && workload.context.role.is_none()
            && !target.is_external() =>
        {
            Error::Workload {
                file,
                line,
                query,
                message: format!(
                    "{message}; a workload without [context] role runs as {app} on the private \
                     server: GRANT it what the workload needs (e.g. GRANT USAGE ON SCHEMA s TO {app}; \
                     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA s TO {app}), \
                     or name a LOGIN role in [context] role",
                    app = roles::APP
                ),
            }
        }
        other => other,
    }
}
