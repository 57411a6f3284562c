//! Benign CloudTrail activity of users, roles and services over days, and attacks mixed into
//! it by principals whose credentials were stolen.
//!
//! Benign principals keep to their own networks, user agents, regions, hours and APIs, with
//! the irregularities real accounts show: travel and VPNs (a new network), CLI upgrades (a new
//! user agent), occasional new APIs, AccessDenied and mistyped passwords, and routine
//! sensitive calls (admins changing IAM, CI updating Lambda code, services reading
//! SecureString parameters). Attackers come from elsewhere, explore, then act on one tactic;
//! or guess a human's console password ([`brute_force`], which the threat classifier is not
//! trained on: the experiment's brute-force scenario tests how it generalises).
//! Every event carries the class the threat classifier should name.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::RngExt;
use rand::seq::IndexedRandom;

use super::Rng;
pub use vigil_core::domain::ThreatClass;
use vigil_core::domain::{ApiCall, Principal, Resource, ResourceKind, Signal, SignalKind, Source};
use vigil_core::features::identity::{self, PrincipalProfile};

/// The classes in label order.
pub const CLASSES: [ThreatClass; 7] = [
    ThreatClass::Benign,
    ThreatClass::CredentialCompromise,
    ThreatClass::Reconnaissance,
    ThreatClass::Persistence,
    ThreatClass::PrivilegeEscalation,
    ThreatClass::DefenceEvasion,
    ThreatClass::Exfiltration,
];

/// A class's label: its position in [`CLASSES`].
pub fn label(c: ThreatClass) -> u32 {
    CLASSES.iter().position(|k| *k == c).unwrap_or(0) as u32
}

/// Routine calls: (service, name, read-only).
const ROUTINE: [(&str, &str, bool); 40] = [
    ("ec2", "DescribeInstances", true),
    ("ec2", "DescribeSecurityGroups", true),
    ("ec2", "DescribeVolumes", true),
    ("ec2", "DescribeSubnets", true),
    ("ec2", "DescribeImages", true),
    ("ec2", "RunInstances", false),
    ("ec2", "TerminateInstances", false),
    ("ec2", "CreateTags", false),
    ("s3", "ListBuckets", true),
    ("s3", "GetObject", true),
    ("s3", "PutObject", false),
    ("s3", "GetBucketLocation", true),
    ("iam", "GetUser", true),
    ("iam", "ListRoles", true),
    ("iam", "GetRole", true),
    ("iam", "ListAttachedRolePolicies", true),
    ("sts", "GetCallerIdentity", true),
    ("sts", "AssumeRole", false),
    ("cloudformation", "DescribeStacks", true),
    ("cloudformation", "CreateChangeSet", false),
    ("cloudformation", "ExecuteChangeSet", false),
    ("lambda", "ListFunctions20150331", true),
    ("lambda", "GetFunction20150331v2", true),
    ("logs", "FilterLogEvents", true),
    ("logs", "DescribeLogGroups", true),
    ("cloudwatch", "GetMetricData", true),
    ("cloudwatch", "PutMetricAlarm", false),
    ("dynamodb", "DescribeTable", true),
    ("kms", "Decrypt", true),
    ("kms", "GenerateDataKey", true),
    ("ssm", "DescribeInstanceInformation", true),
    ("ssm", "GetParameter", true),
    ("codepipeline", "GetPipelineState", true),
    ("codepipeline", "StartPipelineExecution", false),
    ("codebuild", "BatchGetBuilds", true),
    ("ecr", "GetAuthorizationToken", true),
    ("ecr", "BatchGetImage", true),
    ("autoscaling", "DescribeAutoScalingGroups", true),
    ("elasticloadbalancing", "DescribeTargetHealth", true),
    ("rds", "DescribeDBInstances", true),
];

/// Discovery calls an intruder makes to look around.
const RECON: [(&str, &str); 16] = [
    ("sts", "GetCallerIdentity"),
    ("iam", "ListUsers"),
    ("iam", "ListRoles"),
    ("iam", "ListAccessKeys"),
    ("iam", "GetAccountAuthorizationDetails"),
    ("iam", "ListAttachedUserPolicies"),
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSnapshots"),
    ("ec2", "DescribeRegions"),
    ("s3", "ListBuckets"),
    ("secretsmanager", "ListSecrets"),
    ("ssm", "DescribeParameters"),
    ("lambda", "ListFunctions20150331"),
    ("cloudtrail", "DescribeTrails"),
    ("guardduty", "ListDetectors"),
    ("organizations", "DescribeOrganization"),
];

