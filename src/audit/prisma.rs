//! The key rules, statically on a Prisma schema (before any migration
//! exists): in every model with a tenant field, `@id`, `@unique`,
//! `@@id`, `@@unique` and relation `fields` must include it, `@@index`
//! lists lead with it, and every relation's fields lead some index. Each
//! finding points at its line and carries the corrected lines as edits, so
//! [`apply`] writes the corrected schema (which `prisma validate` accepts).

use std::path::Path;

use super::model::{FORMAT_VERSION, Finding, Location, Report, Rule};
use super::{AuditOptions, DEFAULT_COLUMN};
use crate::error::{Error, Result};
use crate::prisma::{Attribute, Field, Model, Schema};

/// One change to the schema's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Remove the attribute at `span` of line `line`.
    Remove {
        /// 1-based line.
        line: usize,
        /// Byte range in the line.
        span: std::ops::Range<usize>,
    },
    /// Replace the attribute at `span` of line `line` with `text`.
    Replace {
        /// 1-based line.
        line: usize,
        /// Byte range in the line.
        span: std::ops::Range<usize>,
        /// The new attribute.
        text: String,
    },
    /// Add a line before line `before` (a model's closing brace).
    Add {
        /// 1-based line.
        before: usize,
        /// The line, without indentation.
        text: String,
    },
}

/// A finding with the edits that correct it.
#[derive(Debug, Clone)]
pub struct Corrected {
    /// The finding (its `fix` holds the corrected lines).
    pub finding: Finding,
    /// The edits.
    pub edits: Vec<Edit>,
}

/// Audit the Prisma schema at `path`.
pub fn audit_file(path: &Path, opts: &AuditOptions) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let column = opts
        .tenant_column
        .clone()
        .unwrap_or_else(|| DEFAULT_COLUMN.into());
    let findings = check(&text, &path.display().to_string(), &column)
        .into_iter()
        .map(|c| c.finding)
        .collect();
    let mut report = Report {
        format_version: FORMAT_VERSION,
        source: path.display().to_string(),
        tenant_column: column,
        setting: opts.setting.clone().unwrap_or_else(|| "-".into()),
        detected: "tenant models: a field mapped to the column, or named as Prisma names it".into(),
        probed: false,
        findings,
    };
    report.sort();
    Ok(report)
}

/// `tenant_id` → `tenantId`.
fn camel(column: &str) -> String {
    crate::advise::prisma::field_name(column)
}

/// The model's tenant field: mapped to the column, or named its camelCase.
fn tenant_field<'a>(m: &'a Model, column: &str) -> Option<&'a Field> {
    m.fields
        .iter()
        .find(|f| f.column() == column || (f.name == camel(column) && f.attribute("map").is_none()))
}

/// Every finding of the static rules on a schema's `text` (in `file`).
pub fn check(text: &str, file: &str, column: &str) -> Vec<Corrected> {
    let schema = Schema::parse(text);
    let mut out = Vec::new();
    for m in &schema.models {
        let Some(t) = tenant_field(m, column) else {
            continue;
        };
        let ctx = ModelCtx {
            schema: &schema,
            model: m,
            tenant: &t.name,
            column,
            file,
        };
        let mut keys = ctx.keys(&mut out);
        ctx.indexes(&mut out, &mut keys);
        ctx.relations(&mut out, &keys);
        if !keys.iter().any(|k| k.first() == Some(&t.name)) {
            out.push(ctx.corrected(
                Rule::TenantColumnNotIndexed,
                m.name.clone(),
                m.line,
                format!(
                    "no @@id, @@unique or @@index of {} leads with {}",
                    m.name, t.name
                ),
                vec![ctx.add(format!("@@index([{}])", t.name))],
            ));
        }
    }
    out
}

struct ModelCtx<'a> {
    schema: &'a Schema,
    model: &'a Model,
    tenant: &'a str,
    column: &'a str,
    file: &'a str,
}

