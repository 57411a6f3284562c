//! A member account, against moto (which keeps each account's state apart and answers
//! AssumeRole with credentials that act in the role's account): an alarm forwarded from a
//! member account flows ingest -> score -> decide -> remediate through the real adapters; the
//! instance is found and marked Unhealthy in the member account through its member role, the
//! stack's own account is untouched, and the decision is in the stack's own audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use vigil_core::domain::{Code, Mode, OutcomeStatus, SignalKind, Tier};
use vigil_core::events;
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_handlers::{decide, ingest, remediate, score};
use vigil_tests as h;

/// The stack's own account (moto's default) and a member's.
const CENTRAL: &str = "123456789012";
const MEMBER: &str = "222222222222";
const ROLE: &str = "vigil-member-test";

fn members(config: &aws_config::SdkConfig, accounts: &str) -> vigil_aws::members::Members {
    let accounts = accounts.to_owned();
    vigil_aws::members::Members::from_env(config, &move |name: &str| match name {
        vigil_handlers::config::MEMBER_ACCOUNTS => Some(accounts.clone()),
        vigil_handlers::config::MEMBER_ROLE_NAME => Some(ROLE.to_owned()),
        _ => None,
    })
    .unwrap()
}

/// The CPU alarm fixture as the member stack forwards it: from the member account, about an
/// instance there.
/// Ingest as the central stack runs it, taking the member account's events.
fn central_ingest() -> ingest::IngestConfig {
    ingest::IngestConfig {
        account: Some(CENTRAL.to_owned()),
        member_accounts: vec![MEMBER.to_owned()],
        ..ingest::IngestConfig::default()
    }
}

fn member_alarm(account: &str, instance: &str) -> serde_json::Value {
    let text = h::fixture_json("alarm-cpu-high.json")
        .to_string()
        .replace(CENTRAL, account);
    let mut e: serde_json::Value = serde_json::from_str(&text).unwrap();
    e["id"] = serde_json::json!(h::unique("event"));
    e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        serde_json::json!(instance);
    e
}

