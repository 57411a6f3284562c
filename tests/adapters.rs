//! Each AWS adapter against moto, asserting the emulator's state; for the calls moto does not
//! implement (CodePipeline's job results), the request the adapter sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, TimeZone, Utc};
use vigil_aws::{
    autoscaling::AutoScaling, codepipeline::CodePipeline, dynamodb::StateTable, sns::Sns,
    ssm::KillSwitchParameter,
};
use vigil_core::alert::Alert;
use vigil_core::names::{GroupName, InstanceId};
use vigil_handlers::ports::{
    Claim, ClaimOnce, DescribeGroup, DescribeInstance, JobResult, PortErrorKind, PublishAlert,
    ReadDeploymentFreeze, ReadKillSwitch, ReportJobResult, SetInstanceHealth,
};
use vigil_tests as h;

#[tokio::test]
async fn autoscaling_membership_capacity_and_health() {
    let config = h::sdk_config();
    let (group, ids) = h::create_group(&config, 3).await;
    let asg = AutoScaling::new(&config);
    let first = InstanceId::parse(&ids[0]).unwrap();

    let m = asg.membership(&first).await.unwrap().unwrap();
    assert_eq!(m.group.as_str(), group);
    assert_eq!(
        (m.health.as_str(), m.lifecycle.as_str()),
        ("HEALTHY", "InService")
    );

    let cap = asg
        .capacity(&GroupName::parse(&group).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (cap.min_size, cap.max_size, cap.desired, cap.in_service),
        (1, 5, 3, 3)
    );

    asg.set_unhealthy(&first).await.unwrap();
    assert_eq!(h::instance_health(&config, &ids[0]).await, "Unhealthy");
    let cap = asg
        .capacity(&GroupName::parse(&group).unwrap())
        .await
        .unwrap();
    assert_eq!(cap.in_service, 2);

    // An instance no group knows, and a group that does not exist.
    let stranger = InstanceId::parse("i-0123456789abcdef0").unwrap();
    assert!(asg.membership(&stranger).await.unwrap().is_none());
    let err = asg
        .capacity(&GroupName::parse("no-such-group").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::NotFound);
}

#[tokio::test]
async fn sns_publishes_subject_body_and_attributes() {
    let config = h::sdk_config();
    let topic = h::create_topic(&config).await;
    let sns = Sns::new(&config, &topic);
    let alert = Alert {
        subject: "[Vigil HIGH] CPU runaway on i-0123: HEALED".into(),
        body: "what happened\nevidence".into(),
        attributes: [
            ("severity".to_owned(), "HIGH".to_owned()),
            ("tier".to_owned(), "auto-heal".to_owned()),
        ]
        .into_iter()
        .collect(),
        chat: None,
    };
    let id = sns.publish(&alert).await.unwrap();
    let sent = h::sns_sent(&topic);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, id);
    assert_eq!(sent[0].subject, alert.subject);
    assert_eq!(sent[0].body, alert.body);
    assert_eq!(sent[0].attributes["severity"]["Value"], "HIGH");
    assert_eq!(sent[0].attributes["tier"]["Value"], "auto-heal");
    // One text per kind of subscriber: email and the rest get the text, HTTPS (the chat
    // service) the custom notification, in the documented shape.
    let raw: serde_json::Value = serde_json::from_str(&sent[0].raw).unwrap();
    assert_eq!(raw["default"], alert.body.as_str());
    assert_eq!(raw["email"], alert.body.as_str());
    let chat = sent[0].chat.as_ref().expect("a chat notification");
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["title"], alert.subject.as_str());
    assert_eq!(
        chat["content"]["description"],
        "```\nwhat happened\nevidence\n```"
    );
    assert_eq!(
        chat["content"]["keywords"],
        serde_json::json!(["HIGH", "auto-heal"])
    );

    let missing = Sns::new(&config, "arn:aws:sns:us-east-1:123456789012:no-such-topic");
    assert!(missing.publish(&alert).await.is_err());
}

