//! What one simulated request does: a fault name as written in scenarios and in the forcing
//! header, and its meaning for one provider, resolved against that provider's profile.

use std::fmt;

use crate::provider::Profile;

/// A misbehaviour beyond the contract, for the `chaos` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chaos {
    /// HTTP 200 with an HTML page where JSON was promised.
    Html,
    /// HTTP 200, JSON cut off halfway.
    Truncated,
    /// HTTP 200 with a body over 10 MiB.
    Huge,
    /// Headers, a first chunk, then nothing until shutdown or the stall limit.
    Stall,
    /// Headers, a first chunk, then the connection is cut.
    Drop,
    /// A normal success whose rate-limit and concurrency headers hold garbage.
    BadHeaders,
}

impl Chaos {
    const ALL: [(&'static str, Self); 6] = [
        ("html", Self::Html),
        ("truncated", Self::Truncated),
        ("huge", Self::Huge),
        ("stall", Self::Stall),
        ("drop", Self::Drop),
        ("bad_headers", Self::BadHeaders),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, chaos)| *chaos == self)
            .map_or("?", |(name, _)| name)
    }
}

/// A fault as written: `success`, `target:404`, `BLOCKED_BY_ANTIBOT`, `502`, `async`, `chaos:html`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultName {
    Success,
    /// The API succeeds; the target site answered this status.
    Target(u16),
    /// A structured error code from the provider's contract.
    Code(String),
    /// An HTTP status row of the provider's contract, without a code.
    Status(u16),
    /// Answer as an async job (AlterLab's 202 for slow targets; OmniScrape's async endpoint is
    /// always async, so there it means nothing more).
    Async,
    Chaos(Chaos),
}

/// A fault name that is not one, or names what the provider's contract does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("{0:?}: the target status must be 100..599")]
    TargetStatus(String),
    #[error("{text:?}: unknown chaos kind (known: {known})")]
    ChaosKind { text: String, known: String },
    #[error(
        "{0:?} is not a fault: use success, async, target:NNN, an error CODE or HTTP status \
         from the provider's contract, or chaos:KIND"
    )]
    NotAFault(String),
    #[error("{code} is not an error code of {provider}'s contract")]
    UnknownCode { code: String, provider: String },
    #[error("{status} is not an error status of {provider}'s contract")]
    UnknownStatus { status: u16, provider: String },
}

impl FaultName {
    /// # Errors
    /// A name that matches none of the forms, with the forms listed.
    pub fn parse(text: &str) -> Result<Self, FaultError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("success") {
            return Ok(Self::Success);
        }
        if text.eq_ignore_ascii_case("async") {
            return Ok(Self::Async);
        }
        if let Some(status) = text.strip_prefix("target:") {
            return match status.parse::<u16>() {
                Ok(status @ 100..=599) => Ok(Self::Target(status)),
                _ => Err(FaultError::TargetStatus(text.to_owned())),
            };
        }
        if let Some(kind) = text.strip_prefix("chaos:") {
            return Chaos::ALL
                .iter()
                .find(|(name, _)| *name == kind)
                .map(|(_, chaos)| Self::Chaos(*chaos))
                .ok_or_else(|| {
                    let names: Vec<&str> = Chaos::ALL.iter().map(|(name, _)| *name).collect();
                    FaultError::ChaosKind {
                        text: text.to_owned(),
                        known: names.join(", "),
                    }
                });
        }
        if let Ok(status) = text.parse::<u16>() {
            return Ok(Self::Status(status));
        }
        // Codes are spelled as each provider spells them: `BLOCKED_BY_ANTIBOT`, ScrapFly's
        // `ERR::THROTTLE::MAX_REQUEST_RATE_EXCEEDED`, Zyte's `/limits/over-user-limit`, Bright
        // Data's `reject_block`; never with spaces.
        if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Ok(Self::Code(text.to_owned()));
        }
        Err(FaultError::NotAFault(text.to_owned()))
    }
}

impl fmt::Display for FaultName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("success"),
            Self::Async => f.write_str("async"),
            Self::Target(status) => write!(f, "target:{status}"),
            Self::Code(code) => f.write_str(code),
            Self::Status(status) => write!(f, "{status}"),
            Self::Chaos(chaos) => write!(f, "chaos:{}", chaos.name()),
        }
    }
}

