//! The four stages chained on in-memory ports: the same handlers the Lambda functions run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use chrono::{TimeZone, Utc};
use vigil_core::domain::Code;
use vigil_core::domain::{
    Action, Decision, FailureMode, Mode, Outcome, OutcomeStatus, SignalKind, Tier,
};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_core::policy::opinions::OpinionCode;
use vigil_handlers::{decide, ingest, score};
use vigil_lab::pipeline::Pipeline;

const CPU_INSTANCE: &str = "i-12345678901234567";

/// The in-memory pipeline, the CPU alarm's instance in its group, and the stack's mode and
/// account as the test sets them.
struct World {
    pipeline: Pipeline,
    mode: Mode,
    /// The stack's account, when the test sets one.
    account: Option<String>,
    /// The stack's Region, when the test sets one.
    region: Option<String>,
}

impl std::ops::Deref for World {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl World {
    /// The CPU alarm's instance in a group of `size` healthy instances.
    fn new(mode: Mode, size: usize) -> Self {
        let mut pipeline = Pipeline::new(models(), Policy::bundled().unwrap(), mode);
        // Remediate looks twice, as a deployed one looks several times.
        pipeline.remediate.verify_attempts = 2;
        let mut ids = vec![InstanceId::parse(CPU_INSTANCE).unwrap()];
        for i in 1..size {
            ids.push(InstanceId::parse(&format!("i-{:08x}", 0xb000_0000_u32 + i as u32)).unwrap());
        }
        pipeline
            .fleet
            .add_group(&GroupName::parse("web-prod").unwrap(), 1, 6, &ids);
        World {
            pipeline,
            mode,
            account: None,
            region: None,
        }
    }

    /// Runs `ingest` alone on one event.
    fn ingest(
        &self,
        event: &vigil_core::events::Envelope,
    ) -> Result<vigil_core::stages::Observed, ingest::IngestError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(ingest::handle(
            event,
            &ingest::IngestConfig::default(),
            &self.ingest_ports(),
        ))
    }

    fn health(&self) -> String {
        self.fleet
            .health(&InstanceId::parse(CPU_INSTANCE).unwrap())
            .unwrap()
    }
}

/// Runs one fixture through ingest -> score -> decide -> remediate as delivery `owner`.
fn check(world: &World, fixture: &str, owner: &str) -> Vec<(Decision, Outcome)> {
    check_bytes(world, &common::fixture_bytes(fixture), owner, 0)
}

/// What the state machine does between two stages: the payload goes out as JSON and comes
/// back in as the next stage's input type.
fn over_the_wire<T: serde::Serialize, U: serde::de::DeserializeOwned>(value: &T) -> U {
    serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
}

/// Runs raw event bytes through the stages, `minute` minutes after noon, passing each payload
/// between stages as JSON, shaped as `infra/statemachine.asl.json` shapes it.
fn check_bytes(world: &World, bytes: &[u8], owner: &str, minute: u32) -> Vec<(Decision, Outcome)> {
    run_bytes(world, bytes, owner, minute).unwrap()
}

/// Why the stages refused an event: it did not parse, or `ingest` refused it.
#[derive(Debug)]
enum Refused {
    Envelope(vigil_core::events::EventError),
    Ingest(ingest::IngestError),
}

impl Refused {
    /// The event error either way.
    fn event_error(&self) -> Option<&vigil_core::events::EventError> {
        match self {
            Refused::Envelope(e) | Refused::Ingest(ingest::IngestError::Event(e)) => Some(e),
            Refused::Ingest(_) => None,
        }
    }
}

/// As [`check_bytes`], with the refusal when there is one.
fn run_bytes(
    world: &World,
    bytes: &[u8],
    owner: &str,
    minute: u32,
) -> Result<Vec<(Decision, Outcome)>, Refused> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(stages(world, bytes, owner, minute))
}

/// The stages on one delivery, as the state machine runs them.
async fn stages(
    world: &World,
    bytes: &[u8],
    owner: &str,
    minute: u32,
) -> Result<Vec<(Decision, Outcome)>, Refused> {
    {
        let event = vigil_core::events::parse_envelope(bytes).map_err(Refused::Envelope)?;
        let config = ingest::IngestConfig {
            account: world.account.clone(),
            region: world.region.clone(),
            ..ingest::IngestConfig::default()
        };
        let observed = ingest::handle(&event, &config, &world.ingest_ports())
            .await
            .map_err(Refused::Ingest)?;
        let scored = score::handle(over_the_wire(&observed), &models());
        // The Decide state's Parameters: event_id, scored and the execution id.
        let scored: vigil_core::stages::ScoredBatch = over_the_wire(&serde_json::json!({
            "event_id": scored.event_id,
            "scored": scored.scored,
            "execution_id": owner,
        }));
        let config =
            decide::PolicyStore::new(Policy::bundled().unwrap(), world.mode, decide::POLICY_TTL);
        let ports = world.decide_ports();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
            + chrono::Duration::minutes(i64::from(minute));
        let decisions: vigil_core::stages::Decisions = over_the_wire(
            &decide::handle(scored, owner, &config, &ports, now)
                .await
                .unwrap(),
        );
        let mut out = Vec::new();
        // The Map state hands remediate one decision at a time.
        for d in decisions.decisions {
            let o = remediate_one(world, &over_the_wire(&d)).await;
            out.push((d, over_the_wire(&o)));
        }
        Ok(out)
    }
}

/// `remediate` on one decision, on the world.
async fn remediate_one(world: &World, d: &Decision) -> Outcome {
    world.remediate(d, d.decided_at).await.unwrap()
}

#[test]
fn cpu_alarm_replaces_the_instance_and_tells_people() {
    let world = World::new(Mode::Enforce, 3);
    let results = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(results.len(), 1);
    let (d, o) = &results[0];
    assert_eq!(d.tier, Tier::AutoHeal);
    assert!(
        matches!(&d.action, Some(Action::ReplaceInstance { group, .. }) if group.as_str() == "web-prod")
    );
    assert!(d.cites(&Code::rule("replace-on-cpu-runaway")));
    assert_eq!(o.status, OutcomeStatus::Verified);
    assert_eq!(world.health(), "UNHEALTHY");
    let sent = world.outbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].subject.contains("CPU runaway") && sent[0].subject.contains(CPU_INSTANCE));
    assert!(sent[0].subject.chars().count() < 100);
    assert!(sent[0].body.contains("ServerCpuTooHigh"));
    assert_eq!(
        sent[0].attributes.get("tier").map(String::as_str),
        Some("auto-heal")
    );
}