/// One attack step: service, name, request parameters.
type Step = (&'static str, &'static str, &'static [&'static str]);

const CREDENTIAL: [Step; 10] = [
    ("bedrock", "InvokeModel", &["modelId=anthropic.claude"]),
    ("ec2", "ModifyInstanceAttribute", &["userData=<redacted>"]),
    ("secretsmanager", "GetSecretValue", &["secretId=prod/db"]),
    ("secretsmanager", "BatchGetSecretValue", &["filters=all"]),
    (
        "ec2",
        "GetPasswordData",
        &["instanceId=i-0a1b2c3d4e5f60718"],
    ),
    (
        "ssm",
        "GetParameters",
        &["withDecryption=true", "names=/prod/api-key"],
    ),
    ("ssm", "SendCommand", &["documentName=AWS-RunShellScript"]),
    ("ssm", "StartSession", &["target=i-0a1b2c3d4e5f60718"]),
    (
        "ec2-instance-connect",
        "SendSSHPublicKey",
        &["instanceOSUser=ec2-user"],
    ),
    ("ec2", "RunInstances", &["instanceType=p3.16xlarge"]),
];
const PERSISTENCE: [Step; 11] = [
    ("rolesanywhere", "CreateTrustAnchor", &["name=partner"]),
    ("sts", "GetFederationToken", &["name=session"]),
    (
        "lambda",
        "UpdateFunctionConfiguration20150331v2",
        &["layers=ext"],
    ),
    ("lambda", "PublishLayerVersion20181031", &["layerName=ext"]),
    ("iam", "CreateUser", &["userName=backup-svc"]),
    ("iam", "CreateAccessKey", &["userName=backup-svc"]),
    ("iam", "CreateLoginProfile", &["userName=backup-svc"]),
    ("iam", "CreateRole", &["roleName=support-access"]),
    ("iam", "UpdateAssumeRolePolicy", &["roleName=ops"]),
    ("lambda", "AddPermission20150331v2", &["principal=*"]),
    ("lambda", "CreateFunction20150331", &["functionName=sync"]),
];
const ESCALATION: [Step; 6] = [
    (
        "iam",
        "AttachUserPolicy",
        &["policyArn=arn:aws:iam::aws:policy/AdministratorAccess"],
    ),
    ("iam", "PutUserPolicy", &["policyName=inline"]),
    (
        "iam",
        "AttachRolePolicy",
        &["policyArn=arn:aws:iam::aws:policy/AdministratorAccess"],
    ),
    ("iam", "CreatePolicyVersion", &["setAsDefault=true"]),
    ("iam", "UpdateLoginProfile", &["userName=admin"]),
    ("iam", "AddUserToGroup", &["groupName=admins"]),
];
const EVASION: [Step; 12] = [
    ("organizations", "LeaveOrganization", &[]),
    ("cloudtrail", "UpdateTrail", &["name=main"]),
    (
        "guardduty",
        "DisassociateFromMasterAccount",
        &["detectorId=d1"],
    ),
    ("logs", "DeleteLogGroup", &["logGroupName=/app"]),
    ("securityhub", "DisableSecurityHub", &[]),
    ("cloudtrail", "StopLogging", &["name=main"]),
    ("cloudtrail", "DeleteTrail", &["name=main"]),
    (
        "cloudtrail",
        "PutEventSelectors",
        &["readWriteType=ReadOnly"],
    ),
    ("ec2", "DeleteFlowLogs", &["flowLogId=fl-1"]),
    ("guardduty", "DeleteDetector", &["detectorId=d1"]),
    ("config", "StopConfigurationRecorder", &["name=default"]),
    (
        "route53resolver",
        "DeleteResolverQueryLogConfig",
        &["id=rqlc-1"],
    ),
];
const EXFILTRATION: [Step; 6] = [
    (
        "ec2",
        "ModifySnapshotAttribute",
        &["attributeType=createVolumePermission"],
    ),
    (
        "ec2",
        "ModifyImageAttribute",
        &["attributeType=launchPermission"],
    ),
    (
        "rds",
        "ModifyDBSnapshotAttribute",
        &["attributeName=restore"],
    ),
    ("s3", "PutBucketPolicy", &["bucketName=data"]),
    ("s3", "PutBucketAcl", &["bucketName=data"]),
    (
        "ec2",
        "AuthorizeSecurityGroupIngress",
        &["cidrIp=0.0.0.0/0"],
    ),
];

