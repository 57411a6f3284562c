//! The policy: its format (and the migration of version 1), the rules and the ladder, the
//! second opinions, the tiers and the safety limits. Pure: no port, no IO.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use vigil_core::domain::Code;
use vigil_core::policy::opinions::OpinionCode;

use chrono::{DateTime, TimeZone, Utc};
use vigil_core::domain::{
    Action, Attempt, FailureMode, GroupCapacity, Incident, Mode, OutcomeStatus, Resource,
    ResourceKind, Severity, Tier,
};
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::opinions::{Ask, Opinion, Verdict};
use vigil_core::policy::{
    Deployment, Facts, GroupReadings, MAX_POLICY_BYTES, MaintenanceWindow, PIPELINE_TAG, Policy,
    Proposal, Readings, SERVICE_TAG, STAGE_TAG, Weekday,
};

/// What the rules and the second opinions propose for an incident, given earlier attempts on
/// its resource.
fn propose(policy: &Policy, incident: &Incident, attempts: &[Attempt]) -> Proposal {
    let readings = Readings {
        attempts: attempts.to_vec(),
        ..Readings::default()
    };
    policy.draft(incident.clone(), &readings, t0()).proposal
}

/// One opinion's verdict on an incident, with what was read for it.
fn judge(
    opinion: &dyn Opinion,
    policy: &Policy,
    incident: &Incident,
    readings: &Readings,
) -> Verdict {
    opinion.judge(&Ask {
        incident,
        readings,
        rules: &policy.rules,
        now: t0(),
    })
}

fn check_yaml(yaml: &str, expect_err: Option<&str>) {
    match (Policy::from_yaml(yaml, "test"), expect_err) {
        (Ok(_), None) => {}
        (Err(e), Some(want)) => {
            let got = vigil_core::error_chain(&e);
            assert!(got.contains(want), "{got:?} does not mention {want:?}");
        }
        (got, want) => panic!("{yaml}\nexpected {want:?}, got {got:?}"),
    }
}

const LIMITS: &str = "limits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1}";

#[test]
fn bundled_policy_is_valid_and_safe_by_default() {
    let p = Policy::bundled().unwrap();
    assert_eq!(p.mode, Mode::DryRun);
    assert!(!p.kill_switch);
    assert!(p.limits.cooldown_minutes > 0 && p.limits.max_actions_per_hour > 0);
    assert!(p.id.starts_with("bundled@"));
}

#[test]
fn invalid_policies_are_refused_with_a_reason() {
    check_yaml(&format!("version: 2\n{LIMITS}\nrules: []"), None);
    check_yaml(&format!("version: 1\n{LIMITS}\nrules: []"), None);
    check_yaml(
        &format!("version: 3\n{LIMITS}\nrules: []"),
        Some("version 3"),
    );
    check_yaml(
        "version: 2\nlimits: {cooldown_minutes: 30, max_group_share: 1.5, min_in_service: 1}\nrules: []",
        Some("max_group_share"),
    );
    check_yaml(
        "version: 2\nlimits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1, max_actions_per_hour: 0}\nrules: []",
        Some("max_actions_per_hour"),
    );
    check_yaml(
        "version: 2\nlimits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1, maintenance_windows: [{days: [sat], start: '25:00', end: '02:00'}]}\nrules: []",
        Some("maintenance window"),
    );
    check_yaml(
        &format!("version: 2\n{LIMITS}\nrules: []\nsurprise: true"),
        Some("surprise"),
    );
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\ntiers: {{auto_heal_min_confidence: 0.4, approval_min_confidence: 0.6}}\nrules: []"
        ),
        Some("tiers"),
    );
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_runaway], ladder: [replace_instance], tier: escalate}}]"
        ),
        Some("needs tier auto-heal, approval or block"),
    );
    check_yaml(
        &format!("version: 2\n{LIMITS}\nrules: [{{name: r, failure_modes: [], tier: escalate}}]"),
        Some("names no failure mode"),
    );
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_fire], tier: escalate}}]"
        ),
        Some("not valid YAML for Vigil's policy format"),
    );
    check_yaml(&"x".repeat(MAX_POLICY_BYTES + 1), Some("above the"));
}

