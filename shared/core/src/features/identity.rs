//! Identity features: CloudTrail API calls and console sign-ins against the principal's own
//! history (novelty of source network, user agent, API, region and hour; failed-login and
//! AccessDenied bursts; MFA absence; sensitive API calls), and GuardDuty findings. Pure.

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ApiCall, Principal, Signal, SignalKind};

/// What an attacker achieves with a call, for the calls that matter (MITRE ATT&CK tactics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tactic {
    InitialAccess,
    Execution,
    Persistence,
    PrivilegeEscalation,
    DefenceEvasion,
    CredentialAccess,
    Discovery,
    LateralMovement,
    Exfiltration,
    Impact,
}

impl Tactic {
    pub const ALL: [Tactic; 10] = [
        Tactic::InitialAccess,
        Tactic::Execution,
        Tactic::Persistence,
        Tactic::PrivilegeEscalation,
        Tactic::DefenceEvasion,
        Tactic::CredentialAccess,
        Tactic::Discovery,
        Tactic::LateralMovement,
        Tactic::Exfiltration,
        Tactic::Impact,
    ];
}

fn request_has(call: &ApiCall, needle: &str) -> bool {
    call.request.iter().any(|r| r.contains(needle))
}

fn request_value<'a>(call: &'a ApiCall, key: &str) -> Option<&'a str> {
    call.request
        .iter()
        .find_map(|r| r.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

/// Whether a security-group change allows a prefix of length 0 (the whole internet), IPv4 or
/// IPv6, whatever address is written before the `/0`.
fn opens_to_world(call: &ApiCall) -> bool {
    call.request.iter().any(|r| {
        r.split_once('=').is_some_and(|(k, v)| {
            k.to_ascii_lowercase().contains("cidr") && v.trim().ends_with("/0")
        })
    })
}

/// Whether RunInstances asks for GPU or ML-accelerator instance families.
fn launches_accelerated(call: &ApiCall) -> bool {
    const FAMILIES: [&str; 6] = ["p2", "p3", "p4", "p5", "g4", "g5"];
    const PREFIXES: [&str; 4] = ["inf", "trn", "dl", "g6"];
    request_value(call, "instanceType").is_some_and(|t| {
        let family = t.split('.').next().unwrap_or("");
        FAMILIES.iter().any(|f| family.starts_with(f))
            || PREFIXES.iter().any(|p| family.starts_with(p))
    })
}

/// The tactic a sensitive API call serves, or `None` for routine calls.
pub fn sensitive(call: &ApiCall) -> Option<Tactic> {
    use Tactic::*;
    let service = call.event_source.trim_end_matches(".amazonaws.com");
    let name = call.event_name.as_str();
    // Lambda's event names carry an API version suffix (UpdateFunctionCode20150331v2).
    let lambda = |prefix: &str| service == "lambda" && name.starts_with(prefix);
    let tactic = match (service, name) {
        ("cloudtrail", "StopLogging" | "DeleteTrail" | "PutEventSelectors" | "UpdateTrail") => {
            DefenceEvasion
        }
        (
            "guardduty",
            "DeleteDetector"
            | "DisassociateFromMasterAccount"
            | "DisassociateFromAdministratorAccount"
            | "DeleteMembers"
            | "CreateIPSet"
            | "UpdateIPSet",
        ) => DefenceEvasion,
        ("guardduty", "UpdateDetector") if request_has(call, "enable=false") => DefenceEvasion,
        ("ec2", "DeleteFlowLogs") => DefenceEvasion,
        (
            "route53resolver",
            "DeleteResolverQueryLogConfig" | "DisassociateResolverQueryLogConfig",
        ) => DefenceEvasion,
        ("organizations", "LeaveOrganization") => DefenceEvasion,
        (
            "config",
            "StopConfigurationRecorder" | "DeleteConfigurationRecorder" | "DeleteDeliveryChannel",
        ) => DefenceEvasion,
        ("securityhub", "DisableSecurityHub" | "BatchUpdateFindings") => DefenceEvasion,
        ("logs", "DeleteLogGroup" | "DeleteLogStream") => DefenceEvasion,
        (
            "iam",
            "CreateUser"
            | "CreateRole"
            | "UpdateAssumeRolePolicy"
            | "CreateLoginProfile"
            | "CreateServiceLinkedRole",
        ) => Persistence,
        ("iam", "CreateAccessKey") => {
            // A key for oneself is routine rotation; a key for someone else is a backdoor.
            match (
                request_value(call, "userName"),
                call.principal.name.as_deref(),
            ) {
                (Some(target), Some(me)) if target == me => return None,
                (None, _) => return None,
                _ => Persistence,
            }
        }
        ("iam", "UpdateLoginProfile") => PrivilegeEscalation,
        (
            "iam",
            "AttachUserPolicy"
            | "AttachRolePolicy"
            | "AttachGroupPolicy"
            | "PutUserPolicy"
            | "PutRolePolicy"
            | "PutGroupPolicy"
            | "AddUserToGroup"
            | "CreatePolicyVersion"
            | "SetDefaultPolicyVersion",
        ) => PrivilegeEscalation,
        ("rolesanywhere", "CreateTrustAnchor" | "CreateProfile") => Persistence,
        ("sts", "GetFederationToken") => Persistence,
        _ if lambda("UpdateFunctionCode")
            || lambda("PublishLayerVersion")
            || lambda("UpdateFunctionConfiguration")
            || lambda("AddPermission")
            || lambda("CreateFunction") =>
        {
            Persistence
        }
        ("ec2", "ModifySnapshotAttribute") if request_has(call, "createVolumePermission") => {
            Exfiltration
        }
        ("ec2", "ModifyImageAttribute") if request_has(call, "launchPermission") => Exfiltration,
        ("rds", "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute") => Exfiltration,
        ("ec2", "AuthorizeSecurityGroupIngress") if opens_to_world(call) => Exfiltration,
        // Accelerated instances launched by a principal: the classic cryptojacking move.
        ("ec2", "RunInstances") if launches_accelerated(call) => Impact,
        (
            "s3",
            "PutBucketPolicy"
            | "PutBucketAcl"
            | "DeleteBucketPublicAccessBlock"
            | "PutBucketPublicAccessBlock",
        ) => Exfiltration,
        ("ec2", "GetPasswordData") => CredentialAccess,
        ("secretsmanager", "GetSecretValue" | "BatchGetSecretValue") => CredentialAccess,
        ("ssm", "GetParameter" | "GetParameters" | "GetParametersByPath")
            if request_has(call, "withDecryption=true") =>
        {
            CredentialAccess
        }
        ("ssm", "SendCommand" | "StartSession") => Execution,
        ("ec2", "ModifyInstanceAttribute") if request_has(call, "userData") => Execution,
        ("ec2", "DescribeInstanceAttribute") if request_has(call, "userData") => Discovery,
        ("ec2-instance-connect", "SendSSHPublicKey" | "SendSerialConsoleSSHPublicKey") => {
            LateralMovement
        }
        ("bedrock", "InvokeModel" | "InvokeModelWithResponseStream") => Impact,
        ("iam", "DeleteRolePolicy" | "DeleteUserPolicy") => return None,
        _ => return None,
    };
    Some(tactic)
}

/// A principal's history: what it usually does, bounded in size and age so it fits one
/// DynamoDB item and forgets what it has not seen for [`MAX_AGE_DAYS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PrincipalProfile {
    /// Observations folded in so far.
    pub seen: u64,
    pub networks: Vec<Seen>,
    pub agents: Vec<Seen>,
    pub apis: Vec<Seen>,
    pub regions: Vec<Seen>,
    /// Hours of the day (UTC) the principal has been active in, as a bit set.
    pub hours: u32,
    /// Recent failed sign-ins and AccessDenied errors (times), for bursts.
    pub failures: Vec<DateTime<Utc>>,
    pub denials: Vec<DateTime<Utc>>,
    /// Correlation rules' windows grouped on this history (`features::correlation`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub correlations: super::correlation::Windows,
}