/// CloudTrail's `readOnly` for a call, by its verb: reads (Get, Describe, List, BatchGet)
/// are read-only whatever they reveal.
fn read_only(name: &str) -> bool {
    ["Get", "Describe", "List", "BatchGet", "Lookup"]
        .iter()
        .any(|verb| name.starts_with(verb))
}

/// A benign principal's habits.
#[derive(Debug, Clone)]
pub struct Persona {
    pub principal: Principal,
    pub human: bool,
    pub admin: bool,
    pub networks: Vec<String>,
    pub agents: Vec<String>,
    pub regions: Vec<String>,
    pub apis: Vec<(String, String, bool)>,
    /// Hours of the day (UTC) the principal works in: [start, end).
    pub hours: (u32, u32),
    pub events_per_day: u32,
}

impl Persona {
    /// The gaps in the account's posture this principal stands for, by the CIS AWS Foundations
    /// control that names them: a human IAM user without MFA (CIS 4.2 asks for an alarm on
    /// each such console sign-in). An alarm on these is a true finding about the account, not
    /// a false alarm about the principal's behaviour; the evaluation counts them apart.
    pub fn posture_gaps(&self) -> Vec<&'static str> {
        let mut gaps = Vec::new();
        if self.human
            && self.principal.kind == "IAMUser"
            && self.principal.mfa_authenticated != Some(true)
        {
            gaps.push("cis.4.2");
        }
        gaps
    }
}

/// One generated event with its truth.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub signal: Signal,
    pub class: ThreatClass,
}

fn ip_in(rng: &mut Rng, network: &str) -> String {
    let base = network.trim_end_matches(".0/24");
    format!("{base}.{}", rng.random_range(1..255))
}

fn random_network(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.0/24",
        rng.random_range(11..223),
        rng.random_range(0..256),
        rng.random_range(0..256)
    )
}

fn random_agent(rng: &mut Rng) -> String {
    let kinds = [
        "aws-cli/2.{v}.{w} Python/3.11.{w} Linux/6.1 exe/x86_64",
        "aws-cli/2.{v}.{w} Python/3.12.{w} Darwin/23.{w} source/arm64",
        "Boto3/1.{v}.{w} Python/3.10.{w} Linux/5.15 Botocore/1.{v}.{w}",
        "aws-sdk-go-v2/1.{v}.{w} os/linux lang/go#1.22",
        "aws-sdk-java/2.{v}.{w} Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/12{w}.0",
        "aws-sdk-rust/1.{v}.{w} os/linux lang/rust/1.8{w}",
        "Terraform/1.{v}.{w} terraform-provider-aws/5.{w}",
    ];
    let t = kinds.choose(rng).copied().unwrap_or(kinds[0]);
    t.replace("{v}", &rng.random_range(10..40).to_string())
        .replace("{w}", &rng.random_range(0..10).to_string())
}

const REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
];

/// The account's benign principals: humans (some of them admins), application and CI roles.
pub fn personas(rng: &mut Rng, account: &str) -> Vec<Persona> {
    let mut out = Vec::new();
    let humans = rng.random_range(6..14);
    let roles = rng.random_range(4..10);
    for i in 0..humans + roles {
        let human = i < humans;
        let admin = human && rng.random_bool(0.3);
        let name = if human {
            format!("user{i}")
        } else {
            format!("app-role-{i}")
        };
        let principal = Principal {
            kind: if human { "IAMUser" } else { "AssumedRole" }.to_owned(),
            id: if human {
                format!("arn:aws:iam::{account}:user/{name}")
            } else {
                format!("arn:aws:sts::{account}:assumed-role/{name}/session")
            },
            name: Some(name),
            access_key_id: Some(format!("AKIA{:016X}", rng.random::<u64>())),
            mfa_authenticated: Some(human && rng.random_bool(0.7)),
        };
        let networks = (0..rng.random_range(1..4))
            .map(|_| random_network(rng))
            .collect();
        let agents = (0..rng.random_range(1..3))
            .map(|_| random_agent(rng))
            .collect();
        let k = rng.random_range(1..3);
        let regions = REGIONS.sample(rng, k).map(|r| (*r).to_owned()).collect();
        let k = rng.random_range(4..20);
        let mut apis: Vec<(String, String, bool)> = ROUTINE
            .sample(rng, k)
            .map(|(s, n, ro)| ((*s).to_owned(), (*n).to_owned(), *ro))
            .collect();
        // Routine sensitive work: CI roles ship Lambda code, services read SecureStrings,
        // admins manage IAM.
        if !human && rng.random_bool(0.4) {
            apis.push((
                "lambda".into(),
                "UpdateFunctionCode20150331v2".into(),
                false,
            ));
        }
        if !human && rng.random_bool(0.4) {
            apis.push(("ssm".into(), "GetParameters".into(), true));
        }
        if admin {
            for n in [
                "CreateRole",
                "AttachRolePolicy",
                "CreateUser",
                "PutRolePolicy",
            ] {
                apis.push(("iam".into(), n.into(), false));
            }
        }
        let start = rng.random_range(5..12);
        out.push(Persona {
            principal,
            human,
            admin,
            networks,
            agents,
            regions,
            apis,
            hours: if human { (start, start + 10) } else { (0, 24) },
            events_per_day: if human {
                rng.random_range(20..150)
            } else {
                rng.random_range(100..400)
            },
        });
    }
    out
}