#[test]
fn a_version_1_policy_still_loads_as_the_same_policy() {
    // The previous release's default policy, as an operator's override written for it.
    let v1 = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/upgrade/policy-v1.yaml"
    ))
    .unwrap();
    let migrated = Policy::from_yaml(&v1, "ssm:v1").unwrap();
    let bundled = Policy::bundled().unwrap();
    assert_eq!(migrated.version, 2);
    // Every threshold and every opinion as the bundled version-2 policy states them.
    assert_eq!(
        Policy {
            id: String::new(),
            ..migrated
        },
        Policy {
            id: String::new(),
            ..bundled
        }
    );
    // A 0 (or false) turned a version-1 opinion off: it is disabled, not given a 0.
    let off = v1
        .replace("settle_minutes: 60", "settle_minutes: 0")
        .replace("surge_min_group_share: 0.5", "surge_min_group_share: 0")
        .replace(
            "record_familiar_reads: true",
            "record_familiar_reads: false",
        )
        .replace("confirm_within_minutes: 12", "confirm_within_minutes: 0");
    let off = Policy::from_yaml(&off, "ssm:v2").unwrap();
    assert!(!off.opinions.settling.enabled);
    assert!(!off.opinions.lone_surge.enabled);
    assert!(!off.opinions.familiar_reads.enabled);
    assert!(!off.opinions.confirmation.enabled);
    assert!(off.opinions.second_look.enabled && off.opinions.repeat.enabled);
    // A version-1 document is read with version 1's fields only.
    check_yaml(
        &format!("version: 1\n{LIMITS}\nopinions: {{}}\nrules: []"),
        Some("not valid YAML for Vigil's policy format"),
    );
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\ntiers: {{auto_heal_min_confidence: 0.8, approval_min_confidence: 0.5, settle_minutes: 5}}\nrules: []"
        ),
        Some("not valid YAML for Vigil's policy format"),
    );
}

#[test]
fn an_opinion_with_unusable_parameters_is_refused_by_name() {
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\nopinions: {{lone_surge: {{min_group_share: 1.5}}}}\nrules: []"
        ),
        Some("opinions.lone_surge: min_group_share 1.5"),
    );
    check_yaml(
        &format!("version: 2\n{LIMITS}\nopinions: {{horizon: {{memory_hours: -1}}}}\nrules: []"),
        Some("opinions.horizon: memory_hours"),
    );
}

#[test]
fn the_published_schema_is_current() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/policy/schema.json"
    );
    let published = std::fs::read_to_string(path).unwrap_or_default();
    // Compared as JSON values: key order depends on serde_json features unified in a build.
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    assert_eq!(
        parse(&published),
        parse(&Policy::json_schema()),
        "infra/policy/schema.json is stale: run `cargo run -p vigil-cli -- policy schema > infra/policy/schema.json`"
    );
}

// --- Decisions, table-driven: one row per tier and per limit. ---------------------------

fn t0() -> DateTime<Utc> {
    // A Wednesday.
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn incident(mode: FailureMode, confidence: f64, severity: Severity) -> Incident {
    let instance = InstanceId::parse("i-0123456789abcdef0").unwrap();
    let mut resource = Resource::new(ResourceKind::Instance, instance.to_string());
    resource.group = Some(GroupName::parse("web").unwrap());
    Incident {
        id: "i-0123456789abcdef0:event".into(),
        resource,
        failure_mode: mode,
        threat: None,
        severity,
        confidence,
        opened_at: t0(),
        evidence: Vec::new(),
    }
}

fn threat(t: vigil_core::domain::ThreatClass, resource: Resource) -> Incident {
    Incident {
        threat: Some(t),
        resource,
        ..incident(FailureMode::Normal, 0.95, Severity::High)
    }
}

/// One piece of evidence on the test incident's instance: a pulled reading (`window`: the
/// metric label of a six-hour window, else the instance's whole reading) with its score.
fn reading(
    window: Option<&str>,
    mode: FailureMode,
    confidence: f64,
    features: &[(&str, f64)],
) -> vigil_core::domain::Scored {
    use vigil_core::domain::{Observation, Scored, Signal, SignalKind, Source};
    let resource = incident(FailureMode::Normal, 0.0, Severity::Low).resource;
    let (schema, kind) = match window {
        Some(metric) => (
            vigil_core::features::WINDOW_V3,
            SignalKind::MetricWindow {
                metric: metric.into(),
                period: 60,
                points: Vec::new(),
            },
        ),
        None => (
            vigil_core::features::INSTANCE_V1,
            SignalKind::InstanceMetrics {
                metrics: Vec::new(),
                period: 60,
                points: 60,
            },
        ),
    };
    let mut score = vigil_core::domain::Score::unscored("test");
    score.failure_mode = mode;
    score.confidence = confidence;
    Scored {
        observation: Observation {
            signal: Signal {
                event_id: "tick".into(),
                source: Source::MetricPull,
                resource,
                observed_at: t0(),
                kind,
                values: BTreeMap::new(),
                rules: Vec::new(),
            },
            features: vigil_core::domain::FeatureVector {
                schema: schema.into(),
                names: features.iter().map(|(n, _)| (*n).to_owned()).collect(),
                values: features.iter().map(|(_, v)| *v).collect(),
            },
        },
        score,
    }
}

fn led_by(evidence: Vec<vigil_core::domain::Scored>) -> Incident {
    let lead = &evidence[0].score;
    Incident {
        evidence: evidence.clone(),
        ..incident(lead.failure_mode, lead.confidence, Severity::Medium)
    }
}

#[test]
fn a_leak_or_fill_counts_only_with_a_certain_six_hour_trend() {
    let policy = Policy::bundled().unwrap();
    let fill = |t: Option<f64>| {
        let mut evidence = vec![reading(None, FailureMode::DiskFilling, 0.9, &[])];
        if let Some(t) = t {
            evidence.push(reading(
                Some("CWAgent/disk_used_percent:/"),
                FailureMode::Normal,
                0.9,
                &[("trend_t", t)],
            ));
        }
        led_by(evidence)
    };
    // Noise on a full disk: the hour reads as a fill, the six hours do not.
    let p = propose(&policy, &fill(Some(3.7)), &[]);
    assert_eq!(p.tier, Tier::Observe, "{:?}", p.reasons);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.code == Code::Opinion(OpinionCode::CertainTrend))
    );
    // A certain trend, or no six-hour window to judge by: the reading goes on.
    for certain in [fill(Some(9.8)), fill(None)] {
        let p = propose(&policy, &certain, &[]);
        assert_ne!(p.tier, Tier::Observe, "{:?}", p.reasons);
    }
    // A memory window does not speak for the disk.
    let mut other = fill(None);
    other.evidence.push(reading(
        Some("CWAgent/mem_used_percent"),
        FailureMode::Normal,
        0.9,
        &[("trend_t", 0.5)],
    ));
    assert_eq!(
        judge(
            &policy.opinions.certain_trend,
            &policy,
            &other,
            &Readings::default()
        ),
        Verdict::Agree
    );
}