impl ModelCtx<'_> {
    fn corrected(
        &self,
        rule: Rule,
        object: String,
        line: usize,
        message: String,
        edits: Vec<Edit>,
    ) -> Corrected {
        let fix = edits
            .iter()
            .map(|e| self.show(e))
            .collect::<Vec<_>>()
            .join("\n");
        let mut finding = Finding::new(rule, object, message, fix);
        finding.location = Some(Location {
            file: self.file.to_string(),
            line,
        });
        Corrected { finding, edits }
    }

    fn add(&self, text: String) -> Edit {
        Edit::Add {
            before: self.model.end_line,
            text,
        }
    }

    /// An edit as the corrected line reads.
    fn show(&self, e: &Edit) -> String {
        let line_text = |line: usize| {
            let f = self.model.fields.iter().find(|f| f.line == line);
            f.map(|f| f.text.clone()).unwrap_or_default()
        };
        match e {
            Edit::Add { text, .. } => format!("  {text}"),
            Edit::Remove { line, span } => {
                let t = line_text(*line);
                format!("{}{}", t[..span.start].trim_end(), &t[span.end..])
                    .trim_end()
                    .to_string()
            }
            Edit::Replace { line, span, text } => {
                let t = self
                    .model
                    .block
                    .iter()
                    .find(|b| b.line == *line)
                    .map(|_| format!("  {text}"));
                t.unwrap_or_else(|| {
                    let l = line_text(*line);
                    format!("{}{text}{}", &l[..span.start], &l[span.end..])
                })
            }
        }
    }

    /// `list` with the tenant field first (moved there if elsewhere).
    fn led(&self, raw: &[String]) -> Vec<String> {
        let mut out = vec![self.tenant.to_string()];
        out.extend(
            raw.iter()
                .filter(|r| r.split('(').next().map(str::trim) != Some(self.tenant))
                .map(|r| r.trim().to_string()),
        );
        out
    }

    /// `@id`/`@unique` fields and `@@id`/`@@unique` lists without the
    /// tenant field; returns every key list as corrected.
    fn keys(&self, out: &mut Vec<Corrected>) -> Vec<Vec<String>> {
        let mut keys = Vec::new();
        for f in self.model.fields.iter().filter(|f| f.name != self.tenant) {
            for (attr, block) in [("id", "@@id"), ("unique", "@@unique")] {
                let Some(a) = f.attribute(attr) else { continue };
                let key = vec![self.tenant.to_string(), f.name.clone()];
                let line = format!("{block}([{}])", key.join(", "));
                keys.push(key);
                out.push(self.corrected(
                    Rule::GlobalUnique,
                    format!("{}.{}", self.model.name, f.name),
                    f.line,
                    format!(
                        "@{attr} on {} alone is unique across tenants: it omits {}",
                        f.name, self.tenant
                    ),
                    vec![
                        Edit::Remove {
                            line: f.line,
                            span: a.span.clone(),
                        },
                        self.add(line),
                    ],
                ));
            }
        }
        for name in ["id", "unique"] {
            for b in self.model.block_attributes(name) {
                let raw = raw_list(&b.attribute);
                let has = raw
                    .iter()
                    .any(|r| r.split('(').next().map(str::trim) == Some(self.tenant));
                let led = self.led(&raw);
                keys.push(led.iter().map(|r| bare(r)).collect());
                if !has {
                    out.push(self.corrected(
                        Rule::GlobalUnique,
                        format!("{}.@@{name}", self.model.name),
                        b.line,
                        format!(
                            "@@{name}([{}]) is unique across tenants: it omits {}",
                            raw.join(", "),
                            self.tenant
                        ),
                        vec![self.replace_list(b.line, &b.attribute, &led)],
                    ));
                }
            }
        }
        keys
    }

    /// `@@index` lists that do not lead with the tenant field.
    fn indexes(&self, out: &mut Vec<Corrected>, keys: &mut Vec<Vec<String>>) {
        for b in self.model.block_attributes("index") {
            let raw = raw_list(&b.attribute);
            let led = self.led(&raw);
            keys.push(led.iter().map(|r| bare(r)).collect());
            if raw.first().map(|r| bare(r)) != Some(self.tenant.to_string()) {
                out.push(self.corrected(
                    Rule::IndexNotTenantLed,
                    format!("{}.@@index", self.model.name),
                    b.line,
                    format!(
                        "@@index([{}]) does not lead with {}",
                        raw.join(", "),
                        self.tenant
                    ),
                    vec![self.replace_list(b.line, &b.attribute, &led)],
                ));
            }
        }
    }

    /// Relations to tenant models must carry the tenant field on both sides,
    /// and their fields must lead some index.
    fn relations(&self, out: &mut Vec<Corrected>, keys: &[Vec<String>]) {
        for f in &self.model.fields {
            let Some(rel) = f.attribute("relation") else {
                continue;
            };
            let (Some(fields), Some(refs)) =
                (rel.list(Some("fields")), rel.list(Some("references")))
            else {
                continue;
            };
            let Some(target) = self.schema.model(f.target()) else {
                continue;
            };
            let mut used = fields.clone();
            if let Some(tt) = tenant_field(target, self.column) {
                let here = fields.iter().position(|x| x == self.tenant);
                let there = refs.iter().position(|x| *x == tt.name);
                if here.is_none() || here != there {
                    used = self.led(&fields);
                    let mut new_refs = vec![tt.name.clone()];
                    new_refs.extend(refs.iter().filter(|r| **r != tt.name).cloned());
                    let args = set_list(
                        &set_list(&rel.args, "fields", &used),
                        "references",
                        &new_refs,
                    );
                    out.push(self.corrected(
                        Rule::CrossTenantForeignKey,
                        format!("{}.{}", self.model.name, f.name),
                        f.line,
                        format!(
                            "relation fields [{}] → {}[{}] omit {}: a row can point into another tenant",
                            fields.join(", "),
                            target.name,
                            refs.join(", "),
                            self.tenant
                        ),
                        vec![Edit::Replace { line: f.line, span: rel.span.clone(), text: format!("@relation({args})") }],
                    ));
                }
            }
            let covered = keys
                .iter()
                .any(|k| k.len() >= used.len() && used.iter().all(|u| k[..used.len()].contains(u)));
            if !covered {
                out.push(self.corrected(
                    Rule::ForeignKeyUnindexed,
                    format!("{}.{}", self.model.name, f.name),
                    f.line,
                    format!(
                        "no index leads with the relation's fields [{}]",
                        used.join(", ")
                    ),
                    vec![self.add(format!("@@index([{}])", used.join(", ")))],
                ));
            }
        }
    }

    fn replace_list(&self, line: usize, a: &Attribute, list: &[String]) -> Edit {
        let start = a.args.find('[').unwrap_or(0);
        let end = a.args[start..]
            .find(']')
            .map_or(a.args.len(), |e| start + e + 1);
        let args = format!(
            "{}[{}]{}",
            &a.args[..start],
            list.join(", "),
            &a.args[end..]
        );
        Edit::Replace {
            line,
            span: a.span.clone(),
            text: format!("@@{}({args})", a.name),
        }
    }
}