/// A value and when it was first and last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub value: String,
    pub last: DateTime<Utc>,
    /// `None` in profiles stored before first sightings were kept: treated as long ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<DateTime<Utc>>,
}

/// Entries kept per set; the least recently seen go first.
pub const MAX_ENTRIES: usize = 48;
/// Entries not seen for this long are forgotten.
pub const MAX_AGE_DAYS: i64 = 30;
/// The window of a failure burst, in minutes, and the most failures remembered.
pub const BURST_MINUTES: i64 = 15;
const MAX_FAILURES: usize = 64;
/// Observations before novelty means anything: a new principal's first calls are all "new".
pub const WARM_UP: u64 = 20;

/// Minutes a newly seen value stays "new": an intruder's session from a new network is new
/// for its whole length, not only for its first call.
pub const NOVELTY_MINUTES: i64 = 60;

/// Longest value a set keeps (characters).
const MAX_VALUE_CHARS: usize = 256;

/// A value as a set keeps it: its first [`MAX_VALUE_CHARS`] characters, so a longer one (a
/// verbose SDK's user agent) is found again rather than always new.
fn kept(value: &str) -> &str {
    value
        .char_indices()
        .nth(MAX_VALUE_CHARS)
        .map_or(value, |(i, _)| &value[..i])
}