#[test]
fn a_busy_instance_at_its_usual_cpu_is_no_runaway() {
    let policy = Policy::bundled().unwrap();
    let runaway = |mode: FailureMode, shift: Option<f64>| {
        let mut evidence = Vec::new();
        if let Some(shift) = shift {
            evidence.push(reading(
                None,
                mode,
                0.9,
                &[("cpu_level", 92.0), ("cpu_shift_z", shift)],
            ));
        }
        evidence.push(reading(
            Some("AWS/EC2/CPUUtilization"),
            FailureMode::Normal,
            0.9,
            &[("robust_z", 1.0)],
        ));
        led_by(evidence)
    };
    // High, but where it usually is: recorded, with the opinion's reason.
    let p = propose(&policy, &runaway(FailureMode::CpuRunaway, Some(0.4)), &[]);
    assert_eq!(p.tier, Tier::Observe, "{:?}", p.reasons);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.code == Code::Opinion(OpinionCode::SteadyCpu)),
        "{:?}",
        p.reasons
    );
    // A change: it goes on.
    let p = propose(&policy, &runaway(FailureMode::CpuRunaway, Some(12.0)), &[]);
    assert_ne!(p.tier, Tier::Observe, "{:?}", p.reasons);
    let judged = |incident: &Incident| {
        judge(
            &policy.opinions.steady_cpu,
            &policy,
            incident,
            &Readings::default(),
        )
    };
    // Without the instance's own reading, or about another failure: nothing to add.
    let mut unread = runaway(FailureMode::CpuRunaway, None);
    unread.failure_mode = FailureMode::CpuRunaway;
    assert_eq!(judged(&unread), Verdict::Agree);
    assert_eq!(
        judged(&runaway(FailureMode::TrafficSurge, Some(0.4))),
        Verdict::Agree
    );
    // Turned off, the same busy instance is told again.
    let mut off = policy.clone();
    off.opinions.steady_cpu.enabled = false;
    let p = propose(&off, &runaway(FailureMode::CpuRunaway, Some(0.4)), &[]);
    assert_ne!(p.tier, Tier::Observe, "{:?}", p.reasons);
    // An alarm named the runaway: the instance's steady reading speaks against it only when
    // that reading sees what the alarm saw (recent CPU at or over the alarm's threshold, or
    // its latest datapoint when the event carries no threshold).
    let alarmed = |level: f64, values: &[(&str, f64)]| {
        let mut alarm = reading(None, FailureMode::CpuRunaway, 0.9, &[("latest", 100.0)]);
        alarm.observation.features.schema = vigil_core::features::ALARM_V1.into();
        alarm.observation.signal.values =
            values.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        led_by(vec![
            alarm,
            reading(
                None,
                FailureMode::Normal,
                0.9,
                &[("cpu_level", level), ("cpu_shift_z", 0.4)],
            ),
        ])
    };
    let usual = |v: Verdict| matches!(v, Verdict::Record(_));
    let alarm_at_80 = [("threshold", 80.0), ("latest", 100.0)];
    assert!(usual(judged(&alarmed(84.0, &alarm_at_80))));
    assert!(!usual(judged(&alarmed(70.0, &alarm_at_80))));
    assert!(usual(judged(&alarmed(96.0, &[("latest", 95.0)]))));
    assert!(!usual(judged(&alarmed(84.0, &[("latest", 95.0)]))));
}