async fn audit_keys(config: &aws_config::SdkConfig, bucket: &str) -> Vec<String> {
    aws_sdk_s3::Client::new(config)
        .list_objects_v2()
        .bucket(bucket)
        .prefix("audit/")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_alarm_in_a_member_account_is_healed_there_through_its_role_and_recorded_here() {
    let stack = h::Stack::new().await;
    let aws = h::Adapters::new(&stack);
    let fleet = vigil_aws::members::Fleet {
        central: aws.asg.clone(),
        members: members(&stack.config, MEMBER),
    };
    // The member's group, made with the member role's own credentials: in its account only.
    let member = fleet.members.config(MEMBER).await.unwrap();
    let (group, instances) = h::create_group(&member, 2).await;
    let target = &instances[0];
    let central_groups = aws_sdk_autoscaling::Client::new(&stack.config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    assert!(
        central_groups.auto_scaling_groups().is_empty(),
        "moto keeps the accounts apart"
    );

    // ingest: from the member account, looked up there.
    let settings = central_ingest();
    let ports = aws.ingest_ports_with(&fleet);
    let envelope =
        events::parse_envelope(member_alarm(MEMBER, target).to_string().as_bytes()).unwrap();
    let observed = ingest::handle(&envelope, &settings, &ports).await.unwrap();
    let resource = &observed.observations[0].signal.resource;
    assert_eq!(resource.account.as_deref(), Some(MEMBER));
    assert_eq!(resource.group.as_ref().unwrap().as_str(), group);

    // decide, with the member named by the stack; remediate through the member role.
    let scored = score::handle(observed, &Models::bundled().unwrap());
    let store = decide::PolicyStore::new(
        Policy::bundled().unwrap(),
        Mode::Enforce,
        decide::POLICY_TTL,
    )
    .with_member_accounts(vec![MEMBER.to_owned()]);
    let decide_ports = decide::DecidePorts {
        groups: &fleet,
        claims: &aws.state,
        kill_switch: &aws.kill_switch,
        history: &aws.state,
        quotas: &aws.state,
        policy: &aws.policy,
        alerts: &aws.sns,
    };
    let decisions = decide::handle(scored, "execution-1", &store, &decide_ports, Utc::now())
        .await
        .unwrap();
    assert_eq!(decisions.decisions.len(), 1);
    let decision = &decisions.decisions[0];
    assert_eq!(decision.tier, Tier::AutoHeal, "{:?}", decision.reasons);
    assert!(decision.cites(&Code::MemberAccount));
    let settings = remediate::RemediateConfig {
        verify_attempts: 3,
        verify_interval: std::time::Duration::from_millis(200),
        ..Default::default()
    };
    let (rports, rsettings) = aws
        .remediate
        .for_decision(decision, &fleet.members, &settings)
        .await;
    assert_eq!(rsettings.acting_account.as_deref(), Some(MEMBER));
    let outcome = remediate::handle(
        decision,
        "attempt-1",
        &rsettings,
        rports.as_ref(),
        decision.decided_at,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::Verified,
        "{}",
        outcome.detail
    );

    // Done in the member account, read back there; recorded in the stack's own trail.
    assert_eq!(h::instance_health(&member, target).await, "Unhealthy");
    assert_eq!(h::instance_health(&member, &instances[1]).await, "Healthy");
    let trail = audit_keys(&stack.config, &stack.audit_bucket).await;
    assert!(trail.len() >= 2, "the decision and its outcome: {trail:?}");
    let stored = vigil_aws::audit::AuditTrail::new(
        &stack.config,
        &stack.audit_bucket,
        "audit/",
        &stack.table,
    )
    .read_all()
    .await
    .unwrap();
    assert_eq!(
        vigil_core::audit::verify_stored("audit/", &stored).unwrap(),
        stored.len()
    );
    let records: Vec<vigil_core::audit::AuditRecord> = stored
        .iter()
        .map(|(_, bytes)| serde_json::from_slice(bytes).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.kind.as_str(), r.subject.as_str()))
        .collect();
    assert!(
        kinds.contains(&("decision", decision.id.as_str())),
        "the decision is in the stack's trail: {kinds:?}"
    );
    let recorded = records
        .iter()
        .find(|r| r.kind == "decision" && r.subject == decision.id)
        .unwrap();
    assert_eq!(
        recorded.payload["incident"]["resource"]["account"],
        serde_json::json!(MEMBER),
        "the record says which account"
    );
}

#[tokio::test]
async fn an_account_the_stack_does_not_name_is_refused_and_never_acted_in() {
    let stack = h::Stack::new().await;
    let aws = h::Adapters::new(&stack);
    let fleet = vigil_aws::members::Fleet {
        central: aws.asg.clone(),
        members: members(&stack.config, MEMBER),
    };
    // No role is assumed for an account the stack does not name.
    assert!(fleet.members.config("333333333333").await.is_none());
    let settings = central_ingest();
    let ports = aws.ingest_ports_with(&fleet);
    // An event from another account is refused, as before.
    let stranger = member_alarm("333333333333", "i-0123456789abcdef0");
    let envelope = events::parse_envelope(stranger.to_string().as_bytes()).unwrap();
    let refused = ingest::handle(&envelope, &settings, &ports).await;
    assert!(
        matches!(
            &refused,
            Err(ingest::IngestError::Event(
                events::EventError::WrongAccount { .. }
            ))
        ),
        "{refused:?}"
    );
    // A member's event that speaks of a third account is refused too.
    let mut mixed = member_alarm(MEMBER, "i-0123456789abcdef0");
    mixed["resources"] =
        serde_json::json!(["arn:aws:cloudwatch:us-east-1:333333333333:alarm:elsewhere"]);
    let envelope = events::parse_envelope(mixed.to_string().as_bytes()).unwrap();
    assert!(ingest::handle(&envelope, &settings, &ports).await.is_err());

    // A decision about an account the stack does not name changes nothing anywhere, whatever
    // it says: remediate holds no role there.
    let (group, instances) = h::create_group(&stack.config, 3).await;
    // The decision an alarm on the stack's own instance gets, then said to be elsewhere.
    let envelope =
        events::parse_envelope(member_alarm(CENTRAL, &instances[0]).to_string().as_bytes())
            .unwrap();
    let observed = ingest::handle(&envelope, &settings, &ports).await.unwrap();
    let scored = score::handle(observed, &Models::bundled().unwrap());
    let store = decide::PolicyStore::new(
        Policy::bundled().unwrap(),
        Mode::Enforce,
        decide::POLICY_TTL,
    );
    let mut decision = decide::handle(
        scored,
        "execution-2",
        &store,
        &aws.decide_ports(),
        Utc::now(),
    )
    .await
    .unwrap()
    .decisions
    .remove(0);
    assert_eq!(decision.tier, Tier::AutoHeal);
    decision.incident.resource.account = Some("333333333333".into());
    assert!(matches!(
        &decision.action,
        Some(vigil_core::domain::Action::ReplaceInstance { group: g, .. }) if g.as_str() == group
    ));
    let (rports, rsettings) = aws
        .remediate
        .for_decision(
            &decision,
            &fleet.members,
            &remediate::RemediateConfig::default(),
        )
        .await;
    assert_eq!(rsettings.acting_account, None);
    let outcome = remediate::handle(
        &decision,
        "attempt-1",
        &rsettings,
        rports.as_ref(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.status,
        OutcomeStatus::NotActed,
        "{}",
        outcome.detail
    );
    assert!(
        outcome.detail.contains("holds no role"),
        "{}",
        outcome.detail
    );
    assert_eq!(
        h::instance_health(&stack.config, &instances[0]).await,
        "Healthy"
    );
}

/// Tags a group as watched, with the credentials of its account.
async fn watch(config: &aws_config::SdkConfig, group: &str, tag: &str) {
    aws_sdk_autoscaling::Client::new(config)
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(tag)
                .value("true")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// An hour of one-minute CPU points of an instance, at `level`, put with the credentials of
/// the account they are in.
async fn put_cpu(config: &aws_config::SdkConfig, instance: &str, at: DateTime<Utc>, level: f64) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let data = (1..=60)
        .map(|m| {
            MetricDatum::builder()
                .metric_name("CPUUtilization")
                .dimensions(
                    Dimension::builder()
                        .name("InstanceId")
                        .value(instance)
                        .build(),
                )
                .timestamp(aws_smithy_types::DateTime::from_secs(
                    (at - chrono::Duration::minutes(m)).timestamp(),
                ))
                .value(level)
                .build()
        })
        .collect();
    aws_sdk_cloudwatch::Client::new(config)
        .put_metric_data()
        .namespace("AWS/EC2")
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");
}

/// The tick of the stack's own account.
fn tick(at: DateTime<Utc>) -> events::Envelope {
    let event = serde_json::json!({
        "version": "0", "id": h::unique("tick"),
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": CENTRAL, "time": at.to_rfc3339(), "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:{CENTRAL}:rule/vigil-MetricPull")],
        "detail": {}
    });
    events::parse_envelope(event.to_string().as_bytes()).unwrap()
}

/// The scheduled pull of a member account, against the emulators (moto for Auto Scaling,
/// ministack for CloudWatch; each answers AssumeRole with credentials that act in the role's
/// account, and keeps accounts apart): the plan lists the member's watched group through its
/// role, in a batch of its own, and the batch reads the instance's metrics in the member
/// account (the stack's own account holds another reading under the same instance id), its
/// observations about that account. A member whose role cannot be assumed is left out and
/// counted, the rest pulled; a batch naming an account the stack does not name is refused.
#[tokio::test]
async fn a_member_accounts_watched_instances_are_planned_and_their_metrics_read_there() {
    use vigil_core::metrics::fanout::{PlannedBatch, PullBatch};
    let stack = h::Stack::new().await;
    let aws = h::Adapters::new(&stack);
    let fleet = vigil_aws::members::Fleet {
        central: aws.asg.clone(),
        members: members(&stack.config, MEMBER),
    };
    let tag = h::unique("vigil-watch");
    let member = fleet.members.config(MEMBER).await.unwrap();
    let (group, ids) = h::create_group(&member, 2).await;
    watch(&member, &group, &tag).await;
    let (own_group, own_ids) = h::create_group(&stack.config, 1).await;
    watch(&stack.config, &own_group, &tag).await;

    // CloudWatch through the same role, on its emulator.
    let cloudwatch = h::cloudwatch_config();
    let cloudwatch_members = members(&cloudwatch, MEMBER);
    let metrics = vigil_aws::members::FleetMetrics {
        central: vigil_aws::cloudwatch::CloudWatch::new(&cloudwatch).into(),
        members: &cloudwatch_members,
    };
    let now = Utc::now().timestamp();
    let at = DateTime::from_timestamp(now - now % 60, 0).unwrap();
    put_cpu(
        &cloudwatch_members.config(MEMBER).await.unwrap(),
        &ids[0],
        at,
        80.0,
    )
    .await;
    put_cpu(&cloudwatch, &ids[0], at, 5.0).await;

    // A second member the stack names, whose role cannot be assumed here.
    let settings = ingest::IngestConfig {
        watch_tag: tag,
        member_accounts: vec![MEMBER.to_owned(), "333333333333".to_owned()],
        region: Some("us-east-1".to_owned()),
        ..central_ingest()
    };
    let watched = vigil_aws::members::Watched {
        fleet: &fleet,
        tagged: vigil_aws::tagging::TaggedInstances::new(&stack.config),
    };
    let plan_ports = ingest::PlanPorts {
        watched: &watched,
        disks: &metrics,
        plans: &aws.detectors,
    };
    let plan = ingest::plan(&tick(at), &settings, &plan_ports)
        .await
        .unwrap();
    assert_eq!(plan.instances, 3, "{plan:?}");
    assert_eq!(plan.accounts_not_listed, 1, "the account without a role");
    let body = aws_sdk_s3::Client::new(&stack.config)
        .get_object()
        .bucket(&stack.detector_bucket)
        .key(&plan.key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let batches: Vec<PlannedBatch> = serde_json::from_slice(&body).unwrap();
    let of = |account: Option<&str>| -> Vec<String> {
        batches
            .iter()
            .filter(|b| b.items[0].account.as_deref() == account)
            .flat_map(|b| {
                assert!(b.items.iter().all(|i| i.account.as_deref() == account));
                b.items.iter().map(|i| i.instance.to_string())
            })
            .collect()
    };
    assert_eq!(
        of(None),
        own_ids,
        "the stack's own instance, in a batch of its own"
    );
    let mut member_ids = of(Some(MEMBER));
    member_ids.sort_unstable();
    let mut expected = ids.clone();
    expected.sort_unstable();
    assert_eq!(member_ids, expected, "the member's, through its role");

    // The member's batch, pulled as a child execution pulls it.
    let items = batches
        .iter()
        .find(|b| b.items[0].account.as_deref() == Some(MEMBER))
        .unwrap()
        .items
        .clone();
    let batch = PullBatch {
        tick: plan.tick.clone(),
        at: plan.at,
        items,
    };
    let ports = ingest::IngestPorts {
        instances: &fleet,
        history: &aws.state,
        watched: &watched,
        disks: &metrics,
        metrics: &metrics,
        deploys: &aws.state,
        detectors: &aws.detectors,
    };
    let observed = ingest::pull_batch(&batch, &settings, &ports).await.unwrap();
    let cpu = observed
        .observations
        .iter()
        .find_map(|o| match &o.signal.kind {
            SignalKind::MetricWindow { metric, points, .. }
                if metric == "AWS/EC2/CPUUtilization" && o.signal.resource.id == ids[0] =>
            {
                Some((o, points.iter().rev().find_map(|p| *p)))
            }
            _ => None,
        })
        .expect("the member instance's CPU window");
    assert_eq!(
        cpu.1,
        Some(80.0),
        "read in the member account, not the stack's own"
    );
    assert!(
        observed
            .observations
            .iter()
            .all(|o| o.signal.resource.account.as_deref() == Some(MEMBER)
                && o.signal.resource.region.as_deref() == Some("us-east-1")
                && o.signal.resource.group.as_ref().map(|g| g.as_str()) == Some(group.as_str())),
        "every observation about the member's instance, in its group"
    );

    // A batch said to be of an account the stack does not name is refused, nothing read.
    let mut forged = batch.clone();
    for item in &mut forged.items {
        item.account = Some("444444444444".into());
    }
    let refused = ingest::pull_batch(&forged, &settings, &ports).await;
    assert!(
        matches!(&refused, Err(ingest::IngestError::NotAMember(a)) if a == "444444444444"),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().error_type(), ingest::EVENT_REFUSED);
}
