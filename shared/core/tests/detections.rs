//! Detection rules in the policy: a rule's match counts whatever the principal's history and
//! the model read; its level decides what people hear when no policy rule names it; a policy
//! rule may name it to act; an operator may silence it on one principal until a date; a match
//! an outsider can cause never acts without a person. Pure: no port, no IO.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, TimeZone, Utc};
use vigil_core::domain::{
    ApiCall, Code, FeatureVector, Incident, Mode, Observation, Principal, Resource, ResourceKind,
    RuleHit, RuleLevel, Score, Scored, Severity, Signal, SignalKind, Source, Tier,
};
use vigil_core::policy::{Facts, Policy, Readings};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap()
}

fn hit(name: &str, level: RuleLevel) -> RuleHit {
    RuleHit {
        name: name.into(),
        id: format!("id-{name}"),
        title: format!("title of {name}"),
        level,
        attack: vec!["attack.defense-evasion".into(), "attack.t1562.008".into()],
        outsider: false,
        repeat_minutes: None,
    }
}

/// A call by alice the model reads as benign, with the rules it matched, as an incident.
fn incident(rules: Vec<RuleHit>) -> Incident {
    let signal = Signal {
        event_id: "3b1f6a4e-0000-4000-8000-000000000001".into(),
        source: Source::CloudTrail,
        resource: Resource::new(ResourceKind::Principal, ALICE),
        observed_at: t0(),
        kind: SignalKind::ApiCall(ApiCall {
            event_source: "cloudtrail.amazonaws.com".into(),
            event_name: "StopLogging".into(),
            principal: Principal {
                kind: "IAMUser".into(),
                id: ALICE.into(),
                name: Some("alice".into()),
                access_key_id: Some("AKIAQEXAMPLEKEY00001".into()),
                mfa_authenticated: None,
            },
            source_ip: "203.0.113.24".into(),
            user_agent: "aws-cli/2.15.30".into(),
            region: "eu-west-1".into(),
            error_code: None,
            read_only: Some(false),
            request: vec!["name=org-trail".into()],
        }),
        values: Default::default(),
        rules,
    };
    let mut score = Score::unscored("threat/1");
    score.confidence = 0.97;
    let scored = Scored {
        observation: Observation {
            signal,
            features: FeatureVector {
                schema: "identity.v2".into(),
                names: Vec::new(),
                values: Vec::new(),
            },
        },
        score,
    };
    vigil_core::incidents::open(vec![scored]).remove(0)
}

/// The decision a policy makes on an incident, with nothing else read.
fn decide(policy: &Policy, incident: Incident) -> vigil_core::domain::Decision {
    let draft = policy.draft(incident, &Readings::default(), t0());
    let pending = policy.limit(draft, &Facts::default(), t0());
    policy.settle(pending, None)
}

/// One expectation: the tier decided and a reason code it must cite.
fn check(policy: &Policy, rules: Vec<RuleHit>, tier: Tier, cites: Code) {
    let names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let d = decide(policy, incident(rules));
    assert_eq!(d.tier, tier, "{names:?}: {:#?}", d.reasons);
    assert!(
        d.cites(&cites),
        "{names:?} does not cite {cites}: {:#?}",
        d.reasons
    );
}

#[test]
fn a_match_is_told_from_medium_up_and_recorded_below_whatever_the_model_reads() {
    let policy = Policy::bundled().unwrap();
    for level in [RuleLevel::Medium, RuleLevel::High, RuleLevel::Critical] {
        check(
            &policy,
            vec![hit("stop", level)],
            Tier::Escalate,
            Code::Detection,
        );
    }
    for level in [RuleLevel::Informational, RuleLevel::Low] {
        check(
            &policy,
            vec![hit("stop", level)],
            Tier::Observe,
            Code::Detection,
        );
    }
    // Nothing matched and the model reads it benign: recorded as normal.
    check(&policy, Vec::new(), Tier::Observe, Code::Normal);
    // The incident carries the rule's level as its severity and says which rule it is.
    let i = incident(vec![
        hit("stop", RuleLevel::High),
        hit("cis", RuleLevel::Low),
    ]);
    assert_eq!(i.severity, Severity::High);
    assert_eq!(i.what(), "detection stop");
    let d = decide(&policy, i);
    let cited: Vec<&str> = d
        .reasons
        .iter()
        .filter(|r| r.code == Code::Detection)
        .map(|r| r.message.as_str())
        .collect();
    assert!(
        cited.iter().any(|m| m.starts_with(
            "stop matched: title of stop (level high) [attack.defense-evasion, attack.t1562.008]"
        )),
        "{cited:?}"
    );
    assert!(
        cited.iter().any(|m| m.starts_with("cis matched")),
        "{cited:?}"
    );
}