/// The first list's elements as written (`email(sort: Desc)` kept whole).
fn raw_list(a: &Attribute) -> Vec<String> {
    let Some(start) = a.args.find('[') else {
        return Vec::new();
    };
    let end = a.args[start..]
        .find(']')
        .map_or(a.args.len(), |e| start + e);
    a.args[start + 1..end]
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn bare(raw: &str) -> String {
    raw.split('(').next().unwrap_or("").trim().to_string()
}

/// `args` with the list named `name` (`fields: [..]`) set to `list`.
fn set_list(args: &str, name: &str, list: &[String]) -> String {
    let Some(at) = args.find(&format!("{name}:")) else {
        return args.to_string();
    };
    let Some(open) = args[at..].find('[').map(|o| at + o) else {
        return args.to_string();
    };
    let Some(close) = args[open..].find(']').map(|c| open + c) else {
        return args.to_string();
    };
    format!(
        "{}[{}]{}",
        &args[..open],
        list.join(", "),
        &args[close + 1..]
    )
}

/// `text` with every edit applied (removals and replacements within their
/// line, right to left; additions before their line, each once).
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut spans: Vec<(usize, std::ops::Range<usize>, String)> = edits
        .iter()
        .filter_map(|e| match e {
            Edit::Remove { line, span } => Some((*line, span.clone(), String::new())),
            Edit::Replace { line, span, text } => Some((*line, span.clone(), text.clone())),
            Edit::Add { .. } => None,
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse((s.0, s.1.start)));
    for (line, span, new) in spans {
        if let Some(l) = lines.get_mut(line - 1) {
            if span.end <= l.len() {
                let head = if new.is_empty() {
                    l[..span.start].trim_end()
                } else {
                    &l[..span.start]
                };
                *l = format!("{head}{new}{}", &l[span.end..])
                    .trim_end()
                    .to_string();
            }
        }
    }
    let mut adds: Vec<(usize, String)> = Vec::new();
    for e in edits {
        if let Edit::Add { before, text } = e {
            if !adds.contains(&(*before, text.clone())) {
                adds.push((*before, text.clone()));
            }
        }
    }
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        for (_, t) in adds.iter().filter(|(b, _)| *b == i + 1) {
            out.push_str(&format!("  {t}\n"));
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_place() {
        let text =
            "model A {\n  id String @id @default(cuid())\n  tenantId String\n  @@index([x])\n}\n";
        let found = check(text, "s.prisma", "tenant_id");
        let rules: Vec<Rule> = found.iter().map(|c| c.finding.rule).collect();
        assert_eq!(rules, [Rule::GlobalUnique, Rule::IndexNotTenantLed]);
        let edits: Vec<Edit> = found.into_iter().flat_map(|c| c.edits).collect();
        let fixed = apply(text, &edits);
        assert_eq!(
            fixed,
            "model A {\n  id String @default(cuid())\n  tenantId String\n  @@index([tenantId, x])\n  @@id([tenantId, id])\n}\n"
        );
        assert!(check(&fixed, "s.prisma", "tenant_id").is_empty());
    }
}
