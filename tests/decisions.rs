//! The decision engine's durable state against moto: concurrent deliveries, the policy
//! override in SSM, hourly quotas and the attempt history.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::{Duration, Utc};
use vigil_aws::dynamodb::StateTable;
use vigil_core::domain::{Attempt, Code, Decision, Mode, OutcomeStatus, Tier};
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_core::stages::Observed;
use vigil_handlers::ports::{ActionHistory, TakeQuota};
use vigil_handlers::{decide, remediate, score};
use vigil_tests as h;

type World = h::Stack;

/// The decide stage on the real adapters.
struct Decider<'a>(&'a World);

impl Decider<'_> {
    /// Ingests (in memory: the alarm names its group) and scores a CPU alarm on `instance`.
    fn scored(
        &self,
        instance: &str,
        group: &str,
        event_id: &str,
    ) -> vigil_core::stages::ScoredBatch {
        let mut e = h::fixture_json("alarm-cpu-high.json");
        e["id"] = serde_json::json!(event_id);
        e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
            serde_json::json!(instance);
        let env = vigil_core::events::parse_envelope(e.to_string().as_bytes()).unwrap();
        let vigil_core::events::Normalised::Signals(mut signals) =
            vigil_core::events::normalise(&env).unwrap()
        else {
            panic!()
        };
        signals[0].resource.group = Some(vigil_core::names::GroupName::parse(group).unwrap());
        let observations = signals
            .into_iter()
            .map(|signal| vigil_core::domain::Observation {
                features: vigil_core::features::extract(&signal, Default::default()),
                signal,
            })
            .collect();
        score::handle(
            Observed {
                event_id: Some(event_id.to_owned()),
                observations,
                ignored: None,
            },
            &models(),
        )
    }

    async fn decide(
        &self,
        store: &decide::PolicyStore,
        batch: vigil_core::stages::ScoredBatch,
        owner: &str,
    ) -> Vec<Decision> {
        let aws = h::Adapters::new(self.0);
        decide::handle(batch, owner, store, &aws.decide_ports(), Utc::now())
            .await
            .unwrap()
            .decisions
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_event_act_once() {
    let world = Arc::new(World::new().await);
    let (group, instances) = h::create_group(&world.config, 3).await;
    let event_id = h::unique("event");
    let store = Arc::new(decide::PolicyStore::new(
        Policy::bundled().unwrap(),
        Mode::Enforce,
        decide::POLICY_TTL,
    ));
    let mut tasks = Vec::new();
    for delivery in 0..12 {
        let (world, store, group, instance, event_id) = (
            world.clone(),
            store.clone(),
            group.clone(),
            instances[0].clone(),
            event_id.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let batch = Decider(&world).scored(&instance, &group, &event_id);
            Decider(&world)
                .decide(&store, batch, &format!("execution-{delivery}"))
                .await
        }));
    }
    let mut acting = Vec::new();
    let mut incidents = std::collections::BTreeSet::new();
    for t in tasks {
        for d in t.await.unwrap() {
            incidents.insert(d.incident.id.clone());
            if d.acts() {
                acting.push(d);
            }
        }
    }
    assert_eq!(acting.len(), 1, "exactly one delivery may act");
    assert_eq!(incidents.len(), 1, "one incident: {incidents:?}");
    // One incident recorded in the table, read back from the emulator.
    use aws_sdk_dynamodb::types::AttributeValue;
    let scan = aws_sdk_dynamodb::Client::new(&world.config)
        .scan()
        .table_name(&world.table)
        .filter_expression("begins_with(pk, :p)")
        .expression_attribute_values(":p", AttributeValue::S("incident#".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.items().len(), 1, "{:?}", scan.items());
    let summary: serde_json::Value =
        serde_dynamo::from_attribute_value(scan.items()[0]["incident"].clone()).unwrap();
    assert_eq!(summary["failure_mode"], "cpu_runaway");
    assert_eq!(summary["tier"], "auto-heal");

    // Carry the one decision out: one instance replaced, one message.
    let aws = h::Adapters::new(&world);
    let ports = aws.remediate_ports();

    let verify = remediate::RemediateConfig {
        verify_attempts: 2,
        verify_interval: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let outcome = remediate::handle(&acting[0], "attempt-1", &verify, ports, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Verified);
    assert_eq!(
        h::instance_health(&world.config, &instances[0]).await,
        "Unhealthy"
    );
    assert_eq!(h::sns_sent(&world.topic).len(), 1);
    // The attempt was recorded for the loop breaker.
    let recent = aws
        .state
        .recent(&instances[0], Utc::now() - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].status, OutcomeStatus::Verified);
}