#[test]
fn metrics_settling_after_an_action_are_not_a_new_failure() {
    let policy = Policy::bundled().unwrap();
    let attempt = |action: &str, minutes_ago: i64, status: OutcomeStatus| Attempt {
        at: t0() - chrono::Duration::minutes(minutes_ago),
        action: action.into(),
        status,
        decision_id: "d-1".into(),
    };
    let partition = led_by(vec![reading(None, FailureMode::NetworkPartition, 0.9, &[])]);
    let runaway = led_by(vec![reading(None, FailureMode::CpuRunaway, 0.9, &[])]);
    let restarted = [attempt("restart_service", 20, OutcomeStatus::Verified)];
    // A restart 20 minutes ago drops the CPU: read as a partition, it is the restart.
    let settling = |i: &Incident, attempts: &[Attempt]| {
        let readings = Readings {
            attempts: attempts.to_vec(),
            ..Readings::default()
        };
        match judge(&policy.opinions.settling, &policy, i, &readings) {
            Verdict::Record(why) => Some(why),
            _ => None,
        }
    };
    let why = settling(&partition, &restarted).unwrap();
    assert!(
        why.message.contains("restart_service 20 minute(s) ago"),
        "{why:?}"
    );
    // The failure the restart addresses, found again: the restart did not work.
    assert!(settling(&runaway, &restarted).is_none());
    // Long enough ago, or an action that was not carried out: nothing to settle.
    let old = [attempt("restart_service", 90, OutcomeStatus::Verified)];
    let failed = [attempt("restart_service", 20, OutcomeStatus::Failed)];
    assert!(settling(&partition, &old).is_none());
    assert!(settling(&partition, &failed).is_none());
    // A scale-out of the group settles the instances' traffic too.
    let scaled = [attempt("scale_out", 10, OutcomeStatus::Verified)];
    assert!(settling(&partition, &scaled).is_some());
}

#[test]
fn a_surge_counts_for_the_group_only_when_its_instances_share_it() {
    let policy = Policy::bundled().unwrap();
    let on = |id: &str, mode: FailureMode| {
        let mut r = reading(None, mode, 0.9, &[]);
        r.observation.signal.resource.id = id.into();
        r
    };
    let surge = led_by(vec![on("i-0123456789abcdef0", FailureMode::TrafficSurge)]);
    let batch = |surging: usize| {
        let ids = [
            "i-0123456789abcdef0",
            "i-0123456789abcdef1",
            "i-0123456789abcdef2",
        ];
        let readings: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                on(
                    id,
                    if n < surging {
                        FailureMode::TrafficSurge
                    } else {
                        FailureMode::Normal
                    },
                )
            })
            .collect();
        GroupReadings::of_batch(&readings)
    };
    assert_eq!(batch(1).of("web"), (3, 1));
    let lone_surge = |i: &Incident, peers: &GroupReadings| {
        let readings = Readings {
            peers: peers.clone(),
            ..Readings::default()
        };
        judge(&policy.opinions.lone_surge, &policy, i, &readings) != Verdict::Agree
    };
    assert!(lone_surge(&surge, &batch(1)));
    assert!(!lone_surge(&surge, &batch(2)));
    // A group of one, or a group not read in this batch: nothing to compare with.
    assert!(!lone_surge(&surge, &GroupReadings::default()));
}

#[test]
fn a_threat_with_nothing_to_contain_is_escalated() {
    use vigil_core::domain::ThreatClass;
    let policy = Policy::bundled().unwrap();
    let principal = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:user/alice");
    let p = propose(
        &policy,
        &threat(ThreatClass::DefenceEvasion, principal),
        &[],
    );
    assert_eq!(p.tier, Tier::Escalate);
    assert!(p.action.is_none());
    let cited = |code: &str, text: &str| {
        p.reasons
            .iter()
            .any(|r| r.code.as_str() == code && r.message.contains(text))
    };
    assert!(
        cited("rule:freeze-on-intrusion", "map no pipeline stage"),
        "{:?}",
        p.reasons
    );
    assert!(
        cited("rule:freeze-on-intrusion", "no rung"),
        "{:?}",
        p.reasons
    );
}

