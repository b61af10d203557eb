//! The one Prisma schema reader: models with their fields, field attributes
//! (`@id`, `@unique`, `@map`, `@relation`, …), block attributes (`@@id`,
//! `@@unique`, `@@index`, `@@map`) and the line of each, so `advise` can
//! name tables and columns as the schema does and `audit` can point at the
//! line a finding is on. It reads what those need, not the whole grammar:
//! other blocks (`generator`, `datasource`, `enum`, `type`, `view`) are
//! skipped, comments ignored.

use std::ops::Range;

/// An attribute: `@unique`, `@map("x")`, `@@index([a, b], map: "i")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name without the `@`/`@@` (`id`, `db.Uuid`, `index`).
    pub name: String,
    /// Text between the parentheses (empty when there are none).
    pub args: String,
    /// Byte range of the whole attribute in its line.
    pub span: Range<usize>,
}

impl Attribute {
    /// The first list argument: `[a, b(sort: Desc)]` → `["a", "b"]`, or
    /// the named one (`fields: [..]`) when `name` is given.
    pub fn list(&self, name: Option<&str>) -> Option<Vec<String>> {
        let start = match name {
            None => self.args.find('[')?,
            Some(n) => {
                let at = self.args.find(&format!("{n}:"))?;
                at + self.args[at..].find('[')?
            }
        };
        let end = start + self.args[start..].find(']')?;
        Some(
            split_top(&self.args[start + 1..end])
                .iter()
                .map(|s| s.split('(').next().unwrap_or("").trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    /// The first string argument (`@map("x")` → `x`).
    pub fn string(&self) -> Option<String> {
        let start = self.args.find('"')? + 1;
        let len = self.args[start..].find('"')?;
        Some(self.args[start..start + len].to_string())
    }
}

/// A field of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Type as written (`String`, `Customer?`, `Order[]`).
    pub ty: String,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// 1-based line.
    pub line: usize,
    /// The line as written.
    pub text: String,
}

impl Field {
    /// The attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The column: `@map("x")`, else the field name.
    pub fn column(&self) -> String {
        self.attribute("map")
            .and_then(Attribute::string)
            .unwrap_or_else(|| self.name.clone())
    }

    /// The model a relation field points at (its type without `?`/`[]`).
    pub fn target(&self) -> &str {
        self.ty.trim_end_matches('?').trim_end_matches("[]")
    }
}

/// A block attribute (`@@index(…)`) with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAttribute {
    /// The attribute.
    pub attribute: Attribute,
    /// 1-based line.
    pub line: usize,
}

/// A model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Model name.
    pub name: String,
    /// Line of `model Name {`.
    pub line: usize,
    /// Line of its closing `}`.
    pub end_line: usize,
    /// Fields in order.
    pub fields: Vec<Field>,
    /// `@@…` attributes in order.
    pub block: Vec<BlockAttribute>,
}

impl Model {
    /// The table: `@@map("x")`, else the model name.
    pub fn table(&self) -> String {
        self.block_attributes("map")
            .next()
            .and_then(|b| b.attribute.string())
            .unwrap_or_else(|| self.name.clone())
    }

    /// The block attributes named `name`.
    pub fn block_attributes<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a BlockAttribute> {
        self.block.iter().filter(move |b| b.attribute.name == name)
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A read schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Its models in order.
    pub models: Vec<Model>,
}

impl Schema {
    /// Read a schema's text.
    pub fn parse(text: &str) -> Schema {
        let mut models = Vec::new();
        let mut open: Option<Model> = None;
        let mut skipping = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let code = strip_comment(raw);
            let trimmed = code.trim();
            if open.is_none() && !skipping {
                if let Some(rest) = trimmed.strip_prefix("model ") {
                    open = Some(Model {
                        name: rest.trim_end_matches('{').trim().to_string(),
                        line,
                        end_line: line,
                        fields: Vec::new(),
                        block: Vec::new(),
                    });
                } else if trimmed.ends_with('{') {
                    skipping = true;
                }
                continue;
            }
            if trimmed.starts_with('}') {
                if let Some(mut m) = open.take() {
                    m.end_line = line;
                    models.push(m);
                }
                skipping = false;
                continue;
            }
            let Some(m) = open.as_mut() else {
                continue;
            };
            if trimmed.starts_with("@@") {
                let offset = code.len() - code.trim_start().len();
                for mut a in attributes(trimmed) {
                    a.span = a.span.start + offset..a.span.end + offset;
                    m.block.push(BlockAttribute { attribute: a, line });
                }
            } else if !trimmed.is_empty() {
                m.fields.push(field(code, raw, line));
            }
        }
        Schema { models }
    }