#[test]
fn a_trail_stopped_is_told_to_people_as_defence_evasion_and_nothing_changes() {
    let world = World::new(Mode::Enforce, 3);
    let results = check(&world, "sources/cloudtrail-stop-logging.json", "delivery-1");
    assert_eq!(results.len(), 1);
    let (d, o) = &results[0];
    assert_eq!(d.tier, Tier::Escalate);
    assert!(d.action.is_none());
    assert_eq!(
        d.incident.threat,
        Some(vigil_core::domain::ThreatClass::DefenceEvasion)
    );
    // The freeze rung needs the principal's pipeline tags; without them people are told.
    assert!(
        d.cites(&Code::rule("freeze-on-intrusion")),
        "{:?}",
        d.reasons
    );
    assert_ne!(o.status, OutcomeStatus::Verified);
    assert_eq!(world.health(), "HEALTHY");
    let sent = world.outbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].subject.contains("defence evasion"),
        "{}",
        sent[0].subject
    );
    assert!(
        sent[0].body.contains("why: tactic_defence_evasion"),
        "{}",
        sent[0].body
    );
    assert_eq!(
        sent[0].attributes.get("threat").map(String::as_str),
        Some("defence evasion")
    );
}

#[test]
fn the_alarm_back_to_ok_after_a_replacement_closes_the_loop() {
    let world = World::new(Mode::Enforce, 3);
    let acted = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(acted[0].1.status, OutcomeStatus::Verified);
    let ok = check_bytes(
        &world,
        &common::fixture_bytes("alarm-cpu-ok.json"),
        "delivery-2",
        10,
    );
    let (d, _) = &ok[0];
    assert_eq!(d.tier, Tier::Observe);
    assert!(d.cites(&Code::Recovery), "{:?}", d.reasons);
    let sent = world.outbox.sent();
    assert_eq!(sent.len(), 2);
    // An update in the incident's conversation: it answers the first email, and its first
    // line says it recovered.
    assert_eq!(sent[1].subject, format!("Re: {}", sent[0].subject));
    let first_line = sent[1].body.lines().next().unwrap();
    assert!(first_line.contains("RECOVERED"), "{}", sent[1].body);
    assert!(
        sent[1].body.contains("replace_instance"),
        "{}",
        sent[1].body
    );
    // The group's launch of a replacement is recognised too (grouped with the recovery email
    // above when it comes within the same quarter hour, so checked on the decision).
    let mut launch: serde_json::Value = serde_json::from_slice(&common::fixture_bytes(
        "sources/aws_lambda_events/example-autoscaling-event-launch-successful.json",
    ))
    .unwrap();
    launch["detail"]["AutoScalingGroupName"] = serde_json::json!("web-prod");
    launch["detail"]["EC2InstanceId"] = serde_json::json!("i-0abcdef1234567890");
    let launched = check_bytes(&world, launch.to_string().as_bytes(), "delivery-4", 12);
    let (d, _) = &launched[0];
    assert!(
        d.reasons
            .iter()
            .any(|r| r.code == Code::Recovery && r.message.contains("replacement is in service")),
        "{:?}",
        d.reasons
    );
    // An OK with no action before it is recorded only, as before.
    let quiet = World::new(Mode::Enforce, 3);
    let ok = check(&quiet, "alarm-cpu-ok.json", "delivery-3");
    assert!(!ok[0].0.cites(&Code::Recovery));
    assert!(quiet.outbox.sent().is_empty());
}

#[test]
fn dry_run_reports_but_changes_nothing() {
    let world = World::new(Mode::DryRun, 3);
    let results = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(results[0].1.status, OutcomeStatus::NotActed);
    assert_eq!(world.health(), "HEALTHY");
    assert_eq!(world.outbox.sent().len(), 1);
    assert!(world.outbox.sent()[0].subject.contains("DRY-RUN"));
}

#[test]
fn a_redelivered_event_acts_once() {
    let world = World::new(Mode::Enforce, 3);
    let first = check(&world, "alarm-cpu-high.json", "delivery-1");
    let again = check(&world, "alarm-cpu-high.json", "delivery-2");
    assert_eq!(first[0].1.status, OutcomeStatus::Verified);
    assert_eq!(again[0].0.tier, Tier::Observe);
    assert!(again[0].0.cites(&Code::Dedup));
    assert_eq!(again[0].1.status, OutcomeStatus::NotActed);
    // Observe records only: one message and one incident in all.
    assert_eq!(world.outbox.sent().len(), 1);
    assert_eq!(world.state.incidents().len(), 1);
}

#[test]
fn a_retry_of_the_same_delivery_is_not_a_duplicate() {
    let world = World::new(Mode::Enforce, 3);
    check(&world, "alarm-cpu-high.json", "delivery-1");
    let retry = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(retry[0].0.tier, Tier::AutoHeal);
    // The instance is already on its way out: the retry verifies instead of acting again.
    assert_eq!(retry[0].1.status, OutcomeStatus::Verified);
}

#[test]
fn kill_switch_stops_every_action() {
    let world = World::new(Mode::Enforce, 3);
    world.state.set_kill_switch(true);
    let results = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(results[0].0.tier, Tier::Escalate);
    assert!(results[0].0.cites(&Code::KillSwitch));
    assert_eq!(world.health(), "HEALTHY");
}

#[test]
fn blast_radius_protects_small_groups() {
    let world = World::new(Mode::Enforce, 1);
    let results = check(&world, "alarm-cpu-high.json", "delivery-1");
    assert_eq!(results[0].0.tier, Tier::Escalate);
    assert!(results[0].0.cites(&Code::BlastRadius));
    assert_eq!(world.health(), "HEALTHY");
}

#[test]
fn cooldown_holds_a_second_action_on_the_same_instance() {
    let world = World::new(Mode::Enforce, 3);
    check(&world, "alarm-cpu-high.json", "delivery-1");
    // A different event about the same instance, inside the cooldown.
    let mut event: serde_json::Value =
        serde_json::from_slice(&common::fixture_bytes("alarm-cpu-high.json")).unwrap();
    event["id"] = serde_json::json!("another-event-id");
    let second = check_bytes(&world, event.to_string().as_bytes(), "delivery-2", 5);
    let (d, o) = &second[0];
    assert_eq!(d.tier, Tier::Escalate);
    assert!(d.cites(&Code::Cooldown));
    assert_eq!(o.status, OutcomeStatus::NotActed);
}

#[test]
fn malformed_and_unknown_events_take_no_action() {
    let world = World::new(Mode::Enforce, 3);
    assert!(
        world
            .ingest(&common::fixture("alarm-malformed-no-state.json"))
            .is_err()
    );
    assert!(
        world
            .ingest(&common::fixture("alarm-hostile-instance-id.json"))
            .is_err()
    );
    let out = world
        .ingest(&common::fixture("unknown-detail-type.json"))
        .unwrap();
    assert!(out.observations.is_empty());
    assert!(out.ignored.is_some());
    assert_eq!(world.health(), "HEALTHY");
    assert!(world.outbox.sent().is_empty());
}