#[tokio::test]
async fn dynamodb_claims_are_atomic_owned_and_expire() {
    let config = h::sdk_config();
    let table = StateTable::new(&config, h::create_table(&config).await);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let until = t0 + Duration::minutes(30);

    assert_eq!(
        table.claim("event#1", "a", t0, until).await.unwrap(),
        Claim::Won
    );
    assert_eq!(
        table.claim("event#1", "b", t0, until).await.unwrap(),
        Claim::Held
    );
    // The owner's retry re-wins its own claim.
    assert_eq!(
        table.claim("event#1", "a", t0, until).await.unwrap(),
        Claim::Won
    );
    // After expiry anyone wins.
    let later = until + Duration::seconds(1);
    assert_eq!(
        table
            .claim("event#1", "b", later, later + Duration::minutes(1))
            .await
            .unwrap(),
        Claim::Won
    );
    assert_eq!(
        table.claim("event#1", "a", later, later).await.unwrap(),
        Claim::Held
    );

    let missing = StateTable::new(&config, "no-such-table");
    assert!(missing.claim("k", "a", t0, until).await.is_err());
}

#[tokio::test]
async fn dynamodb_deployment_freeze() {
    let config = h::sdk_config();
    let name = h::create_table(&config).await;
    let table = StateTable::new(&config, &name);
    let now = Utc::now();
    assert_eq!(table.freeze("web/prod", now).await.unwrap(), None);

    freeze(
        &config,
        &name,
        "web/prod",
        "GuardDuty finding on i-1234abcd",
        now + Duration::hours(1),
    )
    .await;
    freeze(
        &config,
        &name,
        "web/staging",
        "old incident",
        now - Duration::hours(1),
    )
    .await;
    assert_eq!(
        table.freeze("web/prod", now).await.unwrap().as_deref(),
        Some("GuardDuty finding on i-1234abcd")
    );
    assert_eq!(table.freeze("web/staging", now).await.unwrap(), None);
}