/// Whether `value` is new to the set at `at`: never seen, or first seen within
/// [`NOVELTY_MINUTES`].
fn is_new(set: &[Seen], value: &str, at: DateTime<Utc>) -> bool {
    let value = kept(value);
    match set.iter().find(|s| s.value == value) {
        None => true,
        Some(s) => s
            .first
            .is_some_and(|first| at - first < chrono::Duration::minutes(NOVELTY_MINUTES)),
    }
}

fn remember(set: &mut Vec<Seen>, value: &str, at: DateTime<Utc>) {
    let value = kept(value);
    if value.is_empty() {
        return;
    }
    if let Some(s) = set.iter_mut().find(|s| s.value == value) {
        s.last = s.last.max(at);
        return;
    }
    if set.len() >= MAX_ENTRIES
        && let Some(oldest) = set
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.last)
            .map(|(i, _)| i)
    {
        set.swap_remove(oldest);
    }
    set.push(Seen {
        value: value.to_owned(),
        last: at,
        first: Some(at),
    });
}

/// The /24 (IPv4) or /48 (IPv6) network of an address; service names pass through.
pub fn network(ip: &str) -> String {
    if let Ok(std::net::IpAddr::V4(v4)) = ip.parse::<std::net::IpAddr>() {
        let o = v4.octets();
        return format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    }
    if let Ok(std::net::IpAddr::V6(v6)) = ip.parse::<std::net::IpAddr>() {
        let s = v6.segments();
        return format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]);
    }
    // Anonymised or service callers (`ec2.amazonaws.com`): the value itself.
    ip.to_owned()
}

/// The identity fields of a signal, when it has any.
struct Activity<'a> {
    principal: &'a Principal,
    source_ip: &'a str,
    user_agent: &'a str,
    api: String,
    region: &'a str,
    failed_sign_in: bool,
    denied: bool,
}

fn activity(signal: &Signal) -> Option<Activity<'_>> {
    match &signal.kind {
        SignalKind::ApiCall(c) => Some(Activity {
            principal: &c.principal,
            source_ip: &c.source_ip,
            user_agent: &c.user_agent,
            api: format!("{}:{}", c.event_source, c.event_name),
            region: &c.region,
            failed_sign_in: false,
            denied: c
                .error_code
                .as_deref()
                .is_some_and(|e| e.contains("AccessDenied") || e.contains("Unauthorized")),
        }),
        SignalKind::ConsoleSignIn {
            principal,
            success,
            source_ip,
            user_agent,
            ..
        } => Some(Activity {
            principal,
            source_ip,
            user_agent,
            api: "signin:ConsoleLogin".to_owned(),
            region: "",
            failed_sign_in: !success,
            denied: false,
        }),
        _ => None,
    }
}

/// What a CloudTrail call or sign-in did and from where: its API (a sign-in's outcome
/// included) and its source network. Two events with the same act are the same thing done
/// again (one more guessed password, one more page of a listing); `None` for other signals.
pub fn act(signal: &Signal) -> Option<String> {
    let a = activity(signal)?;
    let outcome = if a.failed_sign_in {
        ":failed"
    } else if a.denied {
        ":denied"
    } else {
        ""
    };
    Some(format!("{}{outcome}@{}", a.api, network(a.source_ip)))
}

impl PrincipalProfile {
    /// Folds a signal into the history (a no-op for signals without a principal).
    pub fn observe(&mut self, signal: &Signal) {
        let Some(a) = activity(signal) else { return };
        let at = signal.observed_at;
        self.seen += 1;
        remember(&mut self.networks, &network(a.source_ip), at);
        remember(&mut self.agents, a.user_agent, at);
        remember(&mut self.apis, &a.api, at);
        remember(&mut self.regions, a.region, at);
        self.hours |= 1 << at.hour();
        if a.failed_sign_in {
            self.failures.push(at);
        }
        if a.denied {
            self.denials.push(at);
        }
        self.forget(at);
    }