/// Six hours of one-minute datapoints (the pull's window) ending at `end`: `level` with a
/// little wobble, then `last`.
fn flat_then(end: chrono::DateTime<Utc>, level: f64, last: f64) -> vigil_core::metrics::Series {
    (1..=360)
        .map(|m| {
            let v = if m == 1 { last } else { level + (m % 3) as f64 };
            (end - chrono::Duration::minutes(m), v)
        })
        .collect()
}

/// The schedule fixture and the end of its metric window (its minute).
fn tick() -> (vigil_core::events::Envelope, chrono::DateTime<Utc>) {
    let event = common::fixture("sources/aws_lambda_events/example-eventbridge-schedule.json");
    let end = event.time.unwrap();
    let end = end - chrono::Duration::seconds(end.timestamp() % 60);
    (event, end)
}

#[test]
fn the_scheduled_tick_pulls_the_watched_metrics_into_window_features() {
    let world = World::new(Mode::Enforce, 2);
    let instance = InstanceId::parse(CPU_INSTANCE).unwrap();
    let (event, end) = tick();
    // A flat CPU at ~30% that jumps to 97% in the last minute.
    world.metrics.put(
        &instance,
        "AWS/EC2/CPUUtilization",
        flat_then(end, 30.0, 97.0),
    );
    let observed = world.ingest(&event).unwrap();
    assert_eq!(
        observed.observations.len(),
        2,
        "only the metric with data, and its instance read as a whole"
    );
    let o = &observed.observations[0];
    assert_eq!(o.signal.resource.id, CPU_INSTANCE);
    assert_eq!(
        o.signal.resource.group.as_ref().unwrap().as_str(),
        "web-prod"
    );
    assert_eq!(o.features.schema, "window.v3");
    assert_eq!(o.features.get("level"), Some(97.0));
    assert!(o.features.get("robust_z").unwrap() > 10.0);
    assert_eq!(o.features.get("missing_ratio"), Some(0.0));
    // The streaming detector saw a flat series jump: its score is the window's last feature.
    assert!(o.features.get("stream_anomaly").unwrap() > 0.5);
    // Only the last few points travel on; the features already summarise the window.
    assert!(matches!(&o.signal.kind, SignalKind::MetricWindow { points, .. } if points.len() == 5));
    let whole = &observed.observations[1];
    assert_eq!(whole.features.schema, "instance.v1");
    assert_eq!(whole.signal.resource.id, CPU_INSTANCE);
    assert!(whole.features.get("cpu_shift_z").unwrap() > 0.0);
    assert!(
        matches!(&whole.signal.kind, SignalKind::InstanceMetrics { metrics, .. } if metrics.len() == 1)
    );
}

#[test]
fn cpu_rising_without_traffic_is_related_across_metrics() {
    let world = World::new(Mode::Enforce, 2);
    let instance = InstanceId::parse(CPU_INSTANCE).unwrap();
    let (event, end) = tick();
    world.metrics.put(
        &instance,
        "AWS/EC2/CPUUtilization",
        flat_then(end, 30.0, 97.0),
    );
    world
        .metrics
        .put(&instance, "AWS/EC2/NetworkIn", flat_then(end, 5e6, 5e6));
    let observed = world.ingest(&event).unwrap();
    let cpu = observed
        .observations
        .iter()
        .find(|o| matches!(&o.signal.kind, SignalKind::MetricWindow { metric, .. } if metric.ends_with("CPUUtilization")))
        .unwrap();
    assert!(cpu.features.get("cpu_minus_load_z").unwrap() > 10.0);
}

/// The bundled models, as the score function loads them.
fn models() -> Models {
    Models::bundled().expect("the bundled models decode")
}

/// Six hours of one-minute datapoints ending at `end`, from `f(minutes before end)`.
fn series_of(end: chrono::DateTime<Utc>, f: impl Fn(i64) -> f64) -> vigil_core::metrics::Series {
    (1..=360)
        .map(|m| (end - chrono::Duration::minutes(m), f(m)))
        .collect()
}

#[test]
fn the_pull_names_a_cpu_runaway_and_the_instance_is_replaced() {
    let world = World::new(Mode::Enforce, 3);
    let instance = InstanceId::parse(CPU_INSTANCE).unwrap();
    let (_, end) = tick();
    let wobble = |m: i64| ((m * 7) % 5) as f64 / 5.0;
    // CPU pinned for the last half hour while traffic stays as it was.
    world.metrics.put(
        &instance,
        "AWS/EC2/CPUUtilization",
        series_of(end, |m| {
            if m <= 30 {
                96.0 + wobble(m)
            } else {
                25.0 + wobble(m)
            }
        }),
    );
    for metric in ["AWS/EC2/NetworkIn", "AWS/EC2/NetworkOut"] {
        world.metrics.put(
            &instance,
            metric,
            series_of(end, |m| 4e6 * (1.0 + 0.02 * wobble(m))),
        );
    }
    world.metrics.put(
        &instance,
        "AWS/EC2/StatusCheckFailed",
        series_of(end, |_| 0.0),
    );
    let schedule = "sources/aws_lambda_events/example-eventbridge-schedule.json";
    // The first pull to find it records it and waits for the next pull to confirm.
    let first = check(&world, schedule, "delivery-1");
    let (d, _) = first
        .iter()
        .find(|(d, _)| d.incident.resource.id == CPU_INSTANCE)
        .expect("a decision on the instance");
    assert_eq!(d.tier, Tier::Observe, "{:?}", d.reasons);
    assert!(
        d.cites(&Code::Opinion(OpinionCode::Confirmation)),
        "{:?}",
        d.reasons
    );
    assert_eq!(world.health(), "HEALTHY");
    // The next pull (another event, five minutes on) finds it again: confirmed.
    let text = String::from_utf8(common::fixture_bytes(schedule)).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = text.replace(&id, "next-pull");
    let results = check_bytes(&world, next.as_bytes(), "delivery-2", 5);
    let (d, o) = results
        .iter()
        .find(|(d, _)| d.incident.resource.id == CPU_INSTANCE)
        .expect("a decision on the instance");
    assert_eq!(d.incident.failure_mode, FailureMode::CpuRunaway, "{d:?}");
    assert!(
        d.cites(&Code::Opinion(OpinionCode::Confirmation)),
        "{:?}",
        d.reasons
    );
    // The instance classifier named it, with its drivers.
    let lead = &d.incident.evidence[0];
    assert_eq!(lead.observation.features.schema, "instance.v1");
    assert!(!lead.score.drivers.is_empty());
    assert!(
        d.cites(&Code::rule("replace-on-cpu-runaway")),
        "{:?}",
        d.reasons
    );
    if d.tier == Tier::AutoHeal {
        assert_eq!(o.status, OutcomeStatus::Verified);
        assert_eq!(world.health(), "UNHEALTHY");
    } else {
        // Below the auto-heal confidence a person approves: nothing changes yet.
        assert_eq!(d.tier, Tier::Approval);
        assert_eq!(world.health(), "HEALTHY");
    }
}