#[tokio::test]
async fn a_policy_change_in_ssm_is_followed_and_an_invalid_one_is_refused() {
    let world = World::new().await;
    let (group, instances) = h::create_group(&world.config, 3).await;
    // No cache between reads, so each decision reads the parameter again.
    let store = decide::PolicyStore::new(
        Policy::bundled().unwrap(),
        Mode::Enforce,
        std::time::Duration::ZERO,
    );

    let first = Decider(&world)
        .decide(
            &store,
            Decider(&world).scored(&instances[0], &group, &h::unique("e")),
            "x1",
        )
        .await;
    assert_eq!(first[0].tier, Tier::AutoHeal);
    assert!(
        first[0]
            .reasons
            .iter()
            .any(|r| r.message.contains("bundled@"))
    );

    // An operator raises the bar for CPU runaway: the next decision follows.
    let stricter = vigil_core::policy::DEFAULT_POLICY_YAML
        .replace("min_confidence: 0.7", "min_confidence: 0.99");
    h::put_parameter(&world.config, &world.policy, &stricter).await;
    let second = Decider(&world)
        .decide(
            &store,
            Decider(&world).scored(&instances[1], &group, &h::unique("e")),
            "x2",
        )
        .await;
    assert_eq!(second[0].tier, Tier::Escalate, "{:#?}", second[0].reasons);
    assert!(second[0].cites(&Code::NoRule));
    assert!(
        second[0]
            .reasons
            .iter()
            .any(|r| r.message.contains("ssm:v1@"))
    );

    // An invalid policy: refused, reported once, and the last good one stays in force.
    h::put_parameter(
        &world.config,
        &world.policy,
        "version: 1\nlimits: {max_group_share: 7}\n",
    )
    .await;
    let third = Decider(&world)
        .decide(
            &store,
            Decider(&world).scored(&instances[2], &group, &h::unique("e")),
            "x3",
        )
        .await;
    assert!(third[0].cites(&Code::OverrideRefused));
    assert_eq!(third[0].tier, Tier::Escalate, "still the stricter policy");
    assert!(
        third[0]
            .reasons
            .iter()
            .any(|r| r.message.contains("ssm:v1@"))
    );
    let fourth = Decider(&world)
        .decide(
            &store,
            Decider(&world).scored(&instances[2], &group, &h::unique("e")),
            "x4",
        )
        .await;
    assert!(fourth[0].cites(&Code::OverrideRefused));
    let reports: Vec<_> = h::sns_sent(&world.topic)
        .into_iter()
        .filter(|m| m.subject.contains("policy override"))
        .collect();
    assert_eq!(reports.len(), 1, "reported once per refused version");
    assert!(reports[0].body.contains("ssm:v1@"), "{}", reports[0].body);
}

#[tokio::test]
async fn quotas_stop_at_their_limit() {
    let config = h::sdk_config();
    let table = StateTable::new(&config, h::create_table(&config).await);
    let until = Utc::now() + Duration::hours(2);
    for n in 1..=3 {
        assert_eq!(
            table
                .take("rate#replace_instance#1", 3, until)
                .await
                .unwrap(),
            Some(n)
        );
    }
    assert_eq!(
        table
            .take("rate#replace_instance#1", 3, until)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        table
            .take("rate#replace_instance#2", 3, until)
            .await
            .unwrap(),
        Some(1)
    );
}

