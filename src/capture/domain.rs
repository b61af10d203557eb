//! What values a column may take when `capture` cannot sample it per tenant:
//! its single-column CHECK constraints (read with the server's parser, as
//! `pg_get_constraintdef` prints them: `CHECK ((quantity > 0))`, `CHECK
//! ((status = ANY (ARRAY['a'::text, 'b'::text])))`) and, failing those, the
//! planner's statistics (`pg_stats`' most common values). A generator drawn
//! from either never breaks the constraint (23514), which the type's own
//! default range did in a fifth of some statements' replays.

use pg_query::NodeEnum;
use pg_query::NodeRef;
use pg_query::protobuf::a_const::Val;
use pg_query::protobuf::{AExprKind, Node};

/// The values a CHECK constraint allows one column.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allowed {
    /// `col IN (…)` / `col = ANY (ARRAY[…])` / `col = 'x'`: only these.
    pub values: Vec<String>,
    /// Lowest allowed (inclusive), from `>=`, `>` (plus one) or BETWEEN.
    pub lo: Option<f64>,
    /// Highest allowed (inclusive).
    pub hi: Option<f64>,
}

impl Allowed {
    /// Narrow `self` with what another constraint on the column allows.
    pub fn and(mut self, other: Allowed) -> Allowed {
        if self.values.is_empty() {
            self.values = other.values;
        }
        self.lo = match (self.lo, other.lo) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.hi = match (self.hi, other.hi) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }

    /// Whether the constraint says anything usable.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.lo.is_none() && self.hi.is_none()
    }

    /// A generator (TOML inline table) for a column of type `ty` that keeps
    /// to the constraint; `None` when the constraint does not fit the type.
    pub fn generator(&self, ty: &str) -> Option<String> {
        if !self.values.is_empty() {
            return Some(choice(&self.values));
        }
        let integer = matches!(ty, "int2" | "int4" | "int8");
        let numeric = integer || matches!(ty, "numeric" | "float4" | "float8");
        if !numeric {
            return None;
        }
        // A small span from the bound the constraint gives, as the type's
        // default range [1, 100] would be, moved inside the constraint.
        let lo = match (self.lo, self.hi) {
            (Some(lo), _) => lo,
            (None, Some(hi)) if hi < 1.0 => hi - 99.0,
            (None, _) => 1.0,
        };
        let hi = self.hi.unwrap_or(lo + 99.0).max(lo);
        Some(if integer {
            format!("{{ int = [{}, {}] }}", lo.ceil() as i64, hi.floor() as i64)
        } else {
            format!("{{ float = [{lo}, {hi}] }}")
        })
    }
}

/// `{ choice = [...] }` of these values.
pub fn choice(values: &[String]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| toml::Value::String(v.clone()).to_string())
        .collect();
    format!("{{ choice = [{}] }}", items.join(", "))
}

/// What `def` (`pg_get_constraintdef` of a CHECK on one column) allows
/// `column`; `None` when it does not parse or says nothing this reads.
pub fn of_check(def: &str, column: &str) -> Option<Allowed> {
    let body = def.trim().strip_prefix("CHECK")?;
    let body = body.trim().trim_end_matches("NOT VALID").trim();
    let parsed = pg_query::parse(&format!("SELECT {body}")).ok()?;
    let mut allowed = Allowed::default();
    // Every comparison of the column anywhere in an AND of them; an OR
    // would widen what is allowed, so a constraint with one is not read.
    for (node, ..) in parsed.protobuf.nodes() {
        match node {
            NodeRef::BoolExpr(b)
                if b.boolop != pg_query::protobuf::BoolExprType::AndExpr as i32 =>
            {
                return None;
            }
            NodeRef::AExpr(e) => allowed = allowed.and(comparison(e, column)?),
            _ => {}
        }
    }
    (!allowed.is_empty()).then_some(allowed)
}