#[test]
fn guardduty_findings_below_the_stacks_threshold_are_ignored() {
    let world = World::new(Mode::Enforce, 3);
    // Severity 2 (low) under the default threshold of 4: ignored, with the reason.
    let low = world
        .ingest(&common::fixture("sources/guardduty-s3-public-access.json"))
        .unwrap();
    assert!(low.observations.is_empty());
    assert!(low.ignored.unwrap().contains("severity threshold"));
    // Severity 8: kept.
    let high = world
        .ingest(&common::fixture("sources/guardduty-crypto-instance.json"))
        .unwrap();
    assert_eq!(high.observations.len(), 1);
    // A stack that only wants the highest band ignores it too.
    let strict = ingest::IngestConfig {
        guardduty_min_severity: 9.0,
        ..ingest::IngestConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt
        .block_on(ingest::handle(
            &common::fixture("sources/guardduty-crypto-instance.json"),
            &strict,
            &world.ingest_ports(),
        ))
        .unwrap();
    assert!(out.observations.is_empty());
}

/// The decision engine and the gate meet in the state table: a threat blocked on a tagged
/// target freezes its deployments, and its incident is on the target's posture.
#[test]
fn a_threat_on_a_tagged_target_holds_its_deployments_at_the_gate() {
    use vigil_handlers::gate;
    let world = World::new(Mode::Enforce, 3);
    let crypto = InstanceId::parse("i-99999999").unwrap();
    // Three instances: taking one out for quarantine is within the blast radius.
    let members = [
        crypto.clone(),
        InstanceId::parse("i-99999998").unwrap(),
        InstanceId::parse("i-99999997").unwrap(),
    ];
    world
        .fleet
        .add_group(&GroupName::parse("shop-prod").unwrap(), 1, 6, &members);
    world.fleet.tag(&crypto, "application", "shop");
    world.fleet.tag(&crypto, "environment", "prod");
    let results = check(
        &world,
        "sources/guardduty-crypto-instance.json",
        "delivery-1",
    );
    let (d, _) = &results[0];
    assert!(d.incident.threat.is_some(), "{d:?}");

    let findings = vigil_lab::memory::MemoryFindings::default();
    let artifacts = vigil_lab::memory::MemoryArtifacts::default();
    let ports = gate::GatePorts {
        freeze: &world.state,
        posture: &world.state,
        findings: &findings,
        artifacts: &artifacts,
        deploys: &world.state,
        jobs: &world.state,
        approvals: &world.state,
        alerts: &world.outbox,
    };
    let job = |target: &str| {
        gate::GateEvent::parse(serde_json::json!({"CodePipeline.job": {
            "id": "33333333-abcd-1111-abcd-111111abcdef",
            "data": {
                "actionConfiguration": {"configuration": {
                    "UserParameters": format!(r#"{{"target":"{target}"}}"#)
                }},
                "inputArtifacts": [], "outputArtifacts": [], "artifactCredentials": {}
            }
        }}))
        .unwrap()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // Five minutes after the finding: its incident is still open.
    let now = d.incident.opened_at + chrono::Duration::minutes(5);
    let run = |target: &str| {
        rt.block_on(gate::handle(
            job(target),
            &Policy::bundled().unwrap().gate,
            &gate::GateConfig::default(),
            &ports,
            now,
            std::time::Instant::now() + std::time::Duration::from_secs(60),
        ))
        .unwrap()
    };
    let out = run("shop/prod");
    assert_eq!(out["job"], "failed", "{out}");
    let message = out["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "- [incidents] open incident on i-99999999: {} ({}, tier block",
            d.incident.what(),
            d.incident.severity
        )),
        "{message}"
    );
    assert_eq!(d.tier, Tier::Block);
    assert!(d.cites(&Code::GateFreeze), "{:?}", d.reasons);
    assert!(
        message.contains("- [freeze] deployment freeze: "),
        "{message}"
    );
    // Another target is not held.
    assert_eq!(run("web/prod")["job"], "succeeded");
}

/// The CPU alarm fixture with its breaching datapoint set to `value` (the threshold is 50), and
/// the minute its state changed.
fn cpu_alarm_at(value: f64) -> (Vec<u8>, chrono::DateTime<Utc>) {
    let text = String::from_utf8(common::fixture_bytes("alarm-cpu-high.json")).unwrap();
    let text = text.replace("99.50160229693434", &value.to_string());
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(
        &v["detail"]["state"]["timestamp"]
            .as_str()
            .unwrap()
            .replace("+0000", "+00:00"),
    )
    .unwrap()
    .with_timezone(&Utc);
    (
        text.into_bytes(),
        at - chrono::Duration::seconds(at.timestamp() % 60),
    )
}

/// Six hours of an instance that is busy but well: CPU around `cpu` that follows its traffic.
fn busy_but_well(world: &World, end: chrono::DateTime<Utc>, cpu: f64) {
    let instance = InstanceId::parse(CPU_INSTANCE).unwrap();
    let wobble = |m: i64| ((m * 7) % 5) as f64 / 5.0 - 0.4;
    world.metrics.put(
        &instance,
        "AWS/EC2/CPUUtilization",
        series_of(end, |m| cpu * (1.0 + 0.03 * wobble(m))),
    );
    for metric in ["AWS/EC2/NetworkIn", "AWS/EC2/NetworkOut"] {
        world.metrics.put(
            &instance,
            metric,
            series_of(end, |m| 4e6 * (1.0 + 0.03 * wobble(m))),
        );
    }
    world.metrics.put(
        &instance,
        "AWS/EC2/StatusCheckFailed",
        series_of(end, |_| 0.0),
    );
}

#[test]
fn an_alarm_gets_a_second_look_and_a_marginal_one_on_a_well_instance_is_recorded() {
    // Barely past the threshold (52 against 50) on an instance whose metrics read as normal.
    let world = World::new(Mode::Enforce, 3);
    let (bytes, at) = cpu_alarm_at(52.0);
    busy_but_well(&world, at, 50.0);
    let results = check_bytes(&world, &bytes, "delivery-1", 0);
    let (d, _) = &results[0];
    let schemas: Vec<&str> = d
        .incident
        .evidence
        .iter()
        .map(|e| e.observation.features.schema.as_str())
        .collect();
    assert_eq!(
        schemas,
        ["alarm.v1", "instance.v1"],
        "the alarm and the second look"
    );
    assert_eq!(d.tier, Tier::Observe, "{:#?}", d.reasons);
    assert!(
        d.cites(&Code::Opinion(OpinionCode::SecondLook)),
        "{:#?}",
        d.reasons
    );
    assert_eq!(world.health(), "HEALTHY");
    assert!(world.outbox.sent().is_empty(), "nobody is paged");

    // Far past it (99.5) on an instance whose own reading is under the threshold (the two
    // disagree, as when the pull has not yet read the alarm's minutes): not overruled, but
    // not corroborated either. It waits for the next reading, and nobody is paged yet.
    let world = World::new(Mode::Enforce, 3);
    let (bytes, at) = cpu_alarm_at(99.5);
    busy_but_well(&world, at, 40.0);
    let results = check_bytes(&world, &bytes, "delivery-1", 0);
    let (d, _) = &results[0];
    assert_eq!(d.tier, Tier::Observe, "{:#?}", d.reasons);
    assert!(!d.cites(&Code::Opinion(OpinionCode::SecondLook)));
    assert!(
        d.cites(&Code::Opinion(OpinionCode::Corroboration))
            && d.cites(&Code::Opinion(OpinionCode::Confirmation)),
        "{:#?}",
        d.reasons
    );
    assert!(world.outbox.sent().is_empty());
    // Found again within the window (the alarm fires again five minutes later): it stands.
    let again = String::from_utf8(bytes)
        .unwrap()
        .replace(r#""id": ""#, r#""id": "again-"#);
    let results = check_bytes(&world, again.as_bytes(), "delivery-2", 5);
    let (d, _) = &results[0];
    assert_ne!(d.tier, Tier::Observe, "{:#?}", d.reasons);
    assert!(
        d.cites(&Code::Opinion(OpinionCode::Corroboration))
            && d.cites(&Code::Opinion(OpinionCode::Confirmation)),
        "{:#?}",
        d.reasons
    );
    assert!(!world.outbox.sent().is_empty(), "people are told");

    // The same marginal alarm with no metrics to look at goes on alone, as before.
    let world = World::new(Mode::Enforce, 3);
    let (bytes, _) = cpu_alarm_at(52.0);
    let results = check_bytes(&world, &bytes, "delivery-1", 0);
    let (d, _) = &results[0];
    assert_eq!(d.incident.evidence.len(), 1);
    assert_eq!(d.tier, Tier::Escalate, "{:#?}", d.reasons);
    assert_eq!(world.outbox.sent().len(), 1, "people are told");
}

/// Runs two pulls five minutes apart (the second confirms the first) and returns the
/// second's decision on the instance.
fn two_pulls(world: &World) -> Decision {
    let schedule = "sources/aws_lambda_events/example-eventbridge-schedule.json";
    check(world, schedule, "delivery-1");
    let text = String::from_utf8(common::fixture_bytes(schedule)).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = text.replace(&id, "next-pull");
    check_bytes(world, next.as_bytes(), "delivery-2", 5)
        .into_iter()
        .map(|(d, _)| d)
        .find(|d| d.incident.resource.id == CPU_INSTANCE)
        .expect("a decision on the instance")
}

#[test]
fn a_disk_projected_full_within_the_horizon_is_told_and_a_slow_one_is_watched() {
    let (_, end) = tick();
    let instance = InstanceId::parse(CPU_INSTANCE).unwrap();
    let disk = |per_hour: f64| {
        let world = World::new(Mode::Enforce, 3);
        busy_but_well(&world, end, 30.0);
        // The agent's root volume (its label carries the path): 40% six hours ago, rising.
        world.metrics.put(
            &instance,
            "CWAgent/disk_used_percent",
            series_of(end, |m| {
                40.0 + per_hour * (360 - m) as f64 / 60.0 + ((m * 3) % 4) as f64 * 0.05
            }),
        );
        world
    };
    // 4% an hour: full in about 14 hours.
    let world = disk(4.0);
    let d = two_pulls(&world);
    assert_eq!(d.incident.failure_mode, FailureMode::DiskFilling, "{d:#?}");
    assert_eq!(d.tier, Tier::Escalate, "{:#?}", d.reasons);
    assert!(
        d.cites(&Code::rule("escalate-resource-exhaustion")),
        "{:#?}",
        d.reasons
    );
    let hours = d.incident.hours_to_exhaustion().unwrap();
    assert!((8.0..20.0).contains(&hours), "{hours}");
    // The instance's own reading saw the disk too (its label has a path).
    let whole = d
        .incident
        .evidence
        .iter()
        .find(|e| e.observation.features.schema == "instance.v1")
        .unwrap();
    assert!(whole.observation.features.get("disk_level").unwrap() > 60.0);

    // 0.5% an hour: full in about five days, beyond the three-day horizon: recorded only.
    let world = disk(0.5);
    let d = two_pulls(&world);
    assert_eq!(d.tier, Tier::Observe, "{:#?}", d.reasons);
    if d.incident.failure_mode == FailureMode::DiskFilling {
        assert!(
            d.cites(&Code::Opinion(OpinionCode::Horizon)),
            "{:#?}",
            d.reasons
        );
    }
    assert!(world.outbox.sent().is_empty());
}

#[test]
fn a_persisting_failure_is_told_once_per_repeat_period() {
    let (_, end) = tick();
    let world = World::new(Mode::Enforce, 3);
    busy_but_well(&world, end, 30.0);
    // A disk full in about 14 hours: told, nothing to change.
    world.metrics.put(
        &InstanceId::parse(CPU_INSTANCE).unwrap(),
        "CWAgent/disk_used_percent",
        series_of(end, |m| 40.0 + 4.0 * (360 - m) as f64 / 60.0),
    );
    let schedule = String::from_utf8(common::fixture_bytes(
        "sources/aws_lambda_events/example-eventbridge-schedule.json",
    ))
    .unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&schedule).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pull = |minute: u32| {
        let event = schedule.replace(&id, &format!("pull-{minute}"));
        check_bytes(
            &world,
            event.as_bytes(),
            &format!("delivery-{minute}"),
            minute,
        )
        .into_iter()
        .map(|(d, _)| d)
        .find(|d| d.incident.resource.id == CPU_INSTANCE)
        .expect("a decision on the instance")
    };
    let repeat = Policy::bundled().unwrap().opinions.repeat.minutes;
    assert_eq!(repeat, 240);

    pull(0);
    let told = pull(5);
    assert_eq!(told.tier, Tier::Escalate, "{:#?}", told.reasons);
    assert_eq!(world.outbox.sent().len(), 1);
    // Still there five minutes later: recorded, not told again.
    let again = pull(10);
    assert_eq!(again.incident.failure_mode, FailureMode::DiskFilling);
    assert_eq!(again.tier, Tier::Observe, "{:#?}", again.reasons);
    assert!(
        again.cites(&Code::Opinion(OpinionCode::Repeat)),
        "{:#?}",
        again.reasons
    );
    assert_eq!(world.outbox.sent().len(), 1, "people were told once");
    // The period over (counted from the first telling), the next confirmed reading is told.
    pull(repeat + 10);
    let later = pull(repeat + 15);
    assert_eq!(later.tier, Tier::Escalate, "{:#?}", later.reasons);
    assert!(!later.cites(&Code::Opinion(OpinionCode::Repeat)));
    assert_eq!(
        world.outbox.sent().len(),
        2,
        "told again once the period is over"
    );
}

/// Traffic on `instance` three times what it was for the last half hour, its CPU following.
fn surging(world: &World, instance: &str, end: chrono::DateTime<Utc>, surge: bool) {
    let instance = InstanceId::parse(instance).unwrap();
    let wobble = |m: i64| ((m * 7) % 5) as f64 / 5.0 - 0.4;
    let load = |m: i64| {
        let base = 1.0 + 0.03 * wobble(m);
        if surge && m <= 30 { 3.0 * base } else { base }
    };
    world.metrics.put(
        &instance,
        "AWS/EC2/CPUUtilization",
        series_of(end, |m| 25.0 * load(m)),
    );
    for metric in ["AWS/EC2/NetworkIn", "AWS/EC2/NetworkOut"] {
        world
            .metrics
            .put(&instance, metric, series_of(end, |m| 4e6 * load(m)));
    }
    world.metrics.put(
        &instance,
        "AWS/EC2/StatusCheckFailed",
        series_of(end, |_| 0.0),
    );
}

#[test]
fn a_surge_on_one_instance_of_a_group_is_recorded_and_one_on_the_group_scales_it_out() {
    let (_, end) = tick();
    let world = |surging_instances: usize| {
        let world = World::new(Mode::Enforce, 3);
        let ids = [CPU_INSTANCE, "i-b0000001", "i-b0000002"];
        for (n, id) in ids.iter().enumerate() {
            surging(&world, id, end, n < surging_instances);
        }
        world
    };
    // One instance of three: a burst on it, not the service's surge.
    let lone = world(1);
    let d = two_pulls(&lone);
    assert_eq!(d.incident.failure_mode, FailureMode::TrafficSurge, "{d:#?}");
    assert_eq!(d.tier, Tier::Observe, "{:#?}", d.reasons);
    assert!(
        d.cites(&Code::Opinion(OpinionCode::LoneSurge)),
        "{:#?}",
        d.reasons
    );
    let group = GroupName::parse("web-prod").unwrap();
    assert_eq!(lone.fleet.desired(&group), Some(3));
    assert!(lone.outbox.sent().is_empty());

    // All three: the group is scaled out, once.
    let all = world(3);
    let d = two_pulls(&all);
    assert_eq!(d.incident.failure_mode, FailureMode::TrafficSurge, "{d:#?}");
    assert!(
        !d.cites(&Code::Opinion(OpinionCode::LoneSurge)),
        "{:#?}",
        d.reasons
    );
    assert!(matches!(d.action, Some(Action::ScaleOut { .. })), "{d:#?}");
    assert_eq!(all.fleet.desired(&group), Some(4));
    // Remembered under the group: its instances' metrics settle after it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let changed = rt
        .block_on(vigil_handlers::ports::ActionHistory::recent(
            &all.state,
            &vigil_core::keys::group(&group),
            end - chrono::Duration::days(1),
        ))
        .unwrap();
    assert_eq!(
        changed
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["scale_out"]
    );
}

/// One entry of the hostile-input catalogue: a real event made hostile, and what must happen.
struct Hostile {
    name: &'static str,
    fixture: &'static str,
    /// Edits the event's JSON.
    edit: fn(&mut serde_json::Value),
    /// The stack's account, when the entry needs one.
    account: Option<&'static str>,
    expect: Expect,
}

enum Expect {
    /// Refused with this error, and nothing done.
    Refused(fn(&vigil_core::events::EventError) -> bool),
    /// Taken in, but nothing hostile reaches an action or a message.
    Neutralised,
}

/// Sets the alarm fixture's InstanceId dimension.
fn instance(v: &mut serde_json::Value, id: &str) {
    v["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        serde_json::json!(id);
}

#[test]
fn the_hostile_input_catalogue_is_refused_or_neutralised() {
    use vigil_core::events::EventError;
    let catalogue = [
        Hostile {
            name: "shell metacharacters in an instance id",
            fixture: "alarm-cpu-high.json",
            edit: |v| instance(v, "i-12345678$(reboot)"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::Invalid { .. })),
        },
        Hostile {
            name: "path traversal in an instance id",
            fixture: "alarm-cpu-high.json",
            edit: |v| instance(v, "../../i-12345678901234567"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::Invalid { .. })),
        },
        Hostile {
            name: "a look-alike digit (fullwidth) in an instance id",
            fixture: "alarm-cpu-high.json",
            edit: |v| instance(v, "i-1234567890123456\u{ff17}"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::Invalid { .. })),
        },
        Hostile {
            name: "a zero-width space in an instance id",
            fixture: "alarm-cpu-high.json",
            edit: |v| instance(v, "i-12345678901234567\u{200b}"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::Invalid { .. })),
        },
        Hostile {
            name: "an oversized field (300 KB reason)",
            fixture: "alarm-cpu-high.json",
            edit: |v| v["detail"]["state"]["reason"] = serde_json::json!("x".repeat(300_000)),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::TooLarge { .. })),
        },
        Hostile {
            name: "JSON nested past any real event",
            fixture: "alarm-cpu-high.json",
            edit: |v| {
                let mut deep = serde_json::json!(1);
                for _ in 0..200 {
                    deep = serde_json::json!([deep]);
                }
                v["detail"]["x"] = deep;
            },
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::Envelope(_))),
        },
        Hostile {
            name: "a trail record about another account than the event's",
            fixture: "sources/cloudtrail-stop-logging.json",
            edit: |v| v["detail"]["recipientAccountId"] = serde_json::json!("999999999999"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::WrongAccount { .. })),
        },
        Hostile {
            name: "an alarm ARN in another account",
            fixture: "alarm-cpu-high.json",
            edit: |v| {
                v["resources"] = serde_json::json!([
                    "arn:aws:cloudwatch:us-east-1:999999999999:alarm:ServerCpuTooHigh"
                ])
            },
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::WrongAccount { .. })),
        },
        Hostile {
            name: "an event from another account than the stack's",
            fixture: "alarm-cpu-high.json",
            edit: |_| {},
            account: Some("111122223333"),
            expect: Expect::Refused(|e| matches!(e, EventError::WrongAccount { .. })),
        },
        Hostile {
            name: "an event from another Region than the stack's",
            fixture: "alarm-cpu-high.json",
            edit: |v| v["region"] = serde_json::json!("eu-west-1"),
            account: None,
            expect: Expect::Refused(|e| matches!(e, EventError::WrongRegion { .. })),
        },
        Hostile {
            name: "control and bidirectional characters in an alarm name",
            fixture: "alarm-cpu-high.json",
            edit: |v| {
                v["detail"]["alarmName"] =
                    serde_json::json!("cpu\u{202e}lmth.exe\u{0}\r\nBcc: x@example.com")
            },
            account: None,
            expect: Expect::Neutralised,
        },
    ];
    for h in catalogue {
        let mut world = World::new(Mode::Enforce, 3);
        world.account = h.account.map(str::to_owned);
        // Every entry's fixture is of the stack's Region unless it says otherwise.
        world.region = Some("us-east-1".to_owned());
        let mut v: serde_json::Value =
            serde_json::from_slice(&common::fixture_bytes(h.fixture)).unwrap();
        (h.edit)(&mut v);
        let result = run_bytes(&world, v.to_string().as_bytes(), "delivery-1", 0);
        match h.expect {
            Expect::Refused(is) => {
                let e = result.as_ref().err().and_then(Refused::event_error);
                assert!(e.is_some_and(is), "{}: {result:?}", h.name);
                assert_eq!(world.health(), "HEALTHY", "{}", h.name);
                assert!(world.outbox.sent().is_empty(), "{}", h.name);
            }
            Expect::Neutralised => {
                result.unwrap_or_else(|e| panic!("{}: {e:?}", h.name));
                assert!(
                    !world.outbox.sent().is_empty(),
                    "{}: people are told",
                    h.name
                );
                for m in world.outbox.sent() {
                    for text in [&m.subject, &m.body] {
                        assert!(
                            !text.chars().any(|c| c == '\u{202e}' || c == '\u{0}'),
                            "{}: {text:?}",
                            h.name
                        );
                    }
                    assert!(
                        !m.subject.contains('\n') && !m.subject.contains('\r'),
                        "{}",
                        h.name
                    );
                }
            }
        }
    }
}

