//! Permission queries: `orders:read AND (billing:read OR admin:*)`, parsed once into an AST of
//! required scopes and evaluated against a key's held scopes.
//!
//! `AND` binds tighter than `OR`; parentheses group; the words are case-insensitive; ASCII
//! whitespace separates. A term is a
//! scope as in `scopes` (a required scope): a wildcard in a term asks for the wildcard itself,
//! which only a held wildcard grants (`admin:*` is granted by a held `admin:*` or `*:*`, not by
//! `admin:read`), exactly as a required scope in `scopes`.

use std::fmt;

use super::scope::{Scope, ScopeError, Scopes};

/// Longest query, in characters.
pub const MAX_QUERY_LEN: usize = 1000;
/// Deepest nesting of parentheses.
pub const MAX_QUERY_DEPTH: usize = 20;

/// A parsed query. `All` and `Any` have at least two members, none of them of their own kind
/// (`a AND (b AND c)` is `All[a, b, c]`), so every query has one canonical form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeQuery {
    Scope(Scope),
    All(Vec<ScopeQuery>),
    Any(Vec<ScopeQuery>),
}

/// Why a query was refused. Messages name positions, never the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeQueryError {
    #[error("must be at most {MAX_QUERY_LEN} characters")]
    TooLong,
    #[error("parentheses may nest at most {MAX_QUERY_DEPTH} deep")]
    TooDeep,
    #[error("is empty")]
    Empty,
    #[error("expected a scope or `(` at character {0}")]
    ExpectedTerm(usize),
    #[error("expected `AND`, `OR` or `)` at character {0}")]
    ExpectedOperator(usize),
    #[error("unclosed `(` at character {0}")]
    Unclosed(usize),
    #[error("term at character {at} is not a scope: {error}")]
    InvalidScope { at: usize, error: ScopeError },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    Word(&'a str),
}