    /// Drops what is older than [`MAX_AGE_DAYS`] (or the burst window) and caps the lists.
    pub fn forget(&mut self, now: DateTime<Utc>) {
        let cutoff = now - chrono::Duration::days(MAX_AGE_DAYS);
        for set in [
            &mut self.networks,
            &mut self.agents,
            &mut self.apis,
            &mut self.regions,
        ] {
            set.retain(|s| s.last >= cutoff);
        }
        let burst = now - chrono::Duration::minutes(BURST_MINUTES);
        for times in [&mut self.failures, &mut self.denials] {
            times.retain(|t| *t >= burst);
            let excess = times.len().saturating_sub(MAX_FAILURES);
            times.drain(..excess);
        }
    }
}

/// The names of [`super::IDENTITY_V2`], in order. `new_*`: never seen for this principal, or
/// first seen less than [`NOVELTY_MINUTES`] ago.
pub const NAMES: [&str; 22] = [
    "new_network",
    "new_user_agent",
    "new_api",
    "new_region",
    "new_hour",
    "history",
    "failed_sign_ins_15m",
    "access_denied_15m",
    "mfa_absent",
    "error",
    "read_only",
    "root",
    "tactic_initial_access",
    "tactic_execution",
    "tactic_persistence",
    "tactic_privilege_escalation",
    "tactic_defence_evasion",
    "tactic_credential_access",
    "tactic_discovery",
    "tactic_lateral_movement",
    "tactic_exfiltration",
    "tactic_impact",
];

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// Computes [`NAMES`] for a CloudTrail signal against the principal's history *before* it.
/// Returns `None` for signals without a principal.
pub fn identity(signal: &Signal, history: &PrincipalProfile) -> Option<[f64; 22]> {
    let a = activity(signal)?;
    let at = signal.observed_at;
    // Novelty only counts once the principal has a history to be novel against.
    let warm = history.seen >= WARM_UP;
    let novel = |set: &[Seen], v: &str| flag(warm && !v.is_empty() && is_new(set, v, at));
    let burst = at - chrono::Duration::minutes(BURST_MINUTES);
    let recent =
        |ts: &[DateTime<Utc>]| ts.iter().filter(|t| **t >= burst && **t <= at).count() as f64;
    let (mfa_absent, error, read_only, tactic) = match &signal.kind {
        SignalKind::ConsoleSignIn {
            mfa_used, success, ..
        } => (
            flag(*mfa_used == Some(false)),
            flag(!success),
            0.0,
            (*mfa_used == Some(false) && *success).then_some(Tactic::InitialAccess),
        ),
        SignalKind::ApiCall(c) => {
            let tactic = sensitive(c);
            (
                flag(
                    tactic.is_some()
                        && c.principal.mfa_authenticated == Some(false)
                        && c.principal.kind == "IAMUser",
                ),
                flag(c.error_code.is_some()),
                flag(c.read_only == Some(true)),
                tactic,
            )
        }
        _ => (0.0, 0.0, 0.0, None),
    };
    let mut out = [0.0; 22];
    out[0] = novel(&history.networks, &network(a.source_ip));
    out[1] = novel(&history.agents, a.user_agent);
    out[2] = novel(&history.apis, &a.api);
    out[3] = novel(&history.regions, a.region);
    out[4] = flag(warm && history.hours & (1 << at.hour()) == 0);
    out[5] = (history.seen as f64).ln_1p();
    out[6] = recent(&history.failures) + flag(a.failed_sign_in);
    out[7] = recent(&history.denials) + flag(a.denied);
    out[8] = mfa_absent;
    out[9] = error;
    out[10] = read_only;
    out[11] = flag(a.principal.kind == "Root");
    if let Some(t) = tactic {
        let i = Tactic::ALL.iter().position(|x| *x == t).unwrap_or(0);
        out[12 + i] = 1.0;
    }
    Some(out)
}