/// Actions carried out (verified or not) in a run's results.
fn actions(results: &[(Decision, Outcome)]) -> usize {
    results
        .iter()
        .filter(|(d, o)| {
            d.acts()
                && matches!(
                    o.status,
                    OutcomeStatus::Verified | OutcomeStatus::Unverified
                )
        })
        .count()
}

#[test]
fn three_deliveries_of_an_event_at_once_act_once() {
    for fixture in [
        "alarm-cpu-high.json",
        "alarm-status-check-failed.json",
        "sources/guardduty-credential-exfiltration.json",
    ] {
        let world = World::new(Mode::Enforce, 3);
        // Every alarm on the world's instance.
        let mut v: serde_json::Value =
            serde_json::from_slice(&common::fixture_bytes(fixture)).unwrap();
        if fixture.starts_with("alarm") {
            instance(&mut v, CPU_INSTANCE);
        }
        let bytes = v.to_string().into_bytes();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Three deliveries of one event (three executions), interleaved at every await.
        let (a, b, c) = rt.block_on(async {
            tokio::join!(
                stages(&world, &bytes, "delivery-1", 0),
                stages(&world, &bytes, "delivery-2", 0),
                stages(&world, &bytes, "delivery-3", 0),
            )
        });
        let all: Vec<(Decision, Outcome)> = [a, b, c]
            .into_iter()
            .flat_map(|r| r.unwrap_or_else(|e| panic!("{fixture}: {e:?}")))
            .collect();
        assert_eq!(actions(&all), 1, "{fixture}: exactly one action");
        let deduplicated = all.iter().filter(|(d, _)| d.cites(&Code::Dedup)).count();
        assert!(
            deduplicated >= 2,
            "{fixture}: the other deliveries are recorded as duplicates"
        );
    }
}

