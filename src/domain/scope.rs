//! Scopes (`resource:action`, with `*` wildcards on the held side) and the deny-by-default grant rules.

use std::fmt;

/// Longest allowed resource or action part.
pub const MAX_SCOPE_PART_LEN: usize = 64;
/// Longest allowed scope string.
pub const MAX_SCOPE_LEN: usize = 130;
/// Most scopes a key may hold.
pub const MAX_SCOPES: usize = 64;

/// Wildcard part: `keys:*` is every action on keys, `*:read` is read on every resource.
const WILDCARD: &str = "*";

/// Every management scope; a tenant's first root key holds all of them.
pub const ROOT_SCOPES: &[&str] = &[
    "keys:create",
    "keys:read",
    "keys:update",
    "keys:rotate",
    "keys:revoke",
    "keys:verify",
    "keyspaces:*",
    "audit:read",
    "root_keys:*",
    "webhooks:*",
    "roles:*",
];

/// Why a scope or scope list was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope is longer than {MAX_SCOPE_LEN} characters")]
    TooLong,
    #[error("scope must have the form `resource:action`")]
    MissingColon,
    #[error("scope resource must be `*` or 1 to {MAX_SCOPE_PART_LEN} characters of [a-z0-9_.-]")]
    InvalidResource,
    #[error("scope action must be `*` or 1 to {MAX_SCOPE_PART_LEN} characters of [a-z0-9_.-]")]
    InvalidAction,
    #[error("at most {MAX_SCOPES} scopes are allowed")]
    TooMany,
}

/// One validated `resource:action` scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ScopeError> {
        if s.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let colon = s.bytes().position(|b| b == b':');
        let (resource, action) = colon
            .map(|at| (&s[..at], &s[at + 1..]))
            .ok_or(ScopeError::MissingColon)?;
        if !is_valid_part(resource) {
            return Err(ScopeError::InvalidResource);
        }
        if !is_valid_part(action) {
            return Err(ScopeError::InvalidAction);
        }
        Ok(Scope(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn resource(&self) -> &str {
        self.parts().0
    }

    pub fn action(&self) -> &str {
        self.parts().1
    }

    /// Whether holding `self` grants `required`. Wildcards count only on the held side:
    /// a held `*` matches any part, a required `*` is matched only by a held `*`.
    pub fn grants(&self, required: &Scope) -> bool {
        // Without a wildcard, a scope grants exactly itself.
        if self.0 == required.0 {
            return true;
        }
        if !self.has_wildcard() {
            return false;
        }
        let (held_resource, held_action) = self.parts();
        let (req_resource, req_action) = required.parts();
        part_grants(held_resource, req_resource) && part_grants(held_action, req_action)
    }

    /// Whether either part is `*` (a byte scan: scopes are short and ASCII).
    fn has_wildcard(&self) -> bool {
        self.0.as_bytes().contains(&b'*')
    }

    fn parts(&self) -> (&str, &str) {
        let at = self
            .0
            .bytes()
            .position(|b| b == b':')
            .expect("a parsed Scope always contains `:`");
        (&self.0[..at], &self.0[at + 1..])
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn is_valid_part(part: &str) -> bool {
    part == WILDCARD
        || ((1..=MAX_SCOPE_PART_LEN).contains(&part.len())
            && part.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
            }))
}

fn part_grants(held: &str, required: &str) -> bool {
    held == WILDCARD || held == required
}

/// A key's scopes: sorted, without duplicates, at most [`MAX_SCOPES`]. Empty grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct Scopes(Vec<Scope>, Wildcards);

/// The held scopes with a `*` (few, usually none), apart: a grant looks among them only after
/// the binary search for the scope itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Wildcards(Vec<Scope>);

/// An array of strings, written from the held scopes without copying them.
impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|scope| scope.0.as_str()))
    }
}

impl TryFrom<Vec<String>> for Scopes {
    type Error = ScopeError;
    fn try_from(raw: Vec<String>) -> Result<Self, ScopeError> {
        Scopes::parse(&raw)
    }
}

