//! The walking skeleton against moto: a CloudWatch alarm on an instance of an Auto Scaling
//! group flows ingest -> score -> decide -> remediate through the real AWS adapters; the
//! instance ends Unhealthy in Auto Scaling and the alert is in SNS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use vigil_core::domain::{Code, Mode, OutcomeStatus, Tier};
use vigil_core::events;
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_handlers::{decide, ingest, remediate, score};
use vigil_tests as h;

use h::Stack;

/// Delivers one event through the four stages with the real adapters, as `owner`.
struct Pipeline<'a>(&'a Stack);

impl Pipeline<'_> {
    async fn deliver(
        &self,
        event: &serde_json::Value,
        owner: &str,
        mode: Mode,
    ) -> Vec<(vigil_core::domain::Decision, vigil_core::domain::Outcome)> {
        self.deliver_with(event, owner, mode, None).await
    }

    /// [`Self::deliver`], with Security Hub findings turned on when `hub` is given.
    async fn deliver_with(
        &self,
        event: &serde_json::Value,
        owner: &str,
        mode: Mode,
        hub: Option<vigil_core::securityhub::Stack>,
    ) -> Vec<(vigil_core::domain::Decision, vigil_core::domain::Outcome)> {
        let aws = h::Adapters::new(self.0);
        let envelope = events::parse_envelope(event.to_string().as_bytes()).unwrap();
        let observed = ingest::handle(
            &envelope,
            &ingest::IngestConfig::default(),
            &aws.ingest_ports(),
        )
        .await
        .unwrap();
        let scored = score::handle(observed, &models());
        let config = decide::PolicyStore::new(Policy::bundled().unwrap(), mode, decide::POLICY_TTL);
        let decisions = decide::handle(scored, owner, &config, &aws.decide_ports(), Utc::now())
            .await
            .unwrap();
        let rports = aws.remediate_ports();
        let verify = remediate::RemediateConfig {
            verify_attempts: 3,
            verify_interval: std::time::Duration::from_millis(200),
            securityhub: hub,
            ..Default::default()
        };
        let mut out = Vec::new();
        for d in decisions.decisions {
            let o = remediate::handle(&d, "attempt-1", &verify, rports, d.decided_at)
                .await
                .unwrap();
            out.push((d, o));
        }
        out
    }
}

/// The CPU alarm fixture, re-pointed at `instance`, with a fresh event id.
fn cpu_alarm(instance: &str) -> serde_json::Value {
    let mut e = h::fixture_json("alarm-cpu-high.json");
    e["id"] = serde_json::json!(h::unique("event"));
    e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        serde_json::json!(instance);
    e
}

#[tokio::test]
async fn cpu_alarm_marks_the_instance_unhealthy_and_publishes_the_alert() {
    let stack = Stack::new().await;
    let (group, instances) = h::create_group(&stack.config, 3).await;
    let target = &instances[0];
    assert_eq!(h::instance_health(&stack.config, target).await, "Healthy");

    let event = cpu_alarm(target);
    let results = Pipeline(&stack)
        .deliver(&event, "execution-1", Mode::Enforce)
        .await;

    assert_eq!(results.len(), 1);
    let (decision, outcome) = &results[0];
    assert_eq!(decision.tier, Tier::AutoHeal);
    assert_eq!(
        decision.incident.resource.group.as_ref().unwrap().as_str(),
        group
    );
    assert_eq!(
        outcome.status,
        OutcomeStatus::Verified,
        "{}",
        outcome.detail
    );

    // Auto Scaling's own view of the instance, read back from the emulator.
    assert_eq!(h::instance_health(&stack.config, target).await, "Unhealthy");
    for other in &instances[1..] {
        assert_eq!(h::instance_health(&stack.config, other).await, "Healthy");
    }

    // The message SNS accepted, read back from the emulator's state.
    let sent = h::sns_sent(&stack.topic);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let msg = &sent[0];
    assert_eq!(Some(msg.id.as_str()), outcome.notification_id.as_deref());
    assert!(
        msg.subject.contains("CPU runaway") && msg.subject.contains(target.as_str()),
        "{}",
        msg.subject
    );
    assert!(msg.subject.chars().count() < 100);
    assert!(msg.body.contains("ServerCpuTooHigh"), "{}", msg.body);
    assert!(
        msg.body.contains("rule:replace-on-cpu-runaway"),
        "{}",
        msg.body
    );
    assert!(msg.body.contains("Verified"), "{}", msg.body);
    assert_eq!(msg.attributes["tier"]["Value"], "auto-heal");
    assert_eq!(msg.attributes["resource"]["Value"], target.as_str());
}