#[tokio::test]
async fn attempt_history_appends_trims_and_filters_by_time() {
    let config = h::sdk_config();
    let table = StateTable::new(&config, h::create_table(&config).await);
    let now = Utc::now();
    for i in 0..40 {
        let a = Attempt {
            at: now - Duration::minutes(40 - i),
            action: "replace_instance".into(),
            status: OutcomeStatus::Failed,
            decision_id: format!("d{i}"),
        };
        table
            .record("i-0123456789abcdef0", &a, now + Duration::days(7))
            .await
            .unwrap();
    }
    let all = table
        .recent("i-0123456789abcdef0", now - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(all.len(), 32, "trimmed to the newest 32");
    assert_eq!(all.last().unwrap().decision_id, "d39");
    let last_ten_minutes = table
        .recent("i-0123456789abcdef0", now - Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(last_ten_minutes.len(), 10);
}

#[tokio::test]
async fn a_sent_alert_is_remembered_in_the_table_until_it_expires() {
    use vigil_handlers::ports::{FindAlertSent, MarkAlertSent};
    let config = h::sdk_config();
    let name = h::create_table(&config).await;
    let table = StateTable::new(&config, &name);
    let now = Utc::now();
    assert_eq!(table.find_sent("d-1#auto-heal", now).await.unwrap(), None);
    table
        .mark_sent("d-1#auto-heal", "msg-1", now + Duration::days(7))
        .await
        .unwrap();
    table
        .mark_sent("d-2#auto-heal", "msg-2", now - Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        table
            .find_sent("d-1#auto-heal", now)
            .await
            .unwrap()
            .as_deref(),
        Some("msg-1")
    );
    // Another tier of the same decision (approved after being asked) is another alert.
    assert_eq!(table.find_sent("d-1#approval", now).await.unwrap(), None);
    // Expired, though DynamoDB's TTL has not deleted it yet.
    assert_eq!(table.find_sent("d-2#auto-heal", now).await.unwrap(), None);
    // What the table holds, read with the SDK.
    let item = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("sent#d-1#auto-heal".into()),
        )
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(item["message_id"].as_s().unwrap(), "msg-1");
    assert!(item["expires_at"].as_n().is_ok(), "a TTL attribute");
}

#[tokio::test]
async fn a_conversation_and_an_undoable_decision_are_kept_in_the_table_until_they_expire() {
    use vigil_handlers::ports::{Conversations, KeepUndoable, LoadUndoable};
    let config = h::sdk_config();
    let name = h::create_table(&config).await;
    let table = StateTable::new(&config, &name);
    let now = Utc::now();
    let decision: Decision = serde_json::from_value(serde_json::json!({
        "id": "inc-1:scale_out",
        "incident": {
            "id": "inc-1",
            "resource": {"kind": "auto_scaling_group", "id": "web"},
            "failure_mode": "traffic_surge",
            "severity": "high",
            "confidence": 0.9,
            "opened_at": now,
        },
        "tier": "auto-heal",
        "action": {"type": "scale_out", "group": "web", "by": 1},
        "mode": "enforce",
        "decided_at": now,
    }))
    .unwrap();
    let about = vigil_core::conversation::about(&decision);
    assert_eq!(table.recall(&about, now).await.unwrap(), None);
    let mut c = vigil_core::conversation::Conversation::open(&decision, "[Vigil HIGH] x", now);
    c.fold(&decision);
    table
        .keep(&about, &c, now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(table.recall(&about, now).await.unwrap(), Some(c.clone()));
    // Over once its hour has passed, though DynamoDB's TTL has not deleted it yet.
    let later = now + Duration::hours(1) + Duration::seconds(1);
    assert_eq!(table.recall(&about, later).await.unwrap(), None);

    assert_eq!(table.load_undoable(&decision.id, now).await.unwrap(), None);
    table
        .keep_undoable(&decision, now + Duration::days(30))
        .await
        .unwrap();
    assert_eq!(
        table.load_undoable(&decision.id, now).await.unwrap(),
        Some(decision.clone())
    );
    // What the table holds, read with the SDK: one item each, under its key, with a TTL.
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    for key in [
        vigil_core::keys::conversation(&about),
        vigil_core::keys::undoable(&decision.id),
    ] {
        let item = dynamo
            .get_item()
            .table_name(&name)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S(key.clone()),
            )
            .send()
            .await
            .unwrap();
        let item = item.item().unwrap_or_else(|| panic!("no item {key}"));
        assert!(item["expires_at"].as_n().is_ok(), "{key}: a TTL attribute");
    }
}

/// The bundled models, as the score function loads them.
fn models() -> Models {
    Models::bundled().expect("the bundled models decode")
}
