//! Scopes as a type: a typo in a scope cannot compile, and a set of them is
//! a bit set. Their text form (`blob:read`) is parsed once, at the edge
//! (a request body, a stored row), and written back the same way.

use std::fmt;

/// One permission a token can hold. Declared in the alphabetical order of
/// their names, which is the order sets of them are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    BlobRead,
    BlobWrite,
    EmailRead,
    EmailWrite,
    EnvRead,
    EnvWrite,
    Fetch,
    SqliteRead,
    SqliteWrite,
    UserRead,
    UserWrite,
    ValRead,
    ValWrite,
}

impl Scope {
    pub const ALL: [Scope; 13] = [
        Scope::BlobRead,
        Scope::BlobWrite,
        Scope::EmailRead,
        Scope::EmailWrite,
        Scope::EnvRead,
        Scope::EnvWrite,
        Scope::Fetch,
        Scope::SqliteRead,
        Scope::SqliteWrite,
        Scope::UserRead,
        Scope::UserWrite,
        Scope::ValRead,
        Scope::ValWrite,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::BlobRead => "blob:read",
            Scope::BlobWrite => "blob:write",
            Scope::EmailRead => "email:read",
            Scope::EmailWrite => "email:write",
            Scope::EnvRead => "env:read",
            Scope::EnvWrite => "env:write",
            Scope::Fetch => "fetch",
            Scope::SqliteRead => "sqlite:read",
            Scope::SqliteWrite => "sqlite:write",
            Scope::UserRead => "user:read",
            Scope::UserWrite => "user:write",
            Scope::ValRead => "val:read",
            Scope::ValWrite => "val:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Scope::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("no such scope: {text:?}")))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every scope's name, in the order sets are written in.
pub const ALL_SCOPES: [&str; 13] = {
    let mut names = [""; 13];
    let mut i = 0;
    while i < Scope::ALL.len() {
        names[i] = Scope::ALL[i].as_str();
        i += 1;
    }
    names
};

/// A val's calls get every scope but these unless its owner says otherwise.
const NOT_DEFAULT_FOR_VALS: [Scope; 3] = [Scope::ValWrite, Scope::UserWrite, Scope::EnvWrite];

/// A set of scopes, stored as a space-separated string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Scopes(u16);

impl Scopes {
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }

    pub fn val_default() -> Self {
        Scope::ALL
            .into_iter()
            .filter(|s| !NOT_DEFAULT_FOR_VALS.contains(s))
            .collect()
    }

    /// Parse a space- or comma-separated list, refusing unknown scopes.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_names(text.split([' ', ',']).filter(|s| !s.is_empty()))
    }

    /// Parse scope names, each one whole name (`""` or `"a b"` is none),
    /// refusing unknown ones.
    pub fn parse_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        names
            .into_iter()
            .map(|name| {
                Scope::parse(name).ok_or_else(|| {
                    format!(
                        "unknown scope `{name}`; known scopes: {}",
                        ALL_SCOPES.join(" ")
                    )
                })
            })
            .collect()
    }

    pub const fn none() -> Self {
        Self(0)
    }

    /// These scopes and `scope`.
    pub fn with(self, scope: Scope) -> Self {
        Self(self.0 | scope.bit())
    }

    /// The scopes held by both.
    pub fn intersect(&self, other: &Scopes) -> Self {
        Self(self.0 & other.0)
    }

    /// The first of these scopes that `held` lacks.
    pub fn first_missing_from(&self, held: &Scopes) -> Option<Scope> {
        self.iter().find(|s| !held.has(*s))
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Each scope's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.iter().map(|s| s.to_string()).collect()
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + use<> {
        let bits = self.0;
        Scope::ALL.into_iter().filter(move |s| bits & s.bit() != 0)
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_refuse_unknown() {
        let s = Scopes::parse("blob:read, env:read").unwrap();
        assert!(s.has(Scope::BlobRead) && s.has(Scope::EnvRead) && !s.has(Scope::BlobWrite));
        assert!(
            Scopes::parse("blob:admin")
                .unwrap_err()
                .contains("blob:admin")
        );
        let d = Scopes::val_default();
        assert!(d.has(Scope::EnvRead) && !d.has(Scope::EnvWrite) && !d.has(Scope::ValWrite));
    }

    #[test]
    fn a_set_writes_its_names_in_order_and_reads_back() {
        let s = Scopes::parse("val:read fetch blob:write").unwrap();
        assert_eq!(s.to_string(), "blob:write fetch val:read");
        assert_eq!(Scopes::parse(&s.to_string()).unwrap(), s);
        assert_eq!(Scopes::all().to_string(), ALL_SCOPES.join(" "));
        let mut sorted = ALL_SCOPES;
        sorted.sort();
        assert_eq!(sorted, ALL_SCOPES, "declared in alphabetical order");
    }
}