fn signal(id: String, at: DateTime<Utc>, principal: &Principal, kind: SignalKind) -> Signal {
    Signal {
        event_id: id,
        source: Source::CloudTrail,
        resource: Resource::new(ResourceKind::Principal, principal.id.clone()),
        observed_at: at,
        kind,
        values: Default::default(),
        rules: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn call(
    id: String,
    at: DateTime<Utc>,
    principal: &Principal,
    service: &str,
    name: &str,
    read_only: bool,
    ip: String,
    agent: &str,
    region: &str,
    error: Option<&str>,
    request: &[&str],
) -> Signal {
    signal(
        id,
        at,
        principal,
        SignalKind::ApiCall(ApiCall {
            event_source: format!("{service}.amazonaws.com"),
            event_name: name.to_owned(),
            principal: principal.clone(),
            source_ip: ip,
            user_agent: agent.to_owned(),
            region: region.to_owned(),
            error_code: error.map(str::to_owned),
            read_only: Some(read_only),
            request: request.iter().map(|s| (*s).to_owned()).collect(),
        }),
    )
}

/// `days` of benign activity of the personas, in time order.
pub fn benign(
    rng: &mut Rng,
    personas: &[Persona],
    start: DateTime<Utc>,
    days: u32,
) -> Vec<Labelled> {
    let mut out = Vec::new();
    let mut n = 0u64;
    for p in personas {
        for day in 0..days {
            let (h0, h1) = p.hours;
            for _ in 0..p.events_per_day {
                n += 1;
                let minute = rng.random_range(h0 * 60..h1 * 60);
                let at = start
                    + Duration::days(i64::from(day))
                    + Duration::minutes(i64::from(minute))
                    + Duration::seconds(rng.random_range(0..60));
                let network = if rng.random_bool(0.003) {
                    random_network(rng)
                } else {
                    p.networks.choose(rng).cloned().unwrap_or_default()
                };
                let ip = ip_in(rng, &network);
                let agent = if rng.random_bool(0.002) {
                    random_agent(rng)
                } else {
                    p.agents.choose(rng).cloned().unwrap_or_default()
                };
                let region = if rng.random_bool(0.002) {
                    REGIONS
                        .choose(rng)
                        .copied()
                        .unwrap_or("us-east-1")
                        .to_owned()
                } else {
                    p.regions.choose(rng).cloned().unwrap_or_default()
                };
                let id = format!("benign-{n}");
                if p.human && rng.random_bool(0.01) {
                    // A console sign-in; now and then a mistyped password.
                    out.push(Labelled {
                        signal: signal(
                            id,
                            at,
                            &p.principal,
                            SignalKind::ConsoleSignIn {
                                principal: p.principal.clone(),
                                success: !rng.random_bool(0.1),
                                mfa_used: p.principal.mfa_authenticated,
                                source_ip: ip,
                                user_agent: agent,
                            },
                        ),
                        class: ThreatClass::Benign,
                    });
                    continue;
                }
                let (service, name, read_only) = if rng.random_bool(0.003) {
                    let (s, n, ro) = ROUTINE.choose(rng).copied().unwrap_or(ROUTINE[0]);
                    (s.to_owned(), n.to_owned(), ro)
                } else {
                    p.apis.choose(rng).cloned().unwrap_or_default()
                };
                let error = rng.random_bool(0.01).then_some("AccessDenied");
                let request: Vec<String> = match name.as_str() {
                    "GetParameters" => vec!["withDecryption=true".into()],
                    "CreateUser" | "CreateLoginProfile" => vec!["userName=new-hire".into()],
                    "AttachRolePolicy" => {
                        vec!["policyArn=arn:aws:iam::aws:policy/ReadOnlyAccess".into()]
                    }
                    _ => Vec::new(),
                };
                let request: Vec<&str> = request.iter().map(String::as_str).collect();
                out.push(Labelled {
                    signal: call(
                        id,
                        at,
                        &p.principal,
                        &service,
                        &name,
                        read_only,
                        ip,
                        &agent,
                        &region,
                        error,
                        &request,
                    ),
                    class: ThreatClass::Benign,
                });
            }
        }
    }
    out.sort_by_key(|l| l.signal.observed_at);
    out
}

/// One attack by an intruder holding `victim`'s credentials, starting at `at`: a look around,
/// then the steps of one tactic.
pub fn attack(
    rng: &mut Rng,
    victim: &Persona,
    class: ThreatClass,
    at: DateTime<Utc>,
    tag: u64,
) -> Vec<Labelled> {
    let mut out = Vec::new();
    // Most intruders come from elsewhere with their own tools; a few blend in.
    let blend = rng.random_bool(0.1);
    let network = if blend {
        victim.networks.choose(rng).cloned().unwrap_or_default()
    } else {
        random_network(rng)
    };
    let agent = if blend || rng.random_bool(0.1) {
        victim.agents.choose(rng).cloned().unwrap_or_default()
    } else {
        random_agent(rng)
    };
    let region = if rng.random_bool(0.7) {
        victim.regions.choose(rng).cloned().unwrap_or_default()
    } else {
        REGIONS
            .choose(rng)
            .copied()
            .unwrap_or("us-east-1")
            .to_owned()
    };
    let mut principal = victim.principal.clone();
    principal.mfa_authenticated = Some(false);
    let mut t = at;
    let mut next = |rng: &mut Rng| {
        t += Duration::seconds(rng.random_range(1..90));
        t
    };
    let recon = if class == ThreatClass::Reconnaissance {
        rng.random_range(8..40)
    } else {
        rng.random_range(0..5)
    };
    for k in 0..recon {
        let (s, n) = RECON.choose(rng).copied().unwrap_or(RECON[0]);
        let denied = rng.random_bool(0.25).then_some("AccessDenied");
        let at = next(rng);
        out.push(Labelled {
            signal: call(
                format!("attack-{tag}-r{k}"),
                at,
                &principal,
                s,
                n,
                true,
                ip_in(rng, &network),
                &agent,
                &region,
                denied,
                &[],
            ),
            class: ThreatClass::Reconnaissance,
        });
    }
    let steps: &[Step] = match class {
        ThreatClass::CredentialCompromise => &CREDENTIAL,
        ThreatClass::Persistence => &PERSISTENCE,
        ThreatClass::PrivilegeEscalation => &ESCALATION,
        ThreatClass::DefenceEvasion => &EVASION,
        ThreatClass::Exfiltration => &EXFILTRATION,
        ThreatClass::Reconnaissance | ThreatClass::Benign => &[],
    };
    if class == ThreatClass::CredentialCompromise && victim.human && rng.random_bool(0.3) {
        let at = next(rng);
        out.push(Labelled {
            signal: signal(
                format!("attack-{tag}-login"),
                at,
                &principal,
                SignalKind::ConsoleSignIn {
                    principal: principal.clone(),
                    success: true,
                    mfa_used: Some(false),
                    source_ip: ip_in(rng, &network),
                    user_agent: agent.clone(),
                },
            ),
            class,
        });
    }
    for k in 0..rng.random_range(1..4) {
        let Some((s, n, req)) = steps.choose(rng).copied() else {
            break;
        };
        let at = next(rng);
        let mut request: Vec<&str> = req.to_vec();
        // A key made for someone else is the backdoor; say who.
        if n == "CreateAccessKey" && request.is_empty() {
            request.push("userName=backup-svc");
        }
        out.push(Labelled {
            signal: call(
                format!("attack-{tag}-s{k}"),
                at,
                &principal,
                s,
                n,
                read_only(n),
                ip_in(rng, &network),
                &agent,
                &region,
                None,
                &request,
            ),
            class,
        });
    }
    out
}

/// Password guessing at `victim`'s console sign-in, starting at `at`: a burst of failed
/// sign-ins from the intruder's network, and, for a user without MFA, now and then a guess that
/// works and a look around from the console. Console sign-ins carry no access key, so the
/// victim's keys are not the intruder's. Every event is credential compromise except the look
/// around (reconnaissance).
pub fn brute_force(rng: &mut Rng, victim: &Persona, at: DateTime<Utc>, tag: u64) -> Vec<Labelled> {
    let network = random_network(rng);
    let agent = random_agent(rng);
    let region = victim.regions.choose(rng).cloned().unwrap_or_default();
    let mut principal = victim.principal.clone();
    principal.access_key_id = None;
    principal.mfa_authenticated = Some(false);
    let mut t = at;
    let mut out = Vec::new();
    let guesses = rng.random_range(8..60);
    let sign_in = |t: DateTime<Utc>, id: String, ip: String, success: bool| Labelled {
        signal: signal(
            id,
            t,
            &principal,
            SignalKind::ConsoleSignIn {
                principal: principal.clone(),
                success,
                mfa_used: Some(false),
                source_ip: ip,
                user_agent: agent.clone(),
            },
        ),
        class: ThreatClass::CredentialCompromise,
    };
    for k in 0..guesses {
        t += Duration::seconds(rng.random_range(1..20));
        out.push(sign_in(
            t,
            format!("brute-{tag}-{k}"),
            ip_in(rng, &network),
            false,
        ));
    }
    let without_mfa = victim.principal.mfa_authenticated != Some(true);
    if without_mfa && rng.random_bool(0.5) {
        t += Duration::seconds(rng.random_range(1..20));
        out.push(sign_in(
            t,
            format!("brute-{tag}-in"),
            ip_in(rng, &network),
            true,
        ));
        for k in 0..rng.random_range(2..8) {
            let (s, n) = RECON.choose(rng).copied().unwrap_or(RECON[0]);
            t += Duration::seconds(rng.random_range(5..90));
            out.push(Labelled {
                signal: call(
                    format!("brute-{tag}-r{k}"),
                    t,
                    &principal,
                    s,
                    n,
                    true,
                    ip_in(rng, &network),
                    &agent,
                    &region,
                    None,
                    &[],
                ),
                class: ThreatClass::Reconnaissance,
            });
        }
    }
    out
}

/// Runs events through the principals' histories, in time order: each event's
/// [`vigil_core::features::IDENTITY_V2`] features against what its principal did before it.
pub fn featurise(events: &mut [Labelled]) -> Vec<(Vec<f64>, ThreatClass)> {
    use std::collections::HashMap;
    events.sort_by_key(|l| l.signal.observed_at);
    let mut profiles: HashMap<String, PrincipalProfile> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for e in events.iter() {
        let profile = profiles.entry(e.signal.resource.id.clone()).or_default();
        if let Some(f) = identity::identity(&e.signal, profile) {
            out.push((f.to_vec(), e.class));
        }
        profile.observe(&e.signal);
    }
    out
}

/// Most copies of one distinct (feature row, class) pair a data set keeps.
pub const MAX_COPIES: usize = 25;

/// The fixed start of generated timelines.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A labelled data set: an account's benign activity over two weeks with attacks of every
/// class mixed in during the second week, as feature rows and class indices.
pub fn dataset(seed: u64) -> (Vec<Vec<f64>>, Vec<u32>) {
    let mut rng = super::rng(seed);
    let mut events = Vec::new();
    for account in 0..3 {
        let personas = personas(&mut rng, &format!("1111222233{account:02}"));
        let start = epoch();
        events.extend(benign(&mut rng, &personas, start, 14));
        let mut tag = 0;
        for class in &CLASSES[1..] {
            for _ in 0..40 {
                tag += 1;
                let Some(victim) = personas.choose(&mut rng) else {
                    continue;
                };
                let at = start
                    + Duration::days(rng.random_range(7..14))
                    + Duration::minutes(rng.random_range(0..1440));
                events.extend(attack(&mut rng, victim, *class, at, tag + account * 1000));
            }
        }
    }
    let rows = featurise(&mut events);
    // Routine activity repeats the same feature rows thousands of times; keep each distinct
    // (row, class) at most `MAX_COPIES` times, so rare benign irregularities keep their weight
    // against the bulk.
    let mut copies: std::collections::HashMap<(Vec<u64>, u32), usize> =
        std::collections::HashMap::new();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (f, c) in rows {
        let key = (f.iter().map(|v| v.to_bits()).collect(), label(c));
        let n = copies.entry(key).or_default();
        if *n < MAX_COPIES {
            *n += 1;
            x.push(f);
            y.push(label(c));
        }
    }
    (x, y)
}
