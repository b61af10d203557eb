//! The workload context: a workload file loaded and validated once, checked
//! against the server once (every statement prepared as the workload's role
//! with a tenant set), its parameter pools sampled once, with the connection
//! and the tenant frame its transactions use. A command builds one and hands
//! it to every stage that replays or inspects the workload — `run`,
//! `explain`, and advise's verification and remedy measurement — so one
//! `advise --verify` loads and samples the file once, not once per stage.
//! (Not to be confused with [`super::Context`], the file's `[context]`
//! section, which this carries inside the workload.)

use std::path::Path;
use std::sync::Arc;

use super::frame::TenantFrame;
use super::params::Pools;
use super::{Workload, check};
use crate::error::Result;
use crate::pg::{self, ConnSpec, Target, roles};

/// A workload ready to run on a server: loaded, checked, pools sampled.
#[derive(Debug, Clone)]
pub struct WorkloadContext {
    workload: Arc<Workload>,
    pools: Arc<Pools>,
    spec: ConnSpec,
    frame: TenantFrame,
}

impl WorkloadContext {
    /// Load the workload at `path`, sample its pools on `target` and check
    /// every statement there (what `run --check` does). On the private
    /// server the roles and the benchmark database are made sure of first.
    pub async fn prepare(target: &Target, path: &Path) -> Result<WorkloadContext> {
        let workload = Workload::load(path)?;
        pg::bootstrap_private(target).await?;
        let admin = pg::connect(&target.admin()).await?;
        let pools = Pools::load(&admin, &workload).await?;
        let spec = spec_for(target, &workload);
        let client = pg::connect(&spec).await?;
        let (big, _) = pools.tenants.big_and_small();
        check::check(&client, &workload, &pools, big).await?;
        Ok(WorkloadContext {
            frame: TenantFrame::for_workload(&workload),
            workload: Arc::new(workload),
            pools: Arc::new(pools),
            spec,
        })
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

/// The connection `workload`'s transactions use on `target`: the
/// application role's own login for crmbench's app role, else the admin
/// connection switched to the file's role, else the admin connection.
pub fn spec_for(target: &Target, workload: &Workload) -> ConnSpec {
    match workload.context.role.as_deref() {
        Some(roles::APP) => target.app(),
        Some(role) => {
            let mut spec = target.admin();
            spec.set_role = Some(role.to_string());
            spec
        }
        None => target.admin(),
    }
}