#[test]
fn only_failures_told_without_acting_are_limited_to_one_telling_per_period() {
    use vigil_core::domain::ThreatClass;
    let mut policy = Policy::bundled().unwrap();
    enforce(&mut policy);
    let facts = Facts {
        group: healthy_group(),
        ..Facts::default()
    };
    let decided = |i: Incident| {
        let p = propose(&policy, &i, &[]);
        policy.decide(i, p, &facts, t0())
    };
    // Told, nothing done: one telling per period, keyed by resource, failure and tier.
    let told = decided(incident(FailureMode::DiskFilling, 0.9, Severity::High));
    assert_eq!(told.tier, Tier::Escalate);
    assert_eq!(
        policy.told_key(&told).as_deref(),
        Some("told#i-0123456789abcdef0#disk filling#escalate")
    );
    let repeated = policy.repeated(told);
    assert_eq!(repeated.tier, Tier::Observe);
    assert!(repeated.action.is_none() && repeated.cites(&Code::Opinion(OpinionCode::Repeat)));
    // An action is limited by cooldowns, and every threat is told.
    let acts = decided(incident(FailureMode::InstanceFailure, 0.95, Severity::High));
    assert!(acts.acts(), "{:?}", acts.reasons);
    assert_eq!(policy.told_key(&acts), None);
    let principal = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:user/alice");
    let threat = decided(threat(ThreatClass::DefenceEvasion, principal));
    assert_eq!(threat.tier, Tier::Escalate);
    assert_eq!(policy.told_key(&threat), None);
    // 0 turns it off.
    let mut off = policy.clone();
    off.opinions.repeat.enabled = false;
    let told = decided(incident(FailureMode::DiskFilling, 0.9, Severity::High));
    assert_eq!(off.told_key(&told), None);
}

#[test]
fn reconnaissance_on_familiar_reads_from_a_new_network_or_after_one_denial_is_recorded() {
    use vigil_core::domain::{Observation, Scored, Signal, SignalKind, Source, ThreatClass};
    use vigil_core::features::{IDENTITY_V2, identity::NAMES};
    let policy = Policy::bundled().unwrap();
    let call = |set: &[(&str, f64)]| {
        let values = NAMES
            .iter()
            .map(|n| set.iter().find(|(k, _)| k == n).map_or(0.0, |(_, v)| *v))
            .collect();
        Scored {
            observation: Observation {
                signal: Signal {
                    event_id: "e".into(),
                    source: Source::CloudTrail,
                    resource: Resource::new(
                        ResourceKind::Principal,
                        "arn:aws:sts::1:assumed-role/app/s",
                    ),
                    observed_at: t0(),
                    kind: SignalKind::ApiCall(vigil_core::domain::ApiCall {
                        event_source: "ec2.amazonaws.com".into(),
                        event_name: "DescribeInstances".into(),
                        principal: vigil_core::domain::Principal {
                            kind: "AssumedRole".into(),
                            id: "arn:aws:sts::1:assumed-role/app/s".into(),
                            name: Some("app".into()),
                            access_key_id: None,
                            mfa_authenticated: None,
                        },
                        source_ip: "203.0.113.9".into(),
                        user_agent: "aws-sdk-go".into(),
                        region: "us-east-1".into(),
                        error_code: None,
                        read_only: Some(true),
                        request: Vec::new(),
                    }),
                    values: Default::default(),
                    rules: Vec::new(),
                },
                features: vigil_core::domain::FeatureVector {
                    schema: IDENTITY_V2.into(),
                    names: NAMES.iter().map(|n| (*n).to_owned()).collect(),
                    values,
                },
            },
            score: vigil_core::domain::Score::unscored("test"),
        }
    };
    let recon = |calls: Vec<Scored>| {
        let mut i = threat(
            ThreatClass::Reconnaissance,
            Resource::new(ResourceKind::Principal, "arn:aws:sts::1:assumed-role/app/s"),
        );
        i.evidence = calls;
        propose(&policy, &i, &[])
    };
    let familiar = [("new_network", 1.0), ("read_only", 1.0), ("history", 7.0)];
    let p = recon(vec![call(&familiar), call(&familiar)]);
    assert_eq!(p.tier, Tier::Observe);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.code == Code::Opinion(OpinionCode::FamiliarReads))
    );
    // One denied read among them (a narrowed permission), from a known network or a new one:
    // recorded.
    for network in [0.0, 1.0] {
        let denied = [
            ("new_network", network),
            ("read_only", 1.0),
            ("history", 7.0),
            ("access_denied_15m", 1.0),
            ("error", 1.0),
        ];
        let p = recon(vec![call(&familiar), call(&denied)]);
        assert_eq!(p.tier, Tier::Observe, "{:?}", p.reasons);
    }
    // Anything else new about one of the calls, a second denial, or a failure that was no
    // denial: told.
    for (extra, value) in [
        ("new_api", 1.0),
        ("new_user_agent", 1.0),
        ("new_region", 1.0),
        ("new_hour", 1.0),
        ("access_denied_15m", 2.0),
        ("error", 1.0),
        ("tactic_discovery", 1.0),
    ] {
        let mut odd = familiar.to_vec();
        odd.push((extra, value));
        let p = recon(vec![call(&familiar), call(&odd)]);
        assert_eq!(p.tier, Tier::Escalate, "{extra}");
    }
    // A write from a new network: told.
    let p = recon(vec![call(&[("new_network", 1.0), ("history", 7.0)])]);
    assert_eq!(p.tier, Tier::Escalate);
    // Off: told.
    let mut off = policy.clone();
    off.opinions.familiar_reads.enabled = false;
    let mut i = threat(
        ThreatClass::Reconnaissance,
        Resource::new(ResourceKind::Principal, "arn:aws:sts::1:assumed-role/app/s"),
    );
    i.evidence = vec![call(&familiar)];
    assert_eq!(propose(&off, &i, &[]).tier, Tier::Escalate);
}

