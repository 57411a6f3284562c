//! Validated AWS names. Anything taken from an event and later passed to an AWS API, a
//! document parameter or an email goes through one of these types first, so a hostile string
//! in a name is refused at the edge with a typed error.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} characters long, the limit is {max}")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{kind} {shown:?} contains a character that is not allowed at position {position}")]
    BadCharacter {
        kind: &'static str,
        shown: String,
        position: usize,
    },
    #[error("{kind} {shown:?} does not have the expected form ({expected})")]
    BadForm {
        kind: &'static str,
        shown: String,
        expected: &'static str,
    },
}

/// At most this many characters of a rejected value are echoed back in an error.
const SHOWN: usize = 64;

fn shown(s: &str) -> String {
    s.chars().take(SHOWN).collect()
}

fn check_chars(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind });
    }
    let len = s.chars().count();
    if len > max {
        return Err(NameError::TooLong { kind, len, max });
    }
    if let Some((position, _)) = s.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        return Err(NameError::BadCharacter {
            kind,
            shown: shown(s),
            position,
        });
    }
    Ok(())
}

/// An EC2 instance id: `i-` followed by 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const KIND: &str = "instance id";
        check_chars(KIND, s, 19, |c| c.is_ascii_alphanumeric() || c == '-')?;
        let hex = s.strip_prefix("i-").ok_or_else(|| NameError::BadForm {
            kind: KIND,
            shown: shown(s),
            expected: "i- followed by 8 or 17 hex digits",
        })?;
        let ok = (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        if !ok {
            return Err(NameError::BadForm {
                kind: KIND,
                shown: shown(s),
                expected: "i- followed by 8 or 17 hex digits",
            });
        }
        Ok(InstanceId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An Auto Scaling group name. AWS allows almost any character; Vigil acts only on groups whose
/// names are made of letters, digits, space and `._-:/@+=`, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_chars("Auto Scaling group name", s, 255, |c| {
            c.is_ascii_alphanumeric() || " ._-:/@+=".contains(c)
        })?;
        if s.starts_with(' ') || s.ends_with(' ') {
            return Err(NameError::BadForm {
                kind: "Auto Scaling group name",
                shown: shown(s),
                expected: "no leading or trailing space",
            });
        }
        Ok(GroupName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A systemd service name on an instance, as the stack's restart document takes it: letters,
/// digits and `_.@-`, at most 64 characters, not starting with `-` (the document's
/// `allowedPattern` is the same, so a hostile name is refused twice before any shell sees it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ServiceName(String);

/// systemd unit types that are not services: restarting `poweroff.target` powers the host off.
const NOT_SERVICES: [&str; 10] = [
    "target",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// Services Vigil never restarts: the init system's own, the message bus, the SSM agent (the
/// only way back in).
const NEVER_RESTARTED: [&str; 4] = [
    "systemd-",
    "dbus-broker",
    "amazon-ssm-agent",
    "snap.amazon-ssm-agent",
];

/// The pattern the stack's SSM documents enforce on a service name.
pub const SERVICE_NAME_PATTERN: &str = "^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,63}$";

impl ServiceName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const KIND: &str = "service name";
        check_chars(KIND, s, 64, |c| {
            c.is_ascii_alphanumeric() || "_.@-".contains(c)
        })?;
        if s.starts_with('-') {
            return Err(NameError::BadForm {
                kind: KIND,
                shown: shown(s),
                expected: "not starting with -",
            });
        }
        // `poweroff.target` is a unit too: restarting it powers the host off.
        if let Some((_, suffix)) = s.rsplit_once('.')
            && NOT_SERVICES.contains(&suffix)
        {
            return Err(NameError::BadForm {
                kind: KIND,
                shown: shown(s),
                expected: "a service, not another kind of systemd unit",
            });
        }
        let unit = s.strip_suffix(".service").unwrap_or(s);
        if NEVER_RESTARTED.iter().any(|p| unit.starts_with(p)) || unit == "dbus" {
            return Err(NameError::BadForm {
                kind: KIND,
                shown: shown(s),
                expected: "not systemd's own units, D-Bus or the SSM agent",
            });
        }
        Ok(ServiceName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IAM user name: letters, digits and `+=,.@_-`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_chars("IAM user name", s, 64, |c| {
            c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
        })?;
        Ok(UserName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IAM access key id: `AKIA` or `ASIA` and 16 upper-case letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccessKeyId(String);

impl AccessKeyId {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const KIND: &str = "access key id";
        check_chars(KIND, s, 20, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        })?;
        if s.len() != 20 || !(s.starts_with("AKIA") || s.starts_with("ASIA")) {
            return Err(NameError::BadForm {
                kind: KIND,
                shown: shown(s),
                expected: "AKIA or ASIA followed by 16 letters or digits",
            });
        }
        Ok(AccessKeyId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A CodePipeline pipeline or stage name: letters, digits and `.@-_`, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PipelineName(String);

impl PipelineName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_chars("pipeline or stage name", s, 100, |c| {
            c.is_ascii_alphanumeric() || ".@-_".contains(c)
        })?;
        Ok(PipelineName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! name_impls {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
name_impls!(
    InstanceId,
    GroupName,
    ServiceName,
    UserName,
    AccessKeyId,
    PipelineName
);

/// Whether `s` reads as a Region name (`us-east-1`, `eu-central-2`, `us-gov-west-1`): lower-case
/// letters, digits and hyphens, at most 32 of them. What an event says is kept, or shown in a
/// link, only when it does.
pub fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A free-text value from an event (an alarm name, a reason) made safe to log and to show in an
/// email: control characters replaced, length capped.
pub fn display_text(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_instance(input: &str, ok: bool) {
        assert_eq!(InstanceId::parse(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn instance_ids() {
        check_instance("i-0abc12345def67890", true);
        check_instance("i-1234abcd", true);
        check_instance("i-1234abc", false);
        check_instance("i-1234ABCD", false);
        check_instance("i-1234abcd; rm -rf /", false);
        check_instance("", false);
        check_instance("sg-1234abcd", false);
    }

    #[test]
    fn group_names() {
        assert!(GroupName::parse("web-prod-asg").is_ok());
        assert!(GroupName::parse("eks:nodes/blue=1").is_ok());
        for bad in [
            "",
            " x",
            "a$(reboot)",
            "a`b`",
            "a\nb",
            "a;b",
            &"x".repeat(256),
        ] {
            assert!(GroupName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn service_names_are_services_vigil_may_restart() {
        for ok in [
            "nginx",
            "api.service",
            "php7.4-fpm",
            "getty@tty1.service",
            "app_2",
        ] {
            assert!(ServiceName::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "poweroff.target",
            "reboot.target",
            "rescue.target",
            "ssh.socket",
            "home.mount",
            "fstrim.timer",
            "systemd-logind",
            "systemd-journald.service",
            "dbus",
            "dbus.service",
            "dbus-broker.service",
            "amazon-ssm-agent",
            "snap.amazon-ssm-agent.amazon-ssm-agent.service",
            "-x",
            "a b",
        ] {
            assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deserialisation_validates() {
        let r: Result<InstanceId, _> = serde_json::from_str("\"i-12|rm\"");
        assert!(r.is_err());
        let r: GroupName = serde_json::from_str("\"web\"").unwrap();
        assert_eq!(r.as_str(), "web");
    }

    #[test]
    fn region_names_are_read_strictly() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-5",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in [
            "",
            "US-EAST-1",
            "us-east-1/../x",
            "us east 1",
            "-1",
            &"a".repeat(33),
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn display_text_strips_controls_and_caps() {
        assert_eq!(display_text("a\nb\u{1b}[31m", 100), "a b [31m");
        assert_eq!(display_text("abcdef", 3), "abc…");
    }
}