/// A fault made concrete for one provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// API success; the target answered `target_status`.
    Success {
        target_status: u16,
    },
    /// An API-level failure as the contract lists it.
    ApiError(ApiError),
    Async,
    Chaos(Chaos),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: Option<String>,
    pub message: String,
    /// The contract says this failure costs nothing (refunded, or failures are free).
    pub refunded: bool,
}

impl ApiError {
    /// The profile's row for `code` (preferring `status`), with its meaning and refund rule.
    ///
    /// # Errors
    /// The code is not in the profile's contract.
    pub fn from_code(
        profile: &Profile,
        code: &str,
        status: Option<u16>,
    ) -> Result<Self, FaultError> {
        let rule = profile
            .error_rule(code, status)
            .ok_or_else(|| FaultError::UnknownCode {
                code: code.to_owned(),
                provider: profile.display_name.clone(),
            })?;
        Ok(Self {
            status: rule.status,
            code: Some(code.to_owned()),
            message: rule.meaning.clone(),
            refunded: profile.billing.failures_free || rule.refunded,
        })
    }

    /// The profile's status row, without a code.
    ///
    /// # Errors
    /// The status is not an error row of the profile's contract.
    pub fn from_status(profile: &Profile, status: u16) -> Result<Self, FaultError> {
        let rule = profile
            .status_rule(status)
            .filter(|rule| rule.status >= 400)
            .ok_or_else(|| FaultError::UnknownStatus {
                status,
                provider: profile.display_name.clone(),
            })?;
        Ok(Self {
            status,
            code: None,
            message: rule.meaning.clone(),
            refunded: profile.billing.failures_free || rule.refunded,
        })
    }
}

impl Planned {
    /// # Errors
    /// The fault names a code or status the provider's contract does not have.
    pub fn resolve(profile: &Profile, name: &FaultName) -> Result<Self, FaultError> {
        Ok(match name {
            FaultName::Success => Self::Success { target_status: 200 },
            FaultName::Target(status) => Self::Success {
                target_status: *status,
            },
            FaultName::Code(code) => Self::ApiError(ApiError::from_code(profile, code, None)?),
            // A number is a status row, or else a code row spelled as one (Crawlbase's cb_status
            // `525`, which arrives inside an HTTP 200).
            FaultName::Status(status) => {
                Self::ApiError(ApiError::from_status(profile, *status).or_else(|error| {
                    ApiError::from_code(profile, &status.to_string(), None).map_err(|_| error)
                })?)
            }
            FaultName::Async => Self::Async,
            FaultName::Chaos(chaos) => Self::Chaos(*chaos),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::builtin_profiles;

    #[test]
    fn names_round_trip() {
        for text in [
            "success",
            "async",
            "target:404",
            "BLOCKED_BY_ANTIBOT",
            "502",
            "chaos:html",
            "chaos:bad_headers",
        ] {
            let name = FaultName::parse(text).unwrap();
            assert_eq!(name.to_string(), text);
        }
    }

    #[test]
    fn bad_names_are_rejected() {
        for text in [
            "",
            "target:99",
            "target:abc",
            "chaos:fire",
            "blocked by antibot",
            "target:",
        ] {
            assert!(FaultName::parse(text).is_err(), "{text} should not parse");
        }
    }

    #[test]
    fn codes_resolve_against_the_right_contract() {
        let profiles = builtin_profiles();
        let alterlab = profiles.get("alterlab").unwrap();
        let omniscrape = profiles.get("omniscrape").unwrap();
        let antibot = FaultName::parse("BLOCKED_BY_ANTIBOT").unwrap();
        let Planned::ApiError(error) = Planned::resolve(alterlab, &antibot).unwrap() else {
            panic!("expected an API error");
        };
        assert_eq!(error.status, 403);
        assert!(error.refunded);
        assert!(Planned::resolve(omniscrape, &antibot).is_err());
        let rate = FaultName::parse("RATE_LIMIT_EXCEEDED").unwrap();
        let Planned::ApiError(error) = Planned::resolve(alterlab, &rate).unwrap() else {
            panic!("expected an API error");
        };
        assert!(!error.refunded, "rate limits are not refunded");
        let Planned::ApiError(error) =
            Planned::resolve(omniscrape, &FaultName::Status(502)).unwrap()
        else {
            panic!("expected an API error");
        };
        assert!(error.refunded, "OmniScrape failures are free");
        assert!(Planned::resolve(omniscrape, &FaultName::Status(504)).is_err());
    }
}