#[test]
fn threats_are_contained_where_they_can_be() {
    use vigil_core::domain::ThreatClass;
    let mut policy = Policy::bundled().unwrap();
    policy.mode = Mode::Enforce;
    // A leaked key is deactivated.
    let key = Resource::new(ResourceKind::AccessKey, "AKIAIOSFODNN7EXAMPLE");
    let p = propose(
        &policy,
        &threat(ThreatClass::CredentialCompromise, key),
        &[],
    );
    assert_eq!(p.tier, Tier::Block);
    assert!(
        matches!(&p.action, Some(Action::DeactivateAccessKey { access_key_id }) if access_key_id.as_str() == "AKIAIOSFODNN7EXAMPLE")
    );
    // A compromised instance is quarantined (the key rung does not apply to it).
    let instance = incident(FailureMode::Normal, 0.95, Severity::High).resource;
    let p = propose(
        &policy,
        &threat(ThreatClass::CredentialCompromise, instance),
        &[],
    );
    assert!(
        matches!(p.action, Some(Action::QuarantineInstance { .. })),
        "{:?}",
        p.reasons
    );
    // An intrusion into a principal that deploys through a stage freezes it, when the policy
    // maps the two; tags alone name nothing Vigil acts on.
    let mut app = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:role/ci");
    app.tags.insert(PIPELINE_TAG.into(), "web-release".into());
    app.tags.insert(STAGE_TAG.into(), "Production".into());
    let p = propose(&policy, &threat(ThreatClass::Persistence, app.clone()), &[]);
    assert!(p.action.is_none(), "{:?}", p.reasons);
    assert!(
        p.reasons
            .iter()
            .any(|r| r.message.contains("tags alone never give authority")),
        "{:?}",
        p.reasons
    );
    policy.deployments.push(Deployment {
        pipeline: "web-release".into(),
        stage: "Production".into(),
        resources: vec!["arn:aws:iam::1:role/ci".into()],
    });
    let p = propose(&policy, &threat(ThreatClass::Persistence, app.clone()), &[]);
    assert!(
        matches!(&p.action, Some(Action::FreezeDeployments { pipeline, stage }) if pipeline.as_str() == "web-release" && stage.as_str() == "Production")
    );
    // Another team's pipeline, named by a tag the principal's owner set: nothing.
    let mut elsewhere = app.clone();
    elsewhere
        .tags
        .insert(PIPELINE_TAG.into(), "payments-release".into());
    let p = propose(&policy, &threat(ThreatClass::Persistence, elsewhere), &[]);
    assert!(p.action.is_none(), "{:?}", p.reasons);
    // A hostile tag value never becomes an action.
    app.tags.insert(STAGE_TAG.into(), "Prod; rm -rf /".into());
    let p = propose(&policy, &threat(ThreatClass::Persistence, app), &[]);
    assert!(p.action.is_none());
    assert_eq!(p.tier, Tier::Escalate);
    // Unsure: a person approves.
    let mut unsure = threat(
        ThreatClass::CredentialCompromise,
        Resource::new(ResourceKind::AccessKey, "AKIAIOSFODNN7EXAMPLE"),
    );
    unsure.confidence = 0.85;
    policy.tiers.auto_heal_min_confidence = 0.9;
    let p = propose(&policy, &unsure, &[]);
    assert_eq!(p.tier, Tier::Approval);
}

#[test]
fn the_ladder_restarts_a_tagged_service_first_and_skips_it_otherwise() {
    let policy = Policy::bundled().unwrap();
    let mut i = incident(FailureMode::MemoryLeak, 0.9, Severity::High);
    let p = propose(&policy, &i, &[]);
    assert!(
        matches!(p.action, Some(Action::ReplaceInstance { .. })),
        "{:?}",
        p.reasons
    );
    assert!(
        p.reasons
            .iter()
            .any(|r| r.message.contains("RestartService skipped"))
    );
    i.resource
        .tags
        .insert(SERVICE_TAG.into(), "api.service".into());
    let p = propose(&policy, &i, &[]);
    assert!(
        matches!(&p.action, Some(Action::RestartService { service, .. }) if service.as_str() == "api.service")
    );
    // The restart did not verify: the next rung replaces the instance.
    let failed = Attempt {
        at: t0() - chrono::Duration::minutes(5),
        action: "restart_service".into(),
        status: OutcomeStatus::Failed,
        decision_id: "d".into(),
    };
    let p = propose(&policy, &i, &[failed]);
    assert!(matches!(p.action, Some(Action::ReplaceInstance { .. })));
    // A service name that could be a shell command is refused: the rung is skipped.
    i.resource
        .tags
        .insert(SERVICE_TAG.into(), "api;reboot".into());
    let p = propose(&policy, &i, &[]);
    assert!(matches!(p.action, Some(Action::ReplaceInstance { .. })));
    assert!(p.reasons.iter().any(|r| r.message.contains("refused")));
}