async fn freeze(
    config: &aws_config::SdkConfig,
    table: &str,
    target: &str,
    reason: &str,
    until: chrono::DateTime<Utc>,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    aws_sdk_dynamodb::Client::new(config)
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(StateTable::freeze_key(target)))
        .item("reason", AttributeValue::S(reason.to_owned()))
        .item(
            "expires_at",
            AttributeValue::N(until.timestamp().to_string()),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn ssm_kill_switch_reads_and_fails_closed() {
    let config = h::sdk_config();
    let name = format!("/{}/kill-switch", h::unique("vigil"));
    let switch = KillSwitchParameter::new(&config, &name);
    // Never set: not engaged.
    assert!(!switch.engaged().await.unwrap());
    h::put_parameter(&config, &name, "on").await;
    assert!(switch.engaged().await.unwrap());
    h::put_parameter(&config, &name, "off").await;
    assert!(!switch.engaged().await.unwrap());
    // An unreadable value is an error, which the handlers treat as engaged.
    h::put_parameter(&config, &name, "maybe").await;
    assert!(switch.engaged().await.is_err());
}

// --- CodePipeline job results: moto 5.2 implements CreatePipeline/GetPipeline but not
// PutJobSuccessResult / PutJobFailureResult, so these tests assert the request the adapter sends
// (operation, job id, failure type and message) instead of the emulator's state.

#[tokio::test]
async fn codepipeline_failure_result_request_shape() {
    let (config, rx) = h::capturing_config();
    let message = format!("Vigil gate blocked the deployment:\n- {}", "x".repeat(6000));
    CodePipeline::new(&config)
        .report("job-123", &JobResult::Failure { message })
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    assert_eq!(body["jobId"], "job-123");
    assert_eq!(body["failureDetails"]["type"], "JobFailed");
    let sent = body["failureDetails"]["message"].as_str().unwrap();
    assert!(sent.starts_with("Vigil gate blocked the deployment:\n- x"));
    assert_eq!(sent.chars().count(), 5000, "CodePipeline's limit");
}

#[tokio::test]
async fn codepipeline_success_result_request_shape() {
    let (config, rx) = h::capturing_config();
    CodePipeline::new(&config)
        .report(
            "job-456",
            &JobResult::Success {
                summary: "clean".into(),
            },
        )
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.PutJobSuccessResult");
    assert_eq!(body["jobId"], "job-456");
    assert_eq!(body["executionDetails"]["summary"], "clean");
}

#[tokio::test]
async fn dynamodb_principal_history_round_trips() {
    use vigil_core::features::identity::PrincipalProfile;
    use vigil_handlers::ports::PrincipalHistory;
    let config = h::sdk_config();
    let name = h::create_table(&config).await;
    let table = StateTable::new(&config, &name);
    let principal = "arn:aws:iam::123456789012:user/alice";
    assert!(table.load(principal).await.unwrap().is_none());

    let mut profile = PrincipalProfile::default();
    let record = h::fixture_json("sources/cloudtrail-stop-logging.json");
    let signal = vigil_core::events::normalise_cloudtrail_record(&record["detail"]).unwrap();
    profile.observe(&signal);
    table.save(principal, &profile, Utc::now()).await.unwrap();
    assert_eq!(table.load(principal).await.unwrap(), Some(profile.clone()));

    // A correlation rule's window rides in the history, at its bound, and reads back whole.
    let pack = vigil_rules::Pack::bundled().unwrap();
    let denied = pack
        .correlations()
        .iter()
        .find(|c| c.name() == "aws_many_denied_calls")
        .unwrap();
    for c in pack.correlations() {
        for i in 0..vigil_core::features::correlation::MAX_ENTRIES {
            let mut s = signal.clone();
            s.rules = c
                .correlation
                .bases
                .iter()
                .map(|b| pack.get(b).unwrap().hit())
                .collect();
            s.observed_at = Utc::now() + Duration::seconds(i as i64);
            if let vigil_core::domain::SignalKind::ApiCall(call) = &mut s.kind {
                call.event_name = format!("Probe{}", i % 7);
                call.request = vec![format!("secretId=s{}", i % 7)];
            }
            c.correlation.fold(&mut profile.correlations, &s);
        }
    }
    assert!(profile.correlations.contains_key(denied.name()));
    table.save(principal, &profile, Utc::now()).await.unwrap();
    assert_eq!(table.load(principal).await.unwrap(), Some(profile));

    // The item expires with the history's age limit.
    use aws_sdk_dynamodb::types::AttributeValue;
    let item = aws_sdk_dynamodb::Client::new(&config)
        .get_item()
        .table_name(&name)
        .key(
            "pk",
            AttributeValue::S(StateTable::principal_key(principal)),
        )
        .send()
        .await
        .unwrap();
    let expires: i64 = item.item().unwrap()["expires_at"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert!(expires > (Utc::now() + Duration::days(29)).timestamp());
}

// --- CloudWatch, against ministack (moto answers the CBOR protocol with 404).

async fn put_series(
    config: &aws_config::SdkConfig,
    instance: &str,
    namespace: &str,
    metric: &str,
    extra: &[(&str, &str)],
    values: &[(chrono::DateTime<Utc>, f64)],
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let client = aws_sdk_cloudwatch::Client::new(config);
    let mut dims = vec![
        Dimension::builder()
            .name("InstanceId")
            .value(instance)
            .build(),
    ];
    dims.extend(
        extra
            .iter()
            .map(|(k, v)| Dimension::builder().name(*k).value(*v).build()),
    );
    let data: Vec<MetricDatum> = values
        .iter()
        .map(|(t, v)| {
            MetricDatum::builder()
                .metric_name(metric)
                .set_dimensions(Some(dims.clone()))
                .timestamp(aws_smithy_types::DateTime::from_secs(t.timestamp()))
                .value(*v)
                .build()
        })
        .collect();
    client
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test]
async fn cloudwatch_pull_batches_past_the_query_limit_and_reads_values_back() {
    use vigil_aws::cloudwatch::CloudWatch;
    use vigil_core::metrics::{self, MAX_QUERIES_PER_CALL, WatchedInstance};
    use vigil_handlers::ports::FetchMetrics;
    let config = h::cloudwatch_config();
    let end = Utc::now() - Duration::seconds(Utc::now().timestamp() % 60);
    let start = end - Duration::minutes(10);
    // Enough instances that the pull needs two GetMetricData calls.
    let n = MAX_QUERIES_PER_CALL / metrics::PER_INSTANCE.len() + 1;
    let instances: Vec<WatchedInstance> = (0..n)
        .map(|i| WatchedInstance {
            instance: InstanceId::parse(&format!(
                "i-{:017x}",
                0xabc_0000_0000_u64 + i as u64 + (std::process::id() as u64) * 10_000
            ))
            .unwrap(),
            group: Some(GroupName::parse("web").unwrap()),
            application: None,
            environment: None,
            tags: Default::default(),
            account: None,
        })
        .collect();
    let first = instances[0].instance.as_str().to_owned();
    let last = instances[n - 1].instance.as_str().to_owned();
    let at = |m: i64| end - Duration::minutes(m);
    put_series(
        &config,
        &first,
        "AWS/EC2",
        "CPUUtilization",
        &[],
        &[(at(3), 41.0), (at(2), 42.0), (at(1), 97.5)],
    )
    .await;
    put_series(
        &config,
        &last,
        "CWAgent",
        "mem_used_percent",
        &[],
        &[(at(2), 71.0), (at(1), 72.0)],
    )
    .await;

    let queries = metrics::plan(&instances, &[]);
    assert!(queries.len() > MAX_QUERIES_PER_CALL);
    let results = CloudWatch::new(&config)
        .fetch(&queries, start, end, 60)
        .await
        .unwrap();

    let cpu = queries
        .iter()
        .find(|q| q.instance.as_str() == first && q.metric == "CPUUtilization")
        .unwrap();
    let values: Vec<f64> = results[&cpu.id].iter().map(|(_, v)| *v).collect();
    assert_eq!(values, vec![41.0, 42.0, 97.5]);
    // The last instance's queries were in the second batch.
    let mem = queries
        .iter()
        .find(|q| q.instance.as_str() == last && q.metric == "mem_used_percent")
        .unwrap();
    assert!(queries.iter().position(|q| q.id == mem.id).unwrap() >= MAX_QUERIES_PER_CALL);
    let values: Vec<f64> = results[&mem.id].iter().map(|(_, v)| *v).collect();
    assert_eq!(values, vec![71.0, 72.0]);
    // Metrics nobody published come back empty, not as errors.
    let net = queries
        .iter()
        .find(|q| q.instance.as_str() == first && q.metric == "NetworkIn")
        .unwrap();
    assert!(results.get(&net.id).is_none_or(|s| s.is_empty()));

    let signals = metrics::signals("tick", end, 60, 10, &instances, &queries, &results);
    assert_eq!(signals.len(), 2);
}

#[tokio::test]
async fn cloudwatch_finds_the_agents_disk_metrics() {
    use vigil_aws::cloudwatch::CloudWatch;
    use vigil_core::metrics::WatchedInstance;
    use vigil_handlers::ports::ListDiskMetrics;
    let config = h::cloudwatch_config();
    let id = format!(
        "i-{:017x}",
        0xd15c_0000_0000_u64 + std::process::id() as u64
    );
    put_series(
        &config,
        &id,
        "CWAgent",
        "disk_used_percent",
        &[("path", "/"), ("device", "nvme0n1p1"), ("fstype", "xfs")],
        &[(Utc::now() - Duration::minutes(1), 88.0)],
    )
    .await;
    let watched = vec![WatchedInstance {
        instance: InstanceId::parse(&id).unwrap(),
        group: Some(GroupName::parse("web").unwrap()),
        application: None,
        environment: None,
        tags: Default::default(),
        account: None,
    }];
    let disks = CloudWatch::new(&config).disks(&watched).await.unwrap();
    assert_eq!(disks.len(), 1, "{disks:?}");
    assert!(
        disks[0]
            .dimensions
            .contains(&("path".to_owned(), "/".to_owned()))
    );
}

#[tokio::test]
async fn autoscaling_lists_the_instances_of_watched_groups() {
    use vigil_handlers::ports::ListWatchedInstances;
    let config = h::sdk_config();
    let (watched_group, watched_ids) = h::create_group(&config, 2).await;
    let (other_group, _) = h::create_group(&config, 1).await;
    let tag = |k: &str, v: &str| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(&watched_group)
            .resource_type("auto-scaling-group")
            .key(k)
            .value(v)
            .propagate_at_launch(true)
            .build()
    };
    let key = h::unique("vigil-watch");
    aws_sdk_autoscaling::Client::new(&config)
        .create_or_update_tags()
        .tags(tag(&key, "true"))
        .tags(tag("application", "shop"))
        .tags(tag("environment", "prod"))
        .tags(tag("vigil:service", "shop.service"))
        .send()
        .await
        .unwrap();
    let asg = AutoScaling::new(&config);
    let found = asg.watched(&key).await.unwrap();
    // The group's tags come with each instance, for the policy's rungs (restart needs
    // vigil:service).
    assert!(
        found
            .iter()
            .all(|w| w.tags.get("vigil:service").map(String::as_str) == Some("shop.service")),
        "{found:?}"
    );
    // An instance's membership carries its group's application and environment too.
    let m = asg
        .membership(&InstanceId::parse(&watched_ids[0]).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.application.as_deref(), m.environment.as_deref()),
        (Some("shop"), Some("prod"))
    );
    let mut ids: Vec<&str> = found.iter().map(|w| w.instance.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = watched_ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(found.iter().all(|w| w.group.as_ref().map(|g| g.as_str())
        == Some(watched_group.as_str())
        && w.application.as_deref() == Some("shop")
        && w.environment.as_deref() == Some("prod")));
    assert!(
        found
            .iter()
            .all(|w| w.group.as_ref().map(|g| g.as_str()) != Some(other_group.as_str()))
    );
}

/// Instances tagged for watching on their own (no Auto Scaling group) are listed through the
/// tagging API with their own tags and no group; an instance tagged otherwise, or launched by a
/// group (which its group's tag speaks for), is not.
#[tokio::test]
async fn tagging_lists_instances_watched_outside_any_group() {
    use vigil_aws::tagging::{GROUP_TAG, TaggedInstances};
    let config = h::sdk_config();
    let key = h::unique("vigil-watch");
    let alone = h::run_instance(&[
        (&key, "true"),
        ("Application", "billing"),
        ("env", "prod"),
        ("vigil:service", "billing.service"),
    ]);
    let _off = h::run_instance(&[(&key, "false")]);
    let _in_group = h::run_instance(&[(&key, "true"), (GROUP_TAG, "web")]);
    let found = TaggedInstances::new(&config).watched(&key).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let w = &found[0];
    assert_eq!(w.instance.as_str(), alone);
    assert_eq!(w.group, None);
    assert_eq!(
        (w.application.as_deref(), w.environment.as_deref()),
        (Some("billing"), Some("prod"))
    );
    assert_eq!(
        w.tags.get("vigil:service").map(String::as_str),
        Some("billing.service"),
        "its own tags, for the policy's rungs"
    );
}

#[tokio::test]
async fn sightings_count_other_deliveries_within_the_window() {
    use vigil_handlers::ports::Sightings;
    let config = h::sdk_config();
    let name = h::create_table(&config).await;
    let state = StateTable::new(&config, &name);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    let window = Duration::minutes(12);
    let key = "i-0abc1234def567890#CPU runaway";
    assert_eq!(state.sighted(key, "tick-1", t0, window).await.unwrap(), 0);
    // The same delivery again (a retry) is not a second sighting.
    assert_eq!(state.sighted(key, "tick-1", t0, window).await.unwrap(), 0);
    let t1 = t0 + Duration::minutes(5);
    assert_eq!(state.sighted(key, "tick-2", t1, window).await.unwrap(), 1);
    // Half an hour later, the earlier sightings are out of the window.
    let t2 = t0 + Duration::minutes(40);
    assert_eq!(state.sighted(key, "tick-3", t2, window).await.unwrap(), 0);
    // Another finding on the same resource is counted apart.
    assert_eq!(
        state
            .sighted("i-0abc1234def567890#memory leak", "tick-2", t1, window)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn dynamodb_digest_counts_by_rule_per_day() {
    use vigil_core::digest::Entry;
    use vigil_core::domain::RuleLevel;
    use vigil_handlers::ports::DigestBook;
    let config = h::sdk_config();
    let table = StateTable::new(&config, h::create_table(&config).await);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let keep = Utc::now() + Duration::days(3);
    let entry = |rule: &str, level, example: &str| Entry {
        rule: rule.into(),
        level,
        example: example.into(),
    };
    for example in ["user/alice", "user/bob"] {
        table
            .note(
                day,
                &entry("aws_iam_user_created", RuleLevel::Low, example),
                keep,
            )
            .await
            .unwrap();
    }
    table
        .note(
            day,
            &entry(
                "aws_console_login_without_mfa",
                RuleLevel::Medium,
                "user/carol",
            ),
            keep,
        )
        .await
        .unwrap();
    let mut lines = table.lines(day).await.unwrap();
    lines.sort_by(|a, b| a.rule.cmp(&b.rule));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        (
            lines[1].rule.as_str(),
            lines[1].count,
            lines[1].level,
            lines[1].example.as_str()
        ),
        ("aws_iam_user_created", 2, Some(RuleLevel::Low), "user/bob")
    );
    assert_eq!(
        (lines[0].count, lines[0].level),
        (1, Some(RuleLevel::Medium))
    );
    // Another day is another item.
    assert!(
        table
            .lines(day.succ_opt().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every finding the emulator's Security Hub holds with this id.
async fn findings_with_id(
    config: &aws_config::SdkConfig,
    id: &str,
) -> Vec<aws_sdk_securityhub::types::AwsSecurityFinding> {
    // The emulator implements no filters: every finding is read and the id compared here.
    let out = aws_sdk_securityhub::Client::new(config)
        .get_findings()
        .max_results(100)
        .send()
        .await
        .expect("GetFindings");
    out.findings()
        .iter()
        .filter(|f| f.id() == Some(id))
        .cloned()
        .collect()
}

#[tokio::test]
async fn securityhub_keeps_one_finding_per_incident_and_archives_it_when_healed() {
    use aws_sdk_securityhub::types::RecordState;
    use vigil_aws::securityhub::SecurityHub;
    use vigil_core::domain::{
        Action, Decision, FailureMode, Incident, Mode, Outcome, OutcomeStatus, Resource,
        ResourceKind, Severity, Tier,
    };
    use vigil_handlers::ports::ImportFinding;
    let config = h::sdk_config();
    let stack = vigil_core::securityhub::Stack {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    let incident = h::unique("incident");
    let now = Utc::now();
    let decision = Decision {
        id: format!("{incident}:replace_instance"),
        incident: Incident {
            id: incident.clone(),
            resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
            failure_mode: FailureMode::CpuRunaway,
            threat: None,
            severity: Severity::High,
            confidence: 0.9,
            opened_at: now - Duration::minutes(3),
            evidence: Vec::new(),
        },
        tier: Tier::AutoHeal,
        action: Some(Action::ScaleOut {
            group: GroupName::parse("web").unwrap(),
            by: 1,
        }),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: now,
    };
    let outcome = |status| Outcome {
        decision_id: decision.id.clone(),
        status,
        detail: "scaled out".into(),
        notification_id: None,
        finished_at: now,
    };
    let hub = SecurityHub::new(&config);
    let acted = vigil_core::securityhub::finding(
        &decision,
        &outcome(OutcomeStatus::Unverified),
        &stack,
        now,
    )
    .unwrap();
    hub.import(&acted).await.unwrap();
    let found = findings_with_id(&config, &incident).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].record_state(), Some(&RecordState::Active));
    assert_eq!(found[0].product_arn(), Some(stack.product_arn().as_str()));
    assert_eq!(found[0].types(), ["Unusual Behaviors/VM/CPU runaway"]);
    assert_eq!(
        found[0].resources()[0].id(),
        Some("arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0")
    );

    // Verified later: the same finding, updated and archived.
    let healed = vigil_core::securityhub::finding(
        &decision,
        &outcome(OutcomeStatus::Verified),
        &stack,
        now + Duration::minutes(2),
    )
    .unwrap();
    hub.import(&healed).await.unwrap();
    let found = findings_with_id(&config, &incident).await;
    assert_eq!(found.len(), 1, "one finding per incident");
    assert_eq!(found[0].record_state(), Some(&RecordState::Archived));
    assert_eq!(
        found[0].updated_at(),
        Some(
            healed
                .updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .as_str()
        )
    );

    // A finding the service refuses (no resource) is a typed, final error.
    let mut bad = healed.clone();
    bad.resources.clear();
    let err = hub.import(&bad).await.unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Rejected, "{err}");
}

/// OpsCenter's answers, replayed (the emulator has no OpsCenter): each request is kept for
/// its shape.
fn opscenter_replay(
    answers: Vec<(u16, serde_json::Value)>,
) -> (
    aws_config::SdkConfig,
    aws_smithy_http_client::test_util::StaticReplayClient,
) {
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;
    let events = answers
        .into_iter()
        .map(|(status, body)| {
            ReplayEvent::new(
                http::Request::builder()
                    .method("POST")
                    .uri("https://ssm.us-east-1.amazonaws.com/")
                    .body(SdkBody::empty())
                    .unwrap(),
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(SdkBody::from(body.to_string()))
                    .unwrap(),
            )
        })
        .collect();
    let replay = StaticReplayClient::new(events);
    (h::offline_config(replay.clone()), replay)
}

/// The target and JSON body of every request the replay received.
fn replayed(
    replay: &aws_smithy_http_client::test_util::StaticReplayClient,
) -> Vec<(String, serde_json::Value)> {
    replay
        .actual_requests()
        .map(|r| {
            let target = r
                .headers()
                .get("x-amz-target")
                .unwrap_or_default()
                .to_owned();
            let body =
                serde_json::from_slice(r.body().bytes().unwrap_or_default()).unwrap_or_default();
            (target, body)
        })
        .collect()
}

fn memory_leak(status: vigil_core::domain::OutcomeStatus) -> vigil_core::opscenter::OpsItem {
    use vigil_core::domain::{
        Action, Decision, FailureMode, Incident, Mode, Outcome, Resource, ResourceKind, Severity,
        Tier,
    };
    let now = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let decision = Decision {
        id: "inc-leak:scale_out".into(),
        incident: Incident {
            id: "inc-leak".into(),
            resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
            failure_mode: FailureMode::MemoryLeak,
            threat: None,
            severity: Severity::High,
            confidence: 0.8,
            opened_at: now,
            evidence: Vec::new(),
        },
        tier: Tier::AutoHeal,
        action: Some(Action::ScaleOut {
            group: GroupName::parse("web").unwrap(),
            by: 1,
        }),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: now,
    };
    let outcome = Outcome {
        decision_id: decision.id.clone(),
        status,
        detail: String::new(),
        notification_id: None,
        finished_at: now,
    };
    let stack = vigil_core::securityhub::Stack {
        partition: "aws".into(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
    };
    vigil_core::opscenter::ops_item(&decision, &outcome, &stack).unwrap()
}

#[tokio::test]
async fn opscenter_opens_one_ops_item_per_incident_request_shape() {
    // The emulator implements no OpsCenter call: the request is checked against the API's shape.
    use vigil_aws::ssm::OpsCenter;
    use vigil_core::domain::OutcomeStatus;
    use vigil_handlers::ports::RecordOpsItem;
    let (config, replay) = opscenter_replay(vec![(200, serde_json::json!({"OpsItemId": "oi-1"}))]);
    let item = memory_leak(OutcomeStatus::Unverified);
    let id = OpsCenter::new(&config).record(&item).await.unwrap();
    assert_eq!(id, "oi-1");
    let sent = replayed(&replay);
    assert_eq!(sent.len(), 1, "an open incident needs no update");
    let (target, body) = &sent[0];
    assert_eq!(target, "AmazonSSM.CreateOpsItem");
    assert_eq!(body["Source"], "Vigil");
    assert_eq!(body["Severity"], "2");
    assert_eq!(body["Category"], "Performance");
    assert!(body["Title"].as_str().unwrap().contains("memory leak"));
    let data = &body["OperationalData"];
    assert_eq!(data["/aws/dedup"]["Type"], "SearchableString");
    assert_eq!(data["/aws/dedup"]["Value"], r#"{"dedupString":"inc-leak"}"#);
    assert_eq!(
        data["/aws/resources"]["Value"],
        r#"[{"arn":"arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"}]"#
    );
    assert_eq!(data["vigil:decision"]["Value"], "inc-leak:scale_out");
}

#[tokio::test]
async fn opscenter_resolves_the_incidents_open_ops_item_when_healed_request_shape() {
    use vigil_aws::ssm::OpsCenter;
    use vigil_core::domain::OutcomeStatus;
    use vigil_handlers::ports::RecordOpsItem;
    // OpsCenter deduplicates the second create and names the open OpsItem; it is updated.
    let (config, replay) = opscenter_replay(vec![
        (
            400,
            serde_json::json!({
                "__type": "OpsItemAlreadyExistsException",
                "Message": "An OpsItem with the same dedup string exists.",
                "OpsItemId": "oi-7"
            }),
        ),
        (200, serde_json::json!({})),
    ]);
    let item = memory_leak(OutcomeStatus::Verified);
    let id = OpsCenter::new(&config).record(&item).await.unwrap();
    assert_eq!(id, "oi-7");
    let sent = replayed(&replay);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].0, "AmazonSSM.UpdateOpsItem");
    assert_eq!(sent[1].1["OpsItemId"], "oi-7");
    assert_eq!(sent[1].1["Status"], "Resolved");

    // A create refused for another reason is an error, and nothing is updated.
    let (config, replay) = opscenter_replay(vec![(
        400,
        serde_json::json!({"__type": "OpsItemInvalidParameterException", "Message": "bad"}),
    )]);
    let err = OpsCenter::new(&config).record(&item).await.unwrap_err();
    assert_eq!(err.operation, "ssm:CreateOpsItem");
    assert_eq!(replayed(&replay).len(), 1);
}