#[test]
fn an_alarm_storm_on_one_group_stays_within_the_limits_and_is_told_once() {
    // A thousand CPU alarms in one minute on a group of six.
    let world = World::new(Mode::Enforce, 6);
    let ids: Vec<String> = std::iter::once(CPU_INSTANCE.to_owned())
        .chain((1..6).map(|i| format!("i-{:08x}", 0xb000_0000_u32 + i as u32)))
        .collect();
    let base: serde_json::Value =
        serde_json::from_slice(&common::fixture_bytes("alarm-cpu-high.json")).unwrap();
    let mut results = Vec::new();
    for n in 0..1_000 {
        let mut v = base.clone();
        v["id"] = serde_json::json!(format!("storm-{n}"));
        instance(&mut v, &ids[n % ids.len()]);
        results.extend(
            run_bytes(
                &world,
                v.to_string().as_bytes(),
                &format!("delivery-{n}"),
                0,
            )
            .unwrap(),
        );
    }
    let policy = Policy::bundled().unwrap();
    let acted = actions(&results);
    // At most once per instance (the cooldown), never past the hourly quota; the blast radius
    // is checked at every action by `limits.rs`.
    assert!(acted >= 1, "the storm is acted on");
    assert!(
        acted <= ids.len().min(policy.limits.max_actions_per_hour as usize),
        "{acted} actions"
    );
    let unhealthy = ids
        .iter()
        .filter(|i| {
            world
                .fleet
                .health(&InstanceId::parse(i).unwrap())
                .as_deref()
                == Some("UNHEALTHY")
        })
        .count();
    assert_eq!(unhealthy, acted);
    // People hear of each action, and of everything held, once.
    let sent = world.outbox.sent();
    let held = results
        .iter()
        .filter(|(d, o)| !d.acts() || o.status == OutcomeStatus::NotActed)
        .count();
    assert!(held >= 990, "{held}");
    assert!(
        sent.len() <= acted + 2,
        "{} emails for {acted} actions and {held} held",
        sent.len()
    );
}