#[test]
fn a_suppression_silences_one_rule_on_one_principal_until_it_expires() {
    let yaml = |on: &str, expires: &str| {
        let bundled = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/policy/default.yaml"
        ))
        .unwrap();
        format!(
            "{bundled}\nsuppressions:\n  - {{rule: stop, on: \"{on}\", expires: {expires}, reason: \"trail migration, change CHG-1234\"}}\n"
        )
    };
    let live = Policy::from_yaml(&yaml(ALICE, "2026-11-30"), "test").unwrap();
    check(
        &live,
        vec![hit("stop", RuleLevel::High)],
        Tier::Observe,
        Code::Suppressed,
    );
    // Another rule on the same principal still speaks.
    check(
        &live,
        vec![hit("stop", RuleLevel::High), hit("other", RuleLevel::High)],
        Tier::Escalate,
        Code::Suppressed,
    );
    // Another principal, or after its last day: not silenced.
    let elsewhere = Policy::from_yaml(
        &yaml("arn:aws:iam::111122223333:user/bob", "2026-11-30"),
        "test",
    )
    .unwrap();
    check(
        &elsewhere,
        vec![hit("stop", RuleLevel::High)],
        Tier::Escalate,
        Code::Detection,
    );
    let expired = Policy::from_yaml(&yaml(ALICE, "2026-11-01"), "test").unwrap();
    check(
        &expired,
        vec![hit("stop", RuleLevel::High)],
        Tier::Escalate,
        Code::Detection,
    );
    // The reason is in the decision, and so in the audit trail.
    let d = decide(&live, incident(vec![hit("stop", RuleLevel::High)]));
    assert!(
        d.reasons.iter().any(|r| r.message.contains("CHG-1234")),
        "{:#?}",
        d.reasons
    );
    // A suppression needs a reason, and names a rule.
    for bad in [
        "suppressions: [{rule: stop, on: x, expires: 2026-12-01, reason: ok}]",
        "suppressions: [{rule: '', on: x, expires: 2026-12-01, reason: a long enough reason}]",
        "suppressions: [{rule: stop, on: x, expires: someday, reason: a long enough reason}]",
    ] {
        let bundled = yaml(ALICE, "2026-11-30");
        let text = bundled.split("\nsuppressions:").next().unwrap().to_owned() + "\n" + bad + "\n";
        assert!(Policy::from_yaml(&text, "test").is_err(), "{bad}");
    }
}

#[test]
fn a_policy_rule_may_name_detections_and_act_on_them() {
    let bundled = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/policy/default.yaml"
    ))
    .unwrap();
    let text = bundled.replacen(
        "rules:\n",
        "rules:\n  - name: freeze-on-trail-stopped\n    detections: [stop]\n    ladder: [freeze_deployments]\n    tier: block\n  - name: tell-on-critical\n    levels: [critical]\n    tier: escalate\n",
        1,
).replace(
        "deployments: []",
        "deployments:\n  - {pipeline: web, stage: Deploy, resources: [\"arn:aws:iam::111122223333:user/alice\"]}",
    );
    let mut policy = Policy::from_yaml(&text, "test").unwrap();
    policy.mode = Mode::Enforce;
    // The named rule acts, at certainty: a rule's match is not a model's guess.
    let d = decide(&policy, incident(vec![hit("stop", RuleLevel::High)]));
    assert_eq!(d.tier, Tier::Block, "{:#?}", d.reasons);
    assert!(d.action.is_some());
    assert!(d.cites(&Code::rule("freeze-on-trail-stopped")));
    // A level names every rule at it.
    check(
        &policy,
        vec![hit("any", RuleLevel::Critical)],
        Tier::Escalate,
        Code::rule("tell-on-critical"),
    );
    // What an outsider can cause (a failed sign-in, a denied call) never acts without a person.
    let mut outsider = hit("stop", RuleLevel::High);
    outsider.outsider = true;
    let d = decide(&policy, incident(vec![outsider]));
    assert_eq!(d.tier, Tier::Approval, "{:#?}", d.reasons);
    assert!(d.cites(&Code::Outsider));
    // A policy rule must name something to cover.
    let empty = bundled.replacen(
        "rules:\n",
        "rules:\n  - name: nothing\n    tier: escalate\n",
        1,
    );
    assert!(Policy::from_yaml(&empty, "test").is_err());
}

#[test]
fn a_posture_rule_is_told_once_per_its_own_period() {
    let policy = Policy::bundled().unwrap();
    let mut weekly = hit("no-mfa", RuleLevel::Medium);
    weekly.repeat_minutes = Some(7 * 24 * 60);
    let d = decide(&policy, incident(vec![weekly]));
    assert_eq!(d.tier, Tier::Escalate);
    assert!(policy.told_key(&d).is_some());
    assert_eq!(policy.repeat_period(&d), chrono::Duration::days(7));
    // Without its own period, the policy's.
    let d = decide(&policy, incident(vec![hit("stop", RuleLevel::High)]));
    assert_eq!(policy.repeat_period(&d), policy.opinions.repeat.period());
}