/// What one comparison of `column` allows (empty when it is about another
/// column); `None` for a comparison this does not read.
fn comparison(e: &pg_query::protobuf::AExpr, column: &str) -> Option<Allowed> {
    let kind = AExprKind::try_from(e.kind).unwrap_or(AExprKind::Undefined);
    let op = e.name.iter().find_map(|n| match n.node.as_ref() {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    });
    let is_column = |n: Option<&Node>| {
        matches!(n.and_then(|n| n.node.as_ref()), Some(NodeEnum::ColumnRef(c))
            if c.fields.iter().any(|f| matches!(f.node.as_ref(), Some(NodeEnum::String(s)) if s.sval == column)))
    };
    let (left_is_column, right_is_column) =
        (is_column(e.lexpr.as_deref()), is_column(e.rexpr.as_deref()));
    if !left_is_column && !right_is_column {
        return Some(Allowed::default());
    }
    let other = if left_is_column { &e.rexpr } else { &e.lexpr };
    let mut out = Allowed::default();
    match (kind, op) {
        (AExprKind::AexprOpAny | AExprKind::AexprIn, Some("=")) => {
            out.values = constants(other.as_deref());
        }
        (AExprKind::AexprBetween, _) => {
            let bounds = numbers(other.as_deref());
            out.lo = bounds.first().copied();
            out.hi = bounds.get(1).copied();
        }
        (AExprKind::AexprOp, Some(op)) => {
            let value = numbers(other.as_deref()).first().copied();
            // `0 < col` reads as `col > 0`.
            let op = match (left_is_column, op) {
                (true, op) => op,
                (false, "<") => ">",
                (false, ">") => "<",
                (false, "<=") => ">=",
                (false, ">=") => "<=",
                (false, op) => op,
            };
            match op {
                ">=" => out.lo = value,
                ">" => out.lo = value.map(|v| v + 1.0),
                "<=" => out.hi = value,
                "<" => out.hi = value.map(|v| v - 1.0),
                "=" => out.values = constants(other.as_deref()),
                _ => return None,
            }
        }
        _ => return None,
    }
    Some(out)
}

/// The string forms of the constants under `node` (an ARRAY, a list, one,
/// each perhaps cast), in order. (pg_query's own node walk does not enter
/// an ARRAY.)
fn constants(node: Option<&Node>) -> Vec<String> {
    let mut out = Vec::new();
    collect_constants(node, &mut out);
    out
}

fn collect_constants(node: Option<&Node>, out: &mut Vec<String>) {
    match node.and_then(|n| n.node.as_ref()) {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(Val::Sval(s)) => out.push(s.sval.clone()),
            Some(Val::Ival(i)) => out.push(i.ival.to_string()),
            Some(Val::Fval(f)) => out.push(f.fval.clone()),
            Some(Val::Boolval(b)) => out.push(b.boolval.to_string()),
            _ => {}
        },
        Some(NodeEnum::TypeCast(c)) => collect_constants(c.arg.as_deref(), out),
        Some(NodeEnum::AArrayExpr(a)) => {
            for e in &a.elements {
                collect_constants(Some(e), out);
            }
        }
        Some(NodeEnum::List(l)) => {
            for e in &l.items {
                collect_constants(Some(e), out);
            }
        }
        _ => {}
    }
}

/// The numeric constants under `node`, in order.
fn numbers(node: Option<&Node>) -> Vec<f64> {
    constants(node)
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The elements of an array's text form as `anyarray::text` prints
/// `pg_stats.most_common_vals` (`{a,"b c",3}`); `None` for nested or
/// unreadable text.
pub fn array_elements(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => item.push(chars.next()?),
                    '"' => break,
                    c => item.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' {
                    return None;
                }
                item.push(c);
                chars.next();
            }
            if item == "NULL" {
                item.clear();
            }
        }
        if !item.is_empty() {
            out.push(item);
        }
        match chars.next() {
            Some(',') | None => {}
            Some(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_as_the_server_prints_them() {
        let a = of_check("CHECK ((quantity > 0))", "quantity").unwrap();
        assert_eq!((a.lo, a.hi), (Some(1.0), None));
        assert_eq!(a.generator("int4").unwrap(), "{ int = [1, 100] }");
        let a = of_check(
            "CHECK (((minor_units >= 0) AND (minor_units <= 4)))",
            "minor_units",
        )
        .unwrap();
        assert_eq!(a.generator("int2").unwrap(), "{ int = [0, 4] }");
        let a = of_check(
            "CHECK ((status = ANY (ARRAY['lead'::text, 'active'::text])))",
            "status",
        )
        .unwrap();
        assert_eq!(
            a.generator("text").unwrap(),
            "{ choice = [\"lead\", \"active\"] }"
        );
        let a = of_check(
            "CHECK (((ring_size >= 3.0) AND (ring_size <= 15.0)))",
            "ring_size",
        );
        assert_eq!(
            a.unwrap().generator("numeric").unwrap(),
            "{ float = [3, 15] }"
        );
        // An OR widens: not read. Another column: nothing said.
        assert_eq!(of_check("CHECK (((a > 0) OR (a < -5)))", "a"), None);
        assert_eq!(of_check("CHECK ((b > 0))", "a"), None);
        assert_eq!(of_check("CHECK ((0 <= a))", "a").unwrap().lo, Some(0.0));
    }

    #[test]
    fn most_common_values_text() {
        assert_eq!(
            array_elements(r#"{open,"on hold",won,NULL,"a\"b"}"#).unwrap(),
            vec!["open", "on hold", "won", "a\"b"]
        );
        assert_eq!(array_elements("{}").unwrap(), Vec::<String>::new());
        assert_eq!(array_elements("{{1,2}}"), None);
    }
}