// A GuardDuty finding's features live in `finding.rs`; their old paths stay.
pub use super::finding::{FINDING_FAMILIES, finding, finding_names};

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::{Resource, ResourceKind, Source};
    use chrono::TimeZone;

    fn call(name: &str, source: &str, ip: &str, request: &[&str], at_hour: u32) -> Signal {
        let principal = Principal {
            kind: "IAMUser".into(),
            id: "arn:aws:iam::123456789012:user/alice".into(),
            name: Some("alice".into()),
            access_key_id: None,
            mfa_authenticated: Some(false),
        };
        Signal {
            event_id: format!("e-{name}-{ip}"),
            source: Source::CloudTrail,
            resource: Resource::new(ResourceKind::Principal, principal.id.clone()),
            observed_at: Utc.with_ymd_and_hms(2026, 11, 20, at_hour, 0, 0).unwrap(),
            kind: SignalKind::ApiCall(ApiCall {
                event_source: format!("{source}.amazonaws.com"),
                event_name: name.into(),
                principal,
                source_ip: ip.into(),
                user_agent: "aws-cli/2.15".into(),
                region: "us-east-1".into(),
                error_code: None,
                read_only: Some(name.starts_with("Describe") || name.starts_with("List")),
                request: request.iter().map(|s| (*s).to_owned()).collect(),
            }),
            values: Default::default(),
            rules: Vec::new(),
        }
    }

    fn check(signal: &Signal, history: &PrincipalProfile, expect: &[(&str, f64)]) {
        let f = identity(signal, history).unwrap();
        for (name, want) in expect {
            let i = NAMES.iter().position(|n| n == name).unwrap();
            assert_eq!(f[i], *want, "{name} for {}", signal.describe());
        }
    }

    #[test]
    fn a_long_user_agent_is_found_again() {
        let mut p = PrincipalProfile::default();
        let mut long = call("DescribeInstances", "ec2", "198.51.100.1", &[], 9);
        if let SignalKind::ApiCall(c) = &mut long.kind {
            c.user_agent = format!("aws-sdk-java/2.25 {}", "md/x".repeat(100));
        }
        for _ in 0..30 {
            p.observe(&long);
        }
        assert_eq!(p.agents.len(), 1);
        let later = Signal {
            observed_at: long.observed_at + chrono::Duration::hours(2),
            ..long.clone()
        };
        check(&later, &p, &[("new_user_agent", 0.0)]);
    }

    fn warmed_up() -> PrincipalProfile {
        let mut p = PrincipalProfile::default();
        for i in 0..30 {
            p.observe(&call(
                "DescribeInstances",
                "ec2",
                &format!("198.51.100.{}", i % 4),
                &[],
                9 + i % 8,
            ));
        }
        p
    }

    #[test]
    fn routine_activity_is_not_novel() {
        let p = warmed_up();
        check(
            &call("DescribeInstances", "ec2", "198.51.100.2", &[], 10),
            &p,
            &[
                ("new_network", 0.0),
                ("new_api", 0.0),
                ("new_hour", 0.0),
                ("tactic_defence_evasion", 0.0),
            ],
        );
    }

    #[test]
    fn a_new_network_api_and_hour_are_novel_once_warm() {
        let p = warmed_up();
        check(
            &call(
                "StopLogging",
                "cloudtrail",
                "203.0.113.9",
                &["name=trail"],
                3,
            ),
            &p,
            &[
                ("new_network", 1.0),
                ("new_api", 1.0),
                ("new_hour", 1.0),
                ("tactic_defence_evasion", 1.0),
                ("mfa_absent", 1.0),
            ],
        );
        // A principal with no history yet: nothing is "new".
        check(
            &call("StopLogging", "cloudtrail", "203.0.113.9", &[], 3),
            &PrincipalProfile::default(),
            &[
                ("new_network", 0.0),
                ("new_api", 0.0),
                ("tactic_defence_evasion", 1.0),
            ],
        );
    }

    #[test]
    fn sensitive_calls_by_tactic() {
        let t = |name, source, req: &[&str]| match &call(name, source, "1.2.3.4", req, 0).kind {
            SignalKind::ApiCall(c) => sensitive(c),
            _ => None,
        };
        assert_eq!(
            t("DeleteDetector", "guardduty", &[]),
            Some(Tactic::DefenceEvasion)
        );
        assert_eq!(
            t("CreateAccessKey", "iam", &["userName=bob"]),
            Some(Tactic::Persistence)
        );
        assert_eq!(
            t("CreateAccessKey", "iam", &["userName=alice"]),
            None,
            "own key rotation"
        );
        assert_eq!(
            t(
                "AttachUserPolicy",
                "iam",
                &["policyArn=arn:aws:iam::aws:policy/AdministratorAccess"]
            ),
            Some(Tactic::PrivilegeEscalation)
        );
        assert_eq!(
            t(
                "ModifySnapshotAttribute",
                "ec2",
                &["createVolumePermission.add.items.userId=999999999999"]
            ),
            Some(Tactic::Exfiltration)
        );
        assert_eq!(
            t(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                &["ipPermissions.items.ipRanges.items.cidrIp=0.0.0.0/0"]
            ),
            Some(Tactic::Exfiltration)
        );
        assert_eq!(
            t(
                "AuthorizeSecurityGroupIngress",
                "ec2",
                &["ipPermissions.items.ipRanges.items.cidrIp=10.0.0.0/8"]
            ),
            None
        );
        assert_eq!(
            t("AuthorizeSecurityGroupIngress", "ec2", &["cidrIpv6=::/0"]),
            Some(Tactic::Exfiltration)
        );
        assert_eq!(
            t("RunInstances", "ec2", &["instanceType=p3.16xlarge"]),
            Some(Tactic::Impact)
        );
        assert_eq!(t("RunInstances", "ec2", &["instanceType=t3.micro"]), None);
        assert_eq!(
            t("GetParameter", "ssm", &["withDecryption=true"]),
            Some(Tactic::CredentialAccess)
        );
        assert_eq!(
            t("UpdateFunctionCode20150331v2", "lambda", &[]),
            Some(Tactic::Persistence)
        );
        assert_eq!(t("DescribeInstances", "ec2", &[]), None);
    }

    #[test]
    fn failures_burst_and_are_forgotten() {
        let mut p = warmed_up();
        let mut denied = call("ListUsers", "iam", "198.51.100.1", &[], 10);
        if let SignalKind::ApiCall(c) = &mut denied.kind {
            c.error_code = Some("AccessDenied".into());
        }
        for _ in 0..5 {
            p.observe(&denied);
        }
        check(&denied, &p, &[("access_denied_15m", 6.0), ("error", 1.0)]);
        p.forget(denied.observed_at + chrono::Duration::minutes(16));
        check(&denied, &p, &[("access_denied_15m", 1.0)]);
    }

    #[test]
    fn history_stays_bounded() {
        let mut p = PrincipalProfile::default();
        for i in 0..500 {
            p.observe(&call(
                &format!("Api{i}"),
                "ec2",
                &format!("10.{}.{}.1", i / 250, i % 250),
                &[],
                1,
            ));
        }
        assert!(p.apis.len() <= MAX_ENTRIES && p.networks.len() <= MAX_ENTRIES);
        assert!(serde_json::to_string(&p).unwrap().len() < 16 * 1024);
        // Entries unseen for longer than the age limit are dropped.
        p.forget(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert!(p.apis.is_empty());
    }

    #[test]
    fn an_act_is_the_api_its_outcome_and_the_network() {
        let sign_in = |success: bool, ip: &str| Signal {
            event_id: "e".into(),
            source: Source::CloudTrail,
            resource: Resource::new(ResourceKind::Principal, "arn:aws:iam::1:user/alice"),
            observed_at: Utc::now(),
            kind: SignalKind::ConsoleSignIn {
                principal: Principal {
                    kind: "IAMUser".into(),
                    id: "arn:aws:iam::1:user/alice".into(),
                    name: Some("alice".into()),
                    access_key_id: None,
                    mfa_authenticated: None,
                },
                success,
                mfa_used: Some(false),
                source_ip: ip.into(),
                user_agent: "Mozilla/5.0".into(),
            },
            values: Default::default(),
            rules: Vec::new(),
        };
        let failed = act(&sign_in(false, "203.0.113.50")).unwrap();
        assert_eq!(failed, "signin:ConsoleLogin:failed@203.0.113.0/24");
        // Another guess from the same network is the same act; the one that works is not, nor
        // is a guess from elsewhere.
        assert_eq!(act(&sign_in(false, "203.0.113.51")).unwrap(), failed);
        assert_ne!(act(&sign_in(true, "203.0.113.50")).unwrap(), failed);
        assert_ne!(act(&sign_in(false, "198.51.100.7")).unwrap(), failed);
    }

    #[test]
    fn network_prefixes() {
        assert_eq!(network("198.51.100.7"), "198.51.100.0/24");
        assert_eq!(network("2001:db8:1:2::1"), "2001:db8:1::/48");
        assert_eq!(network("ec2.amazonaws.com"), "ec2.amazonaws.com");
    }

    #[test]
    fn finding_families() {
        let f = finding("Recon:IAMUser/TorIPCaller", 5.0, false, 3);
        assert_eq!(f[0], 0.5);
        let names = finding_names();
        let i = names.iter().position(|n| n == "family_discovery").unwrap();
        assert_eq!(f[i], 1.0);
        let f = finding("Stealth:IAMUser/CloudTrailLoggingDisabled", 2.0, true, 1);
        let i = names
            .iter()
            .position(|n| n == "family_defenseevasion")
            .unwrap();
        assert_eq!((f[1], f[i]), (1.0, 1.0));
    }
}