fn attempt(minutes_ago: i64, status: OutcomeStatus) -> Attempt {
    Attempt {
        at: t0() - chrono::Duration::minutes(minutes_ago),
        action: "replace_instance".into(),
        status,
        decision_id: "d".into(),
    }
}

struct Row {
    name: &'static str,
    policy: fn(&mut Policy),
    incident: Incident,
    facts: Facts,
    tier: Tier,
    acts: bool,
    cites: &'static str,
}

fn healthy_group() -> Option<GroupCapacity> {
    Some(GroupCapacity {
        min_size: 1,
        max_size: 6,
        desired: 3,
        in_service: 3,
    })
}

fn enforce(p: &mut Policy) {
    p.mode = Mode::Enforce;
}

fn check(row: Row) {
    let mut policy = Policy::bundled().unwrap();
    (row.policy)(&mut policy);
    let proposal = propose(&policy, &row.incident, &row.facts.attempts);
    let d = policy.decide(row.incident, proposal, &row.facts, t0());
    assert_eq!(d.tier, row.tier, "{}: {:#?}", row.name, d.reasons);
    assert_eq!(d.acts(), row.acts, "{}", row.name);
    assert!(
        d.cites(&row.cites.parse().unwrap()),
        "{}: no reason {:?} in {:#?}",
        row.name,
        row.cites,
        d.reasons
    );
    assert!(
        d.cites(&Code::Policy),
        "{}: every decision names its policy",
        row.name
    );
}

fn facts(group: Option<GroupCapacity>, attempts: Vec<Attempt>) -> Facts {
    Facts {
        kill_switch: false,
        group,
        attempts,
    }
}

