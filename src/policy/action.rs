//! What a rule's finding does: the one type both the rule table and the policy config name.

use serde::Deserialize;

/// What a rule's finding does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Reject the request.
    Deny,
    /// Admit it with a warning shown to the user (kubectl prints it).
    Warn,
    /// Admit it silently; logged and counted.
    Audit,
    /// Do not run the rule at all (no findings, no patches).
    Off,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Audit => "audit",
            Action::Off => "off",
        }
    }
}