#[test]
fn the_state_machine_retries_failed_aws_calls_and_not_refused_events() {
    let asl: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/statemachine.asl.json")).unwrap();
    let retried = |state: &serde_json::Value| -> Vec<String> {
        state["Retry"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ErrorEquals"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_owned))
            .collect()
    };
    let states = &asl["States"];
    let ingest = retried(&states["Ingest"]);
    assert!(
        ingest.contains(&ingest::PORT_FAILED.to_owned()),
        "{ingest:?}"
    );
    for never in [ingest::EVENT_REFUSED, "States.TaskFailed", "States.ALL"] {
        assert!(!ingest.iter().any(|e| e == never), "{never} in {ingest:?}");
    }
    // Remediation runs in its own (Standard) workflow.
    let remediation: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/remediation.asl.json")).unwrap();
    // The functions' own failures are retried where a retry can succeed.
    for (name, state) in [
        ("Decide", &states["Decide"]),
        ("Remediate", &remediation["States"]["Remediate"]),
    ] {
        assert!(
            retried(state).contains(&"States.TaskFailed".to_owned()),
            "{name}"
        );
    }
    // Whatever still fails is told to people, each time.
    let last_catch = |state: &serde_json::Value| {
        let catches = state["Catch"].as_array().unwrap().clone();
        catches.last().unwrap().clone()
    };
    for name in ["Ingest", "Score", "Decide", "Remediate"] {
        assert_eq!(last_catch(&states[name])["Next"], "ReportFailure", "{name}");
        assert_eq!(
            last_catch(&states[name])["ErrorEquals"][0],
            "States.ALL",
            "{name}"
        );
    }
    // A refused event is not a failure: it ends quietly (its burst is told once by an alarm),
    // so whoever can send malformed events cannot flood people's mail.
    let refused_catch = &states["Ingest"]["Catch"][0];
    assert_eq!(refused_catch["ErrorEquals"][0], ingest::EVENT_REFUSED);
    assert_eq!(refused_catch["Next"], "Refused");
    assert_eq!(states["Refused"]["Type"], "Succeed");
    assert_eq!(
        remediation["States"]["Remediate"]["Catch"][0]["Next"],
        "ReportFailure"
    );
    // And the function reports each kind as the state machine expects.
    let refused =
        ingest::IngestError::Event(vigil_core::events::EventError::TooLarge { size: 2, max: 1 });
    assert_eq!(refused.error_type(), ingest::EVENT_REFUSED);
}

#[test]
fn remediate_retried_after_its_answer_was_lost_tells_people_once() {
    let world = World::new(Mode::Enforce, 3);
    let results = check(&world, "alarm-cpu-high.json", "delivery-1");
    let (d, first) = &results[0];
    assert_eq!(world.outbox.sent().len(), 1);
    // The state machine retries the same decision (the first answer never reached it).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let again = rt.block_on(remediate_one(&world, &over_the_wire(d)));
    assert_eq!(world.outbox.sent().len(), 1, "one email, not two");
    assert_eq!(again.notification_id, first.notification_id);
    assert_eq!(world.health(), "UNHEALTHY");
}

#[test]
fn a_member_accounts_finding_seen_by_the_delegated_administrator_is_told_not_acted_on() {
    // GuardDuty's delegated administrator receives its members' findings in its own account:
    // the envelope is the stack's account, the finding is about another.
    let world = World::new(Mode::Enforce, 3);
    let mut v: serde_json::Value = serde_json::from_slice(&common::fixture_bytes(
        "sources/guardduty-credential-exfiltration.json",
    ))
    .unwrap();
    v["detail"]["accountId"] = serde_json::json!("999999999999");
    let results = check_bytes(&world, v.to_string().as_bytes(), "delivery-1", 0);
    assert_eq!(results.len(), 1);
    let (d, o) = &results[0];
    assert_eq!(d.incident.resource.account.as_deref(), Some("999999999999"));
    assert_eq!(d.tier, Tier::Escalate, "{:#?}", d.reasons);
    assert!(d.action.is_none(), "nothing is changed in another account");
    assert!(d.cites(&Code::MemberAccount), "{:#?}", d.reasons);
    assert_eq!(o.status, OutcomeStatus::NotActed);
    // People are told, and the email says whose resource it is.
    let sent = world.outbox.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].body.contains("999999999999"), "{}", sent[0].body);
    // A malformed member account id is refused.
    v["detail"]["accountId"] = serde_json::json!("99999999999$(x)");
    let world = World::new(Mode::Enforce, 3);
    let refused = run_bytes(&world, v.to_string().as_bytes(), "delivery-1", 0);
    assert!(matches!(
        refused,
        Err(Refused::Envelope(_)) | Err(Refused::Ingest(_))
    ));
    assert!(world.outbox.sent().is_empty());
}