impl Scopes {
    /// The stored form: a JSON array of scope strings.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.to_strings()).unwrap_or_else(|_| "[]".into())
    }

    /// Reads the stored form; anything unreadable grants nothing.
    pub fn from_json(text: &str) -> Scopes {
        let raw: Vec<String> = serde_json::from_str(text).unwrap_or_default();
        Scopes::parse(&raw).unwrap_or_default()
    }

    /// Parses a list of scope strings. More than [`MAX_SCOPES`] inputs (duplicates included)
    /// are refused before the rest is read.
    pub fn parse<I, S>(scopes: I) -> Result<Scopes, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Vec::new();
        for s in scopes {
            if parsed.len() == MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            parsed.push(Scope::parse(s.as_ref())?);
        }
        Ok(Self::from_sorted(parsed))
    }

    /// Builds a set from scopes already parsed.
    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> Result<Scopes, ScopeError> {
        let scopes: Vec<Scope> = scopes.into_iter().take(MAX_SCOPES + 1).collect();
        if scopes.len() > MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        Ok(Self::from_sorted(scopes))
    }

    /// The scopes of every set together: a key's effective scopes (its own plus its roles').
    /// Not bounded by [`MAX_SCOPES`]; each set is.
    pub fn union<'a>(sets: impl IntoIterator<Item = &'a Scopes>) -> Scopes {
        Self::from_sorted(sets.into_iter().flat_map(|s| s.0.iter().cloned()).collect())
    }

    /// Reads effective scopes back (from a cached record): each scope checked, the count not.
    pub fn deserialize_unbounded<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Scopes, D::Error> {
        let raw = <Vec<String> as serde::Deserialize>::deserialize(deserializer)?;
        let parsed = raw
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(serde::de::Error::custom)?;
        Ok(Self::from_sorted(parsed))
    }

    /// Every scope in [`ROOT_SCOPES`].
    pub fn root() -> Scopes {
        Scopes::parse(ROOT_SCOPES).expect("ROOT_SCOPES are valid scopes (checked by a test)")
    }

    fn from_sorted(mut scopes: Vec<Scope>) -> Scopes {
        scopes.sort_unstable();
        scopes.dedup();
        let wildcards = Wildcards(
            scopes
                .iter()
                .filter(|s| s.has_wildcard())
                .cloned()
                .collect(),
        );
        Scopes(scopes, wildcards)
    }

    /// Whether any held scope grants `required`: itself (found by binary search, the set is
    /// sorted), or a held wildcard.
    pub fn grants(&self, required: &Scope) -> bool {
        self.0.binary_search(required).is_ok() || self.1.0.iter().any(|held| held.grants(required))
    }

    /// Whether every scope in `required` is granted. An empty `required` asks for nothing
    /// and is granted.
    pub fn grants_all(&self, required: &[Scope]) -> bool {
        required.iter().all(|r| self.grants(r))
    }

    /// Whether `holder` grants every scope in `self`: a key may only mint keys within its own power.
    pub fn is_subset_of(&self, holder: &Scopes) -> bool {
        holder.grants_all(&self.0)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap()
    }

    fn scopes(list: &[&str]) -> Scopes {
        Scopes::parse(list).unwrap()
    }

    #[test]
    fn valid_scopes_parse() {
        for s in [
            "keys:read",
            "*:*",
            "keys:*",
            "*:read",
            "a.b-c_d:x.y-z_0",
            "0:9",
        ] {
            assert_eq!(scope(s).as_str(), s);
            assert_eq!(scope(s).to_string(), s);
        }
        let longest = format!("{}:{}", "a".repeat(64), "b".repeat(64));
        assert_eq!(scope(&longest).resource().len(), 64);
        assert_eq!(scope("keys:read").resource(), "keys");
        assert_eq!(scope("keys:read").action(), "read");
    }

    #[test]
    fn invalid_scopes_are_refused() {
        let cases = [
            ("", ScopeError::MissingColon),
            ("keys", ScopeError::MissingColon),
            (":read", ScopeError::InvalidResource),
            ("keys:", ScopeError::InvalidAction),
            ("Keys:read", ScopeError::InvalidResource),
            ("keys:Read", ScopeError::InvalidAction),
            ("keys:read:all", ScopeError::InvalidAction),
            ("ke ys:read", ScopeError::InvalidResource),
            ("keys:re*", ScopeError::InvalidAction),
            ("k*:read", ScopeError::InvalidResource),
            ("**:read", ScopeError::InvalidResource),
            ("clés:read", ScopeError::InvalidResource),
            (" keys:read", ScopeError::InvalidResource),
            ("keys:read\n", ScopeError::InvalidAction),
        ];
        for (input, err) in cases {
            assert_eq!(Scope::parse(input), Err(err), "{input:?}");
        }
        let long_part = format!("{}:b", "a".repeat(65));
        assert_eq!(Scope::parse(&long_part), Err(ScopeError::InvalidResource));
        let long_action = format!("a:{}", "b".repeat(65));
        assert_eq!(Scope::parse(&long_action), Err(ScopeError::InvalidAction));
        assert_eq!(Scope::parse(&"a".repeat(131)), Err(ScopeError::TooLong));
    }

    #[test]
    fn scopes_are_sorted_and_deduped() {
        let s = scopes(&["keys:read", "audit:read", "keys:read", "*:*"]);
        assert_eq!(s.to_strings(), ["*:*", "audit:read", "keys:read"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().count(), 3);
        assert_eq!(
            s,
            Scopes::parse(vec![
                "*:*".to_owned(),
                "keys:read".into(),
                "audit:read".into()
            ])
            .unwrap()
        );
    }

    #[test]
    fn scope_count_is_limited() {
        let many: Vec<String> = (0..MAX_SCOPES).map(|i| format!("r{i}:a")).collect();
        assert_eq!(Scopes::parse(&many).unwrap().len(), MAX_SCOPES);
        let too_many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("r{i}:a")).collect();
        assert_eq!(Scopes::parse(&too_many), Err(ScopeError::TooMany));
        assert_eq!(
            Scopes::from_scopes(too_many.iter().map(|s| scope(s))),
            Err(ScopeError::TooMany)
        );
        assert_eq!(
            Scopes::parse(["ok:a", "bad"]),
            Err(ScopeError::MissingColon)
        );
    }

    #[test]
    fn literal_grants_only_itself() {
        let held = scopes(&["keys:read"]);
        assert!(held.grants(&scope("keys:read")));
        assert!(!held.grants(&scope("keys:create")));
        assert!(!held.grants(&scope("audit:read")));
        assert!(!held.grants(&scope("keys:*")));
        assert!(!held.grants(&scope("*:read")));
        assert!(!held.grants(&scope("*:*")));
    }

    #[test]
    fn held_action_wildcard_grants_every_action_on_its_resource() {
        let held = scopes(&["keyspaces:*"]);
        assert!(held.grants(&scope("keyspaces:create")));
        assert!(held.grants(&scope("keyspaces:*")));
        assert!(!held.grants(&scope("keys:create")));
        assert!(!held.grants(&scope("*:create")));
        assert!(!held.grants(&scope("*:*")));
    }

    #[test]
    fn held_resource_wildcard_grants_its_action_everywhere() {
        let held = scopes(&["*:read"]);
        assert!(held.grants(&scope("keys:read")));
        assert!(held.grants(&scope("audit:read")));
        assert!(held.grants(&scope("*:read")));
        assert!(!held.grants(&scope("keys:create")));
        assert!(!held.grants(&scope("keys:*")));
    }

    #[test]
    fn full_wildcard_grants_everything() {
        let held = scopes(&["*:*"]);
        for r in ["keys:read", "keys:*", "*:read", "*:*", "root_keys:create"] {
            assert!(held.grants(&scope(r)), "{r}");
        }
    }

    #[test]
    fn empty_scopes_grant_nothing() {
        let none = Scopes::default();
        assert!(none.is_empty());
        for r in ["keys:read", "keys:*", "*:*"] {
            assert!(!none.grants(&scope(r)));
        }
        assert!(!none.grants_all(&[scope("keys:read")]));
        assert_eq!(Scopes::parse(Vec::<&str>::new()).unwrap(), none);
    }

    #[test]
    fn grants_all_needs_every_scope() {
        let held = scopes(&["keys:read", "audit:*"]);
        assert!(held.grants_all(&[scope("keys:read"), scope("audit:read")]));
        assert!(!held.grants_all(&[scope("keys:read"), scope("keys:create")]));
        assert!(held.grants_all(&[]));
    }

    #[test]
    fn subset_means_the_holder_grants_each_scope() {
        let root = Scopes::root();
        assert!(scopes(&["keys:read", "keyspaces:create", "root_keys:*"]).is_subset_of(&root));
        assert!(Scopes::default().is_subset_of(&root));
        assert!(root.is_subset_of(&root));
        assert!(!scopes(&["*:*"]).is_subset_of(&root));
        assert!(!scopes(&["keys:*"]).is_subset_of(&root));
        assert!(!scopes(&["*:read"]).is_subset_of(&root));
        assert!(!scopes(&["keys:read", "billing:read"]).is_subset_of(&root));
        assert!(root.is_subset_of(&scopes(&["*:*"])));
        assert!(!scopes(&["keys:read"]).is_subset_of(&Scopes::default()));
    }

    #[test]
    fn a_union_holds_every_set_and_may_exceed_the_bound() {
        let a: Vec<String> = (0..MAX_SCOPES).map(|i| format!("a{i}:x")).collect();
        let b: Vec<String> = (0..MAX_SCOPES).map(|i| format!("b{i}:x")).collect();
        let (a, b) = (Scopes::parse(&a).unwrap(), Scopes::parse(&b).unwrap());
        let both = Scopes::union([&a, &b, &a]);
        assert_eq!(both.len(), 2 * MAX_SCOPES);
        assert!(both.grants(&scope("b3:x")) && both.grants(&scope("a0:x")));
        let json = serde_json::to_string(&both).unwrap();
        let mut de = serde_json::Deserializer::from_str(&json);
        assert_eq!(Scopes::deserialize_unbounded(&mut de).unwrap(), both);
    }

    #[test]
    fn root_scopes_are_valid_and_complete() {
        let root = Scopes::root();
        assert_eq!(root.len(), ROOT_SCOPES.len());
        for s in ROOT_SCOPES {
            assert!(root.grants(&scope(s)), "{s}");
        }
    }
}
