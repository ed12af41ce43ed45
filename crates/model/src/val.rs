//! What a val is, as types: its kind and who may see it. Stored as text,
//! parsed once when a row is read.

use std::fmt;

/// Which export a component offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValKind {
    Http,
    Script,
    /// Run on a schedule.
    Cron,
    /// Called with each message sent to its address.
    Email,
    /// Interfaces of its own, for other vals to import; it is not run.
    Library,
}

impl ValKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValKind::Http => "http",
            ValKind::Script => "script",
            ValKind::Cron => "cron",
            ValKind::Email => "email",
            ValKind::Library => "library",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "http" => Some(ValKind::Http),
            "script" => Some(ValKind::Script),
            "cron" => Some(ValKind::Cron),
            "email" => Some(ValKind::Email),
            "library" => Some(ValKind::Library),
            _ => None,
        }
    }
}

impl fmt::Display for ValKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may see and call a val.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Privacy {
    /// Listed, and callable by anyone.
    Public,
    /// Callable by anyone who knows its name, not listed.
    Unlisted,
    /// Its owner's only.
    Private,
}

impl Privacy {
    pub const ALL: [Privacy; 3] = [Privacy::Public, Privacy::Unlisted, Privacy::Private];

    pub fn as_str(self) -> &'static str {
        match self {
            Privacy::Public => "public",
            Privacy::Unlisted => "unlisted",
            Privacy::Private => "private",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

impl fmt::Display for Privacy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Privacy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What started a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An HTTP request to an HTTP val.
    Http,
    /// A run of a script val.
    Run,
    /// Another val's call (`vals` import).
    Api,
    /// A due run of a cron val.
    Cron,
    /// A delivery of received mail to an email val.
    Email,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Run => "run",
            Trigger::Api => "api",
            Trigger::Cron => "cron",
            Trigger::Email => "email",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "http" => Some(Trigger::Http),
            "run" => Some(Trigger::Run),
            "api" => Some(Trigger::Api),
            "cron" => Some(Trigger::Cron),
            "email" => Some(Trigger::Email),
            _ => None,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