#[test]
fn a_burst_of_guessed_passwords_is_one_alert_and_the_guess_that_works_another() {
    let world = World::new(Mode::Enforce, 3);
    let failure =
        String::from_utf8(common::fixture_bytes("sources/signin-console-failure.json")).unwrap();
    // Each sign-in is its own event, ten seconds apart, as EventBridge delivers them.
    let at = |k: u32| format!("2026-11-20T03:{:02}:{:02}Z", 12 + k / 6, (k % 6) * 10);
    let mut flagged = Vec::new();
    for k in 0..40 {
        let event = failure
            .replace(
                "6f87d04b-9f74-4f04-a780-7acf4b0a9b38",
                &format!("guess-{k}"),
            )
            .replace(
                "a1b2c3d4-1111-2222-3333-444455556666",
                &format!("trail-{k}"),
            )
            .replace("2026-11-20T03:12:09Z", &at(k));
        for (d, _) in check_bytes(&world, event.as_bytes(), &format!("delivery-{k}"), k / 6) {
            if d.tier != Tier::Observe {
                // The model names the guessing, or the brute-force rule counts it.
                let brute = d
                    .reasons
                    .iter()
                    .any(|r| r.message.starts_with("aws_console_brute_force matched"));
                assert!(
                    brute
                        || d.incident.threat
                            == Some(vigil_core::domain::ThreatClass::CredentialCompromise),
                    "{:#?}",
                    d.reasons
                );
                assert!(
                    d.action.is_none(),
                    "a console sign-in has no key to deactivate"
                );
                flagged.push(k);
            }
        }
    }
    // The failures pile up until the classifier names the guessing (and the brute-force rule
    // counts ten), and every guess after is named too; people get one alert for them, not one
    // per guess nor one per detector.
    assert!(flagged.len() > 5, "{flagged:?}");
    assert_eq!(world.outbox.sent().len(), 1);

    // The guess that works, from the same network: another act, told at once.
    let success = String::from_utf8(common::fixture_bytes(
        "sources/signin-console-success-without-mfa.json",
    ))
    .unwrap()
    .replace("2026-11-20T03:12:09Z", &at(41));
    let results = check_bytes(&world, success.as_bytes(), "delivery-in", 7);
    assert!(
        results.iter().any(|(d, _)| d.tier != Tier::Observe),
        "{:#?}",
        results.iter().map(|(d, _)| &d.reasons).collect::<Vec<_>>()
    );
    assert_eq!(world.outbox.sent().len(), 2);
}

#[test]
fn with_security_hub_and_opscenter_on_a_healed_incident_is_one_resolved_ops_item_and_one_archived_finding()
 {
    let mut world = World::new(Mode::Enforce, 3);
    let home = vigil_core::securityhub::Stack {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    world.pipeline.remediate.securityhub = Some(home.clone());
    world.pipeline.remediate.opscenter = Some(home);
    let acted = check(&world, "alarm-cpu-high.json", "delivery-1");
    let (decision, outcome) = &acted[0];
    assert_eq!(outcome.status, OutcomeStatus::Verified);
    let items = world.outbox.ops_items();
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[&decision.incident.id];
    assert_eq!(item.status, vigil_core::opscenter::Status::Resolved);
    assert_eq!(item.decision, decision.id);
    let findings = world.outbox.findings();
    assert_eq!(findings.len(), 1);
    assert_eq!(
        findings[&decision.incident.id].record_state,
        vigil_core::securityhub::RecordState::Archived
    );
    // A threat people are told of is a finding, never an OpsItem.
    let threat = check(
        &world,
        "sources/guardduty-crypto-instance.json",
        "delivery-2",
    );
    assert!(
        threat.iter().any(|(d, _)| d.incident.threat.is_some()),
        "{threat:?}"
    );
    assert_eq!(world.outbox.ops_items().len(), 1);
    assert_eq!(world.outbox.findings().len(), 2);
}