    /// The model named `name`.
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }
}

fn field(code: &str, raw: &str, line: usize) -> Field {
    let mut words = code.split_whitespace();
    let name = words.next().unwrap_or("").to_string();
    let ty = words.next().unwrap_or("").to_string();
    let attrs = code.find('@').map_or_else(Vec::new, |at| {
        attributes(&code[at..])
            .into_iter()
            .map(|mut a| {
                a.span = a.span.start + at..a.span.end + at;
                a
            })
            .collect()
    });
    Field {
        name,
        ty,
        attributes: attrs,
        line,
        text: raw.to_string(),
    }
}

/// The line without its `//` comment (a `//` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The attributes in `text` (which starts at the first `@`): name, then a
/// parenthesised argument list read with nesting and strings respected.
fn attributes(text: &str) -> Vec<Attribute> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] == b'@' {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
        {
            i += 1;
        }
        let name = text[name_start..i].to_string();
        let mut args = String::new();
        if bytes.get(i) == Some(&b'(') {
            let (mut depth, mut in_string, open) = (0, false, i);
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => in_string = !in_string,
                    b'(' if !in_string => depth += 1,
                    b')' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            args = text[open + 1..i.min(text.len())].to_string();
            i += 1;
        }
        out.push(Attribute {
            name,
            args,
            span: start..i.min(text.len()),
        });
    }
    out
}

/// Split on commas outside brackets, parentheses and strings.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut in_string) = (Vec::new(), String::new(), 0, false);
    for c in s.chars() {
        match c {
            '"' => in_string = !in_string,
            '(' | '[' if !in_string => depth += 1,
            ')' | ']' if !in_string => depth -= 1,
            ',' if !in_string && depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_fields_attributes_and_lines() {
        let text = "generator client {\n  provider = \"x\"\n}\n\
                    model Customer { // people\n\
                    \x20 id String @id @default(cuid())\n\
                    \x20 tenantId String @map(\"tenant_id\") @db.Uuid\n\
                    \x20 email String @unique // \"quoted\" comment\n\
                    \x20 orders Order[]\n\
                    \x20 @@index([tenantId, email(sort: Desc)], map: \"i\")\n\
                    \x20 @@map(\"customers\")\n}\n\
                    enum Status {\n  open\n}\n";
        let s = Schema::parse(text);
        assert_eq!(s.models.len(), 1);
        let m = &s.models[0];
        assert_eq!((m.name.as_str(), m.line, m.end_line), ("Customer", 4, 11));
        assert_eq!(m.table(), "customers");
        let id = m.field("id").unwrap();
        assert_eq!(id.line, 5);
        assert_eq!(id.attributes.len(), 2);
        assert_eq!(id.attribute("default").unwrap().args, "cuid()");
        assert_eq!(&id.text[id.attribute("id").unwrap().span.clone()], "@id");
        assert_eq!(m.field("tenantId").unwrap().column(), "tenant_id");
        assert_eq!(m.field("orders").unwrap().target(), "Order");
        let idx = m.block_attributes("index").next().unwrap();
        assert_eq!(idx.line, 9);
        assert_eq!(idx.attribute.list(None).unwrap(), ["tenantId", "email"]);
        let rel =
            &attributes("@relation(fields: [a, b], references: [id, x], onDelete: Cascade)")[0];
        assert_eq!(rel.list(Some("fields")).unwrap(), ["a", "b"]);
        assert_eq!(rel.list(Some("references")).unwrap(), ["id", "x"]);
    }
}