#[tokio::test]
async fn with_security_hub_on_the_healed_incident_is_one_archived_finding() {
    use aws_sdk_securityhub::types::RecordState;
    let stack = Stack::new().await;
    let (_, instances) = h::create_group(&stack.config, 3).await;
    let hub = vigil_core::securityhub::Stack {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    let results = Pipeline(&stack)
        .deliver_with(
            &cpu_alarm(&instances[0]),
            "execution-1",
            Mode::Enforce,
            Some(hub.clone()),
        )
        .await;
    let (decision, outcome) = &results[0];
    assert_eq!(
        outcome.status,
        OutcomeStatus::Verified,
        "{}",
        outcome.detail
    );
    // Read back from the emulator (which implements no filters: compared here).
    let all = aws_sdk_securityhub::Client::new(&stack.config)
        .get_findings()
        .max_results(100)
        .send()
        .await
        .unwrap();
    let found: Vec<_> = all
        .findings()
        .iter()
        .filter(|f| f.id() == Some(decision.incident.id.as_str()))
        .collect();
    assert_eq!(found.len(), 1, "{:?}", all.findings());
    let f = found[0];
    assert_eq!(f.record_state(), Some(&RecordState::Archived));
    assert_eq!(f.product_arn(), Some(hub.product_arn().as_str()));
    assert!(
        f.resources()[0]
            .id()
            .is_some_and(|id| id.ends_with(&format!("instance/{}", instances[0]))),
        "{f:?}"
    );
    assert_eq!(
        f.product_fields().and_then(|p| p.get("vigil/decision")),
        Some(&decision.id)
    );
    // People were told as before: the finding is beside the email, not instead of it.
    assert_eq!(h::sns_sent(&stack.topic).len(), 1);
}

#[tokio::test]
async fn a_redelivered_event_acts_once() {
    let stack = Stack::new().await;
    let (_, instances) = h::create_group(&stack.config, 3).await;
    let event = cpu_alarm(&instances[0]);

    let first = Pipeline(&stack)
        .deliver(&event, "execution-1", Mode::Enforce)
        .await;
    let second = Pipeline(&stack)
        .deliver(&event, "execution-2", Mode::Enforce)
        .await;

    assert_eq!(first[0].1.status, OutcomeStatus::Verified);
    assert_eq!(second[0].0.tier, Tier::Observe);
    assert!(second[0].0.cites(&Code::Dedup));
    assert_eq!(second[0].1.status, OutcomeStatus::NotActed);
    assert_eq!(h::sns_sent(&stack.topic).len(), 1);
    // Only the alarm's instance was touched.
    assert_eq!(
        h::instance_health(&stack.config, &instances[1]).await,
        "Healthy"
    );
}

#[tokio::test]
async fn dry_run_and_kill_switch_change_nothing() {
    let stack = Stack::new().await;
    let (_, instances) = h::create_group(&stack.config, 3).await;

    let dry = Pipeline(&stack)
        .deliver(&cpu_alarm(&instances[0]), "execution-1", Mode::DryRun)
        .await;
    assert_eq!(dry[0].1.status, OutcomeStatus::NotActed);
    assert_eq!(
        h::instance_health(&stack.config, &instances[0]).await,
        "Healthy"
    );

    h::put_parameter(&stack.config, &stack.kill_switch, "on").await;
    let killed = Pipeline(&stack)
        .deliver(&cpu_alarm(&instances[1]), "execution-2", Mode::Enforce)
        .await;
    assert_eq!(killed[0].0.tier, Tier::Escalate);
    assert!(killed[0].0.cites(&Code::KillSwitch));
    assert_eq!(
        h::instance_health(&stack.config, &instances[1]).await,
        "Healthy"
    );

    // Both were still reported to people, in the group's conversation: the held action is an
    // update told at once (people must act now), answering the first email.
    let sent = h::sns_sent(&stack.topic);
    assert_eq!(sent.len(), 2);
    assert!(sent[0].subject.contains("DRY-RUN"));
    assert_eq!(sent[1].subject, format!("Re: {}", sent[0].subject));
    let first_line = sent[1].body.lines().next().unwrap();
    assert!(first_line.contains("ATTENTION"), "{}", sent[1].body);
    assert!(
        sent[1].body.contains("limit:kill-switch"),
        "{}",
        sent[1].body
    );
}

#[tokio::test]
async fn malformed_and_unknown_events_take_no_action() {
    let stack = Stack::new().await;
    let (_, instances) = h::create_group(&stack.config, 3).await;
    let aws = h::Adapters::new(&stack);
    let ports = aws.ingest_ports();
    let settings = ingest::IngestConfig::default();

    let mut malformed = cpu_alarm(&instances[0]);
    malformed["detail"].as_object_mut().unwrap().remove("state");
    let env = events::parse_envelope(malformed.to_string().as_bytes()).unwrap();
    let err = ingest::handle(&env, &settings, &ports).await.unwrap_err();
    assert!(matches!(
        err,
        ingest::IngestError::Event(events::EventError::Detail { .. })
    ));

    let mut hostile = cpu_alarm(&instances[0]);
    hostile["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        serde_json::json!(format!("{}$(reboot)", instances[0]));
    let env = events::parse_envelope(hostile.to_string().as_bytes()).unwrap();
    assert!(ingest::handle(&env, &settings, &ports).await.is_err());

    let unknown = h::fixture_json("unknown-detail-type.json");
    let env = events::parse_envelope(unknown.to_string().as_bytes()).unwrap();
    let out = ingest::handle(&env, &settings, &ports).await.unwrap();
    assert!(out.observations.is_empty() && out.ignored.is_some());

    for i in &instances {
        assert_eq!(h::instance_health(&stack.config, i).await, "Healthy");
    }
    assert!(h::sns_sent(&stack.topic).is_empty());
}

/// The bundled models, as the score function loads them.
fn models() -> Models {
    Models::bundled().expect("the bundled models decode")
}

/// An operator's own Sigma rule, set at run time in the rules parameter.
const OPERATOR_RULE: &str = r#"
title: The CI role stopped a trail
id: 4b1e2c9a-6f0d-4e47-9a51-0c3a2d7e8f10
name: acme_ci_stopped_a_trail
status: experimental
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: StopLogging
    userIdentity.sessionContext.sessionIssuer.userName: ci-deployer
  condition: selection
level: high
tags: [attack.defense-evasion, attack.t1562.008]
"#;

#[tokio::test]
async fn ingest_matches_the_operators_rules_override_and_keeps_the_last_good_set() {
    use vigil_aws::ssm::RulesParameter;
    use vigil_handlers::rules::RuleStore;
    let stack = Stack::new().await;
    let aws = h::Adapters::new(&stack);
    let ports = aws.ingest_ports();
    let name = stack.rules.clone();
    let parameter = RulesParameter::new(&stack.config, &name);
    // No time to live: every call reads the parameter again.
    let store = RuleStore::new(
        vigil_rules::Pack::bundled().unwrap().clone(),
        std::time::Duration::ZERO,
    );
    let event = h::fixture_json("sources/cloudtrail-stop-logging.json");
    let envelope = events::parse_envelope(event.to_string().as_bytes()).unwrap();
    let matched = async |store: &RuleStore| -> Vec<String> {
        let pack = store.current(&parameter).await;
        let settings = ingest::IngestConfig {
            correlations: pack.correlated(),
            rules: Some(pack),
            ..ingest::IngestConfig::default()
        };
        let out = ingest::handle(&envelope, &settings, &ports).await.unwrap();
        out.observations[0]
            .signal
            .rules
            .iter()
            .map(|r| r.name.clone())
            .collect()
    };

    let bundled = matched(&store).await;
    assert!(
        bundled.iter().any(|n| n == "aws_cloudtrail_stop_logging"),
        "{bundled:?}"
    );
    assert!(!bundled.iter().any(|n| n == "acme_ci_stopped_a_trail"));
    assert_eq!(store.version(), None);

    h::put_parameter(&stack.config, &name, OPERATOR_RULE).await;
    let with_override = matched(&store).await;
    assert!(
        with_override.iter().any(|n| n == "acme_ci_stopped_a_trail"),
        "{with_override:?}"
    );
    assert!(
        with_override
            .iter()
            .any(|n| n == "aws_cloudtrail_stop_logging")
    );
    let good = store.version().expect("the override is in force");

    // An override with a rule that names no level is refused whole; the last good set stays.
    let invalid = format!(
        "{OPERATOR_RULE}---\n{}",
        OPERATOR_RULE
            .replace(
                "4b1e2c9a-6f0d-4e47-9a51-0c3a2d7e8f10",
                "4b1e2c9a-6f0d-4e47-9a51-0c3a2d7e8f11"
            )
            .replace("name: acme_ci_stopped_a_trail", "name: acme_second")
            .replace("level: high\n", "")
    );
    h::put_parameter(&stack.config, &name, &invalid).await;
    let after_refusal = matched(&store).await;
    assert!(after_refusal.iter().any(|n| n == "acme_ci_stopped_a_trail"));
    assert!(!after_refusal.iter().any(|n| n == "acme_second"));
    assert_eq!(store.version().as_deref(), Some(good.as_str()));
    assert!(store.refused().is_some_and(|v| v != good));

    // Removing the override brings back the bundled pack alone.
    h::put_parameter(&stack.config, &name, "none").await;
    assert_eq!(matched(&store).await, bundled);
    assert_eq!(store.version(), None);
}