/// Splits on ASCII whitespace and parentheses; each token with its byte offset. Every
/// delimiter is ASCII, so every offset is a character boundary.
fn tokens(text: &str) -> Vec<(usize, Token<'_>)> {
    let mut out = Vec::with_capacity(text.len() / 4 + 2);
    let mut start: Option<usize> = None;
    let word = |out: &mut Vec<_>, from: usize, to: usize| {
        let w = &text[from..to];
        let token = if w.eq_ignore_ascii_case("and") {
            Token::And
        } else if w.eq_ignore_ascii_case("or") {
            Token::Or
        } else {
            Token::Word(w)
        };
        out.push((from, token));
    };
    for (i, b) in text.bytes().enumerate() {
        if b.is_ascii_whitespace() || b == b'(' || b == b')' {
            if let Some(from) = start.take() {
                word(&mut out, from, i);
            }
            match b {
                b'(' => out.push((i, Token::Open)),
                b')' => out.push((i, Token::Close)),
                _ => {}
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(from) = start {
        word(&mut out, from, text.len());
    }
    out
}

/// Adds `member` to an `All` (`all`) or `Any` being built, its members in place of it if it is
/// of the same kind.
fn push_flat(members: &mut Vec<ScopeQuery>, member: ScopeQuery, all: bool) {
    match member {
        ScopeQuery::All(inner) if all => members.extend(inner),
        ScopeQuery::Any(inner) if !all => members.extend(inner),
        other => members.push(other),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token<'a>)>,
    next: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).map(|(_, t)| *t)
    }

    /// The 1-based character position of the next token (or of the end), for messages: only
    /// an error pays for counting characters.
    fn position(&self) -> usize {
        let at = self
            .tokens
            .get(self.next)
            .map_or(self.text.len(), |(at, _)| *at);
        self.character(at)
    }

    /// The 1-based character position of byte offset `at`.
    fn character(&self, at: usize) -> usize {
        self.text[..at].chars().count() + 1
    }

    /// `any := all (OR all)*`
    fn any(&mut self, depth: usize) -> Result<ScopeQuery, ScopeQueryError> {
        let first = self.all(depth)?;
        if self.peek() != Some(Token::Or) {
            return Ok(first);
        }
        let mut members = Vec::with_capacity(4);
        push_flat(&mut members, first, false);
        while self.peek() == Some(Token::Or) {
            self.next += 1;
            let member = self.all(depth)?;
            push_flat(&mut members, member, false);
        }
        Ok(ScopeQuery::Any(members))
    }

    /// `all := term (AND term)*`
    fn all(&mut self, depth: usize) -> Result<ScopeQuery, ScopeQueryError> {
        let first = self.term(depth)?;
        if self.peek() != Some(Token::And) {
            return Ok(first);
        }
        let mut members = Vec::with_capacity(4);
        push_flat(&mut members, first, true);
        while self.peek() == Some(Token::And) {
            self.next += 1;
            let member = self.term(depth)?;
            push_flat(&mut members, member, true);
        }
        Ok(ScopeQuery::All(members))
    }

    /// `term := scope | ( any )`
    fn term(&mut self, depth: usize) -> Result<ScopeQuery, ScopeQueryError> {
        match self.peek() {
            Some(Token::Word(word)) => {
                let parsed = Scope::parse(word).map_err(|error| ScopeQueryError::InvalidScope {
                    at: self.position(),
                    error,
                });
                self.next += 1;
                parsed.map(ScopeQuery::Scope)
            }
            Some(Token::Open) => {
                if depth == MAX_QUERY_DEPTH {
                    return Err(ScopeQueryError::TooDeep);
                }
                let opened = self.tokens[self.next].0;
                self.next += 1;
                let inner = self.any(depth + 1)?;
                if self.peek() != Some(Token::Close) {
                    return Err(match self.peek() {
                        None => ScopeQueryError::Unclosed(self.character(opened)),
                        Some(_) => ScopeQueryError::ExpectedOperator(self.position()),
                    });
                }
                self.next += 1;
                Ok(inner)
            }
            _ => Err(ScopeQueryError::ExpectedTerm(self.position())),
        }
    }
}

impl ScopeQuery {
    /// Parses a query; at most [`MAX_QUERY_LEN`] characters and [`MAX_QUERY_DEPTH`] levels of
    /// parentheses. Recursion is bounded by the depth, so no input can exhaust the stack.
    pub fn parse(text: &str) -> Result<ScopeQuery, ScopeQueryError> {
        // Bytes first: only a longer text can have too many characters.
        if text.len() > MAX_QUERY_LEN && text.chars().count() > MAX_QUERY_LEN {
            return Err(ScopeQueryError::TooLong);
        }
        let tokens = tokens(text);
        if tokens.is_empty() {
            return Err(ScopeQueryError::Empty);
        }
        let mut parser = Parser {
            text,
            tokens,
            next: 0,
        };
        let query = parser.any(0)?;
        if parser.next < parser.tokens.len() {
            return Err(ScopeQueryError::ExpectedOperator(parser.position()));
        }
        Ok(query)
    }

    /// Whether `held` satisfies the query.
    pub fn is_granted_by(&self, held: &Scopes) -> bool {
        match self {
            ScopeQuery::Scope(scope) => held.grants(scope),
            ScopeQuery::All(members) => members.iter().all(|m| m.is_granted_by(held)),
            ScopeQuery::Any(members) => members.iter().any(|m| m.is_granted_by(held)),
        }
    }

    /// The scopes `held` lacks, or `None` when the query is satisfied. For an `OR` nothing of
    /// which holds, those of its first branch; for an `AND`, those of every failing member.
    pub fn missing(&self, held: &Scopes) -> Option<Vec<Scope>> {
        let mut missing = Vec::new();
        if self.collect_missing(held, &mut missing) {
            return None;
        }
        missing.sort_unstable();
        missing.dedup();
        Some(missing)
    }

    /// Whether the query holds; if not, pushes what is missing.
    fn collect_missing(&self, held: &Scopes, missing: &mut Vec<Scope>) -> bool {
        match self {
            ScopeQuery::Scope(scope) => {
                let granted = held.grants(scope);
                if !granted {
                    missing.push(scope.clone());
                }
                granted
            }
            // Every member, not only up to the first failing one: all of what is missing.
            ScopeQuery::All(members) => {
                let mut granted = true;
                for member in members {
                    granted &= member.collect_missing(held, missing);
                }
                granted
            }
            ScopeQuery::Any(members) => {
                if self.is_granted_by(held) {
                    return true;
                }
                members[0].collect_missing(held, missing)
            }
        }
    }

    /// How deep its members nest (a scope is 1).
    pub fn depth(&self) -> usize {
        match self {
            ScopeQuery::Scope(_) => 1,
            ScopeQuery::All(m) | ScopeQuery::Any(m) => {
                1 + m.iter().map(ScopeQuery::depth).max().unwrap_or(0)
            }
        }
    }
}

/// The canonical form: `AND`/`OR` in capitals, single spaces, parentheses only where needed
/// (around an `OR` inside an `AND`). Parsing it gives the same query back.
impl fmt::Display for ScopeQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeQuery::Scope(scope) => f.write_str(scope.as_str()),
            ScopeQuery::All(members) => {
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    if matches!(member, ScopeQuery::Any(_)) {
                        write!(f, "({member})")?;
                    } else {
                        write!(f, "{member}")?;
                    }
                }
                Ok(())
            }
            ScopeQuery::Any(members) => {
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    write!(f, "{member}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn q(text: &str) -> ScopeQuery {
        ScopeQuery::parse(text).unwrap()
    }

    fn s(text: &str) -> ScopeQuery {
        ScopeQuery::Scope(Scope::parse(text).unwrap())
    }

    fn held(list: &[&str]) -> Scopes {
        Scopes::parse(list).unwrap()
    }

    fn names(scopes: Option<Vec<Scope>>) -> Option<Vec<String>> {
        scopes.map(|list| list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn and_binds_tighter_than_or_and_groups_flatten() {
        assert_eq!(
            q("a:r AND b:r OR c:r"),
            ScopeQuery::Any(vec![ScopeQuery::All(vec![s("a:r"), s("b:r")]), s("c:r")])
        );
        assert_eq!(
            q("a:r and (b:r or c:r)"),
            ScopeQuery::All(vec![s("a:r"), ScopeQuery::Any(vec![s("b:r"), s("c:r")])])
        );
        assert_eq!(
            q("((a:r)) AND (b:r AND c:r)"),
            ScopeQuery::All(vec![s("a:r"), s("b:r"), s("c:r")])
        );
        assert_eq!(q(" orders:read "), s("orders:read"));
        assert_eq!(
            q("orders:read AND (billing:read OR admin:*)").to_string(),
            "orders:read AND (billing:read OR admin:*)"
        );
        assert_eq!(q("(a:r OR b:r) OR c:r").to_string(), "a:r OR b:r OR c:r");
    }

    #[test]
    fn malformed_queries_are_refused_with_a_position() {
        let cases = [
            ("", ScopeQueryError::Empty),
            ("   ", ScopeQueryError::Empty),
            ("AND", ScopeQueryError::ExpectedTerm(1)),
            ("a:r AND", ScopeQueryError::ExpectedTerm(8)),
            ("a:r b:r", ScopeQueryError::ExpectedOperator(5)),
            ("(a:r", ScopeQueryError::Unclosed(1)),
            ("a:r)", ScopeQueryError::ExpectedOperator(4)),
            ("()", ScopeQueryError::ExpectedTerm(2)),
            ("(a:r b:r)", ScopeQueryError::ExpectedOperator(6)),
            (
                "a:r OR Bad",
                ScopeQueryError::InvalidScope {
                    at: 8,
                    error: ScopeError::MissingColon,
                },
            ),
        ];
        for (text, error) in cases {
            assert_eq!(ScopeQuery::parse(text), Err(error), "{text:?}");
        }
        let deep = format!("{}a:r{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(q(&deep), s("a:r"));
        let deeper = format!("{}a:r{}", "(".repeat(21), ")".repeat(21));
        assert_eq!(ScopeQuery::parse(&deeper), Err(ScopeQueryError::TooDeep));
        let long = vec!["a:r"; 250].join(" OR ");
        assert_eq!(long.len(), 1746);
        assert_eq!(ScopeQuery::parse(&long), Err(ScopeQueryError::TooLong));
        let longest = format!("{}:{}", "a".repeat(500), "b".repeat(499));
        assert!(matches!(
            ScopeQuery::parse(&longest),
            Err(ScopeQueryError::InvalidScope { .. })
        ));
    }

    #[test]
    fn a_query_is_granted_as_its_scopes_are() {
        let query = q("orders:read AND (billing:read OR admin:*)");
        assert!(query.is_granted_by(&held(&["orders:read", "billing:read"])));
        assert!(query.is_granted_by(&held(&["orders:*", "admin:*"])));
        assert!(query.is_granted_by(&held(&["*:*"])));
        // A wildcard term asks for the wildcard: one action of it is not enough.
        assert!(!query.is_granted_by(&held(&["orders:read", "admin:read"])));
        assert!(!query.is_granted_by(&held(&["billing:read"])));
        assert!(!query.is_granted_by(&Scopes::default()));
    }

    #[test]
    fn a_failed_query_names_what_its_first_failing_branch_lacks() {
        let query = q("orders:read AND (billing:read OR admin:*)");
        assert_eq!(
            names(query.missing(&held(&["orders:read", "billing:read"]))),
            None
        );
        assert_eq!(
            names(query.missing(&held(&["orders:read"]))),
            Some(vec!["billing:read".into()])
        );
        assert_eq!(
            names(query.missing(&Scopes::default())),
            Some(vec!["billing:read".into(), "orders:read".into()])
        );
        let either = q("a:r AND b:r OR c:r");
        assert_eq!(
            names(either.missing(&held(&["b:r"]))),
            Some(vec!["a:r".into()])
        );
        assert_eq!(names(either.missing(&held(&["c:r"]))), None);
    }

    /// `members` joined by AND (`all`) or OR, flattened as the parser does.
    fn joined(members: Vec<ScopeQuery>, all: bool) -> ScopeQuery {
        let mut flat = Vec::new();
        for member in members {
            push_flat(&mut flat, member, all);
        }
        if all {
            ScopeQuery::All(flat)
        } else {
            ScopeQuery::Any(flat)
        }
    }

    /// Canonical queries: members of `All`/`Any` are never of their own kind, at least two.
    fn query() -> impl Strategy<Value = ScopeQuery> {
        let scope = "(\\*|[a-z0-9_.-]{1,8}):(\\*|[a-z0-9_.-]{1,8})"
            .prop_map(|text| ScopeQuery::Scope(Scope::parse(&text).unwrap()));
        scope.prop_recursive(6, 48, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..4).prop_map(|m| joined(m, true)),
                prop::collection::vec(inner, 2..4).prop_map(|m| joined(m, false)),
            ]
        })
    }

    proptest! {
        #[test]
        fn printing_then_parsing_gives_the_query_back(query in query()) {
            let text = query.to_string();
            prop_assume!(text.chars().count() <= MAX_QUERY_LEN);
            prop_assert_eq!(ScopeQuery::parse(&text), Ok(query.clone()));
            // And the printed form is a fixed point.
            prop_assert_eq!(ScopeQuery::parse(&text).unwrap().to_string(), text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,1200}") {
            let _ = ScopeQuery::parse(&text);
        }

        #[test]
        fn query_like_text_never_panics_and_what_parses_round_trips(
            text in "([()]|AND |OR |and |a:b |c:\\* |\\*:\\* | |x){0,300}"
        ) {
            if let Ok(query) = ScopeQuery::parse(&text) {
                prop_assert!(query.depth() <= MAX_QUERY_DEPTH + 2);
                prop_assert_eq!(ScopeQuery::parse(&query.to_string()), Ok(query.clone()));
            }
        }

        #[test]
        fn missing_is_none_exactly_when_granted(query in query(), held in prop::collection::vec("(\\*|[a-c]):(\\*|[a-c])", 0..6)) {
            let held = Scopes::parse(&held).unwrap();
            prop_assert_eq!(query.missing(&held).is_none(), query.is_granted_by(&held));
        }
    }
}
