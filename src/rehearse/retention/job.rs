//! The retention job that keeps a converted table in shape: with
//! pg_partman 4.x installed, its configuration (`create_parent` with
//! `p_type => 'native'`, the `retention` settings of `part_config`, and
//! `run_maintenance` on a schedule); without it, a PL/pgSQL function that
//! creates the partitions ahead and drops the expired ones, and the line
//! for pg_cron or the system's scheduler.

use super::convert::{AHEAD, Plan};
use crate::pg::{quote_ident as qi, quote_literal as ql};

/// Which job is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// pg_partman 4.x.
    Partman,
    /// A plain PL/pgSQL maintenance function.
    Plpgsql,
}

/// The job: its set-up SQL, the statement one maintenance run sends, and the
/// schedule line.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Which one.
    pub kind: JobKind,
    /// Run once, after the conversion.
    pub setup: String,
    /// One maintenance run.
    pub run: String,
    /// The schedule (pg_cron, and the crontab alternative).
    pub schedule: String,
}

impl Job {
    /// `job.sql`: the set-up, one maintenance run, the schedule.
    pub fn text(&self) -> String {
        format!(
            "{}\n-- One maintenance run:\n{}\n{}",
            self.setup, self.run, self.schedule
        )
    }
}

/// The job for `plan`, keeping `keep_months` months.
pub fn write(plan: &Plan, kind: JobKind, keep_months: u32) -> Job {
    match kind {
        JobKind::Partman => partman(plan, keep_months),
        JobKind::Plpgsql => plpgsql(plan, keep_months),
    }
}

fn partman(plan: &Plan, keep: u32) -> Job {
    let parent = format!("{}.{}", plan.table.schema, plan.table.name);
    let setup = format!(
        "-- crmbench: pg_partman 4.x keeps {parent}: {AHEAD} months ahead, {keep} months kept.\n\
         CREATE SCHEMA IF NOT EXISTS partman;\n\
         CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;\n\
         -- The conversion's partitions already carry partman's names (table_pYYYY_MM), so it adopts them.\n\
         -- pg_partman 4.7 adds a default partition: from then on partitions are detached plainly (a\n\
         -- moment of ACCESS EXCLUSIVE on the parent), not CONCURRENTLY.\n\
         SELECT partman.create_parent(p_parent_table => {p}, p_control => {c}, p_type => 'native', \
         p_interval => 'monthly', p_premake => {AHEAD}, p_jobmon => false);\n\
         UPDATE partman.part_config SET retention = '{keep} months', retention_keep_table = false, \
         retention_keep_index = false, infinite_time_partitions = true WHERE parent_table = {p};\n",
        p = ql(&parent),
        c = ql(&plan.column),
    );
    let run = format!(
        "SELECT partman.run_maintenance({}, p_jobmon => false);\n",
        ql(&parent)
    );
    Job {
        kind: JobKind::Partman,
        schedule: schedule(&parent, &run),
        setup,
        run,
    }
}

fn plpgsql(plan: &Plan, keep: u32) -> Job {
    let schema = &plan.table.schema;
    let table = &plan.table.name;
    let f = plan.table.qualified(&format!("{table}_maintain"));
    let setup = format!(
        "-- crmbench: the maintenance of {s}.{t} without pg_partman: {AHEAD} months ahead, {keep} months kept.\n\
         -- DROP TABLE of a partition takes ACCESS EXCLUSIVE on the parent for a moment (DETACH CONCURRENTLY\n\
         -- cannot run inside a function); run it when a short pause of writers is acceptable.\n\
         CREATE OR REPLACE FUNCTION {f}(keep interval DEFAULT '{keep} months', ahead int DEFAULT {AHEAD})\n\
         RETURNS void LANGUAGE plpgsql SET lock_timeout = '5s' AS $maintain$\n\
         DECLARE\n\
         \x20 m date;\n\
         \x20 part text;\n\
         \x20 r record;\n\
         BEGIN\n\
         \x20 FOR i IN 0..ahead LOOP\n\
         \x20   m := date_trunc('month', now()) + make_interval(months => i);\n\
         \x20   part := {tl} || '_p' || to_char(m, 'YYYY_MM');\n\
         \x20   IF to_regclass(format('%I.%I', {sl}, part)) IS NULL THEN\n\
         \x20     EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%L) TO (%L)',\n\
         \x20                    {sl}, part, {sl}, {tl}, m, (m + interval '1 month')::date);\n\
         \x20   END IF;\n\
         \x20 END LOOP;\n\
         \x20 FOR r IN SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid\n\
         \x20          WHERE i.inhparent = format('%I.%I', {sl}, {tl})::regclass\n\
         \x20            AND c.relname ~ ('^' || {tl} || '_p[0-9]{{4}}_[0-9]{{2}}$') LOOP\n\
         \x20   IF to_date(right(r.relname, 7), 'YYYY_MM') + interval '1 month' <= date_trunc('month', now() - keep) THEN\n\
         \x20     EXECUTE format('DROP TABLE %I.%I', {sl}, r.relname);\n\
         \x20   END IF;\n\
         \x20 END LOOP;\n\
         END $maintain$;\n",
        s = qi(schema),
        t = qi(table),
        sl = ql(schema),
        tl = ql(table),
    );
    let run = format!("SELECT {f}();\n");
    Job {
        kind: JobKind::Plpgsql,
        schedule: schedule(&format!("{schema}.{table}"), &run),
        setup,
        run,
    }
}

fn schedule(parent: &str, run: &str) -> String {
    let run = run.trim().trim_end_matches(';');
    format!(
        "-- Daily at 03:10, with pg_cron:\n\
         SELECT cron.schedule({}, '10 3 * * *', {});\n\
         -- or the system's scheduler (crontab of a user with the owner's rights):\n\
         -- 10 3 * * * psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c \"{run}\"\n",
        ql(&format!("retention of {parent}")),
        ql(run)
    )
}