#[test]
fn tiers() {
    let rows = [
        Row {
            name: "auto-heal",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::AutoHeal,
            acts: true,
            cites: "limit:blast-radius",
        },
        Row {
            name: "approval when unsure",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.72, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Approval,
            acts: false,
            cites: "tier",
        },
        Row {
            name: "escalate when no rule acts",
            policy: enforce,
            incident: incident(FailureMode::DiskFilling, 0.9, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "rule:escalate-resource-exhaustion",
        },
        Row {
            name: "escalate when nothing matches",
            policy: enforce,
            incident: incident(FailureMode::Unknown, 0.9, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "policy:no-rule",
        },
        Row {
            name: "observe when normal",
            policy: enforce,
            incident: incident(FailureMode::Normal, 0.9, Severity::Info),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Observe,
            acts: false,
            cites: "policy:normal",
        },
        Row {
            name: "dry-run records",
            policy: |_| {},
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::AutoHeal,
            acts: false,
            cites: "mode:dry-run",
        },
    ];
    for row in rows {
        check(row);
    }
}

#[test]
fn limits() {
    let rows = [
        Row {
            name: "kill switch (runtime)",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: Facts {
                kill_switch: true,
                ..facts(healthy_group(), vec![])
            },
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:kill-switch",
        },
        Row {
            name: "kill switch (policy)",
            policy: |p| {
                enforce(p);
                p.kill_switch = true;
            },
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:kill-switch",
        },
        Row {
            name: "protected tag",
            policy: enforce,
            incident: {
                let mut i = incident(FailureMode::CpuRunaway, 0.95, Severity::High);
                i.resource
                    .tags
                    .insert("vigil:protect".into(), "true".into());
                i
            },
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:protected",
        },
        Row {
            name: "maintenance window",
            policy: |p| {
                enforce(p);
                p.limits.maintenance_windows = vec![MaintenanceWindow {
                    days: vec![Weekday::Wed],
                    start: "11:00".into(),
                    end: "13:00".into(),
                }];
            },
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Observe,
            acts: false,
            cites: "limit:maintenance",
        },
        Row {
            name: "maintenance window past midnight, from yesterday",
            policy: |p| {
                enforce(p);
                p.limits.maintenance_windows = vec![MaintenanceWindow {
                    days: vec![Weekday::Tue],
                    start: "22:00".into(),
                    end: "13:00".into(),
                }];
            },
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Observe,
            acts: false,
            cites: "limit:maintenance",
        },
        Row {
            name: "loop breaker",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(
                healthy_group(),
                vec![
                    attempt(100, OutcomeStatus::Verified),
                    attempt(50, OutcomeStatus::Verified),
                    attempt(10, OutcomeStatus::Verified),
                ],
            ),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:loop-breaker",
        },
        Row {
            name: "loop breaker forgets old attempts",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(
                healthy_group(),
                vec![
                    attempt(500, OutcomeStatus::Verified),
                    attempt(400, OutcomeStatus::Verified),
                    attempt(300, OutcomeStatus::Verified),
                ],
            ),
            tier: Tier::AutoHeal,
            acts: true,
            cites: "limit:loop-breaker",
        },
        Row {
            name: "ladder exhausted",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![attempt(10, OutcomeStatus::Failed)]),
            tier: Tier::Escalate,
            acts: false,
            cites: "rule:replace-on-cpu-runaway",
        },
        Row {
            name: "blast radius: minimum in service",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(
                Some(GroupCapacity {
                    min_size: 1,
                    max_size: 2,
                    desired: 1,
                    in_service: 1,
                }),
                vec![],
            ),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:blast-radius",
        },
        Row {
            name: "blast radius: share of the group",
            policy: |p| {
                enforce(p);
                p.limits.max_group_share = 0.25;
            },
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:blast-radius",
        },
        Row {
            name: "blast radius: capacity unknown",
            policy: enforce,
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(None, vec![]),
            tier: Tier::Escalate,
            acts: false,
            cites: "limit:blast-radius",
        },
        Row {
            name: "rule shadowed by dry_run",
            policy: |p| {
                enforce(p);
                for r in &mut p.rules {
                    r.dry_run = true;
                }
            },
            incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
            facts: facts(healthy_group(), vec![]),
            tier: Tier::AutoHeal,
            acts: false,
            cites: "mode:dry-run",
        },
    ];
    for row in rows {
        check(row);
    }
}

#[test]
fn maintenance_windows() {
    let w = MaintenanceWindow {
        days: vec![Weekday::Sat],
        start: "23:00".into(),
        end: "02:00".into(),
    };
    let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
    // 2026-11-28 is a Saturday.
    assert!(w.contains(at(28, 23, 30)));
    assert!(w.contains(at(29, 1, 59)));
    assert!(!w.contains(at(29, 2, 0)));
    assert!(!w.contains(at(28, 22, 59)));
    assert!(!w.contains(at(27, 23, 30)));
}

/// A rule scoped to accounts covers only those (`own`: the stack's); a member account the
/// stack does not name is never acted in, whatever the rules say.
#[test]
fn rules_can_be_scoped_to_accounts_and_members_are_acted_in_only_when_named() {
    let yaml = format!(
        "version: 2\n{LIMITS}\nrules:\n\
         - {{name: home, failure_modes: [cpu_runaway], ladder: [replace_instance], tier: auto-heal, accounts: [own]}}\n\
         - {{name: member, failure_modes: [cpu_runaway], ladder: [scale_out], tier: auto-heal, accounts: ['222222222222']}}\n"
    );
    let mut policy = Policy::from_yaml(&yaml, "test").unwrap();
    policy.mode = Mode::Enforce;
    let home = incident(FailureMode::CpuRunaway, 0.95, Severity::High);
    let mut member = home.clone();
    member.resource.account = Some("222222222222".into());
    let mut other = home.clone();
    other.resource.account = Some("333333333333".into());
    let rule_of = |p: &Proposal| {
        p.reasons
            .iter()
            .find_map(|r| match &r.code {
                Code::Rule(name) => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };

    // Without the stack naming it, a member account's incident is told, never acted on.
    let p = propose(&policy, &member, &[]);
    assert_eq!((p.tier, p.action.is_none()), (Tier::Escalate, true));
    assert!(p.reasons.iter().any(|r| r.code == Code::MemberAccount));

    // Named: each incident meets the rule of its own account.
    policy.member_accounts = vec!["222222222222".into()];
    let p = propose(&policy, &home, &[]);
    assert_eq!(rule_of(&p), "rule:home", "{:?}", p.reasons);
    assert!(matches!(p.action, Some(Action::ReplaceInstance { .. })));
    let p = propose(&policy, &member, &[]);
    assert_eq!(rule_of(&p), "rule:member", "{:?}", p.reasons);
    assert!(matches!(p.action, Some(Action::ScaleOut { .. })));
    let p = propose(&policy, &other, &[]);
    assert_eq!((p.tier, p.action.is_none()), (Tier::Escalate, true));

    // An account that is neither `own` nor an id is refused with the policy.
    check_yaml(
        &format!(
            "version: 2\n{LIMITS}\nrules:\n- {{name: x, failure_modes: [cpu_runaway], tier: escalate, accounts: ['*']}}\n"
        ),
        Some("neither \"own\""),
    );
}
