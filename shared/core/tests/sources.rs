//! Every source Vigil ingests, from real-shaped EventBridge events: the signals each produces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use vigil_core::domain::{ResourceKind, ScalingActivityKind, Signal, SignalKind, Source};
use vigil_core::events::{self, Normalised};

/// Normalises a fixture that must give signals, and checks the fields every signal shares.
fn signals(fixture: &str, source: Source) -> Vec<Signal> {
    let event = common::fixture(fixture);
    let Normalised::Signals(signals) = events::normalise(&event).unwrap() else {
        panic!("{fixture}: no signals")
    };
    assert!(!signals.is_empty(), "{fixture}");
    for s in &signals {
        assert_eq!(s.source, source, "{fixture}");
        assert_eq!(Some(&s.event_id), event.id.as_ref(), "{fixture}");
        assert!(!s.describe().is_empty());
    }
    signals
}

fn one(fixture: &str, source: Source) -> Signal {
    let mut s = signals(fixture, source);
    assert_eq!(s.len(), 1, "{fixture}");
    s.remove(0)
}

#[test]
fn guardduty_findings_on_an_instance_a_key_and_a_bucket() {
    let s = one("sources/guardduty-crypto-instance.json", Source::GuardDuty);
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::Instance, "i-99999999")
    );
    let SignalKind::Finding {
        finding_type,
        severity,
        archived,
        resource_role,
        sample,
        ..
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!(finding_type, "CryptoCurrency:EC2/BitcoinTool.B");
    assert_eq!((*severity, *archived), (8.0, false));
    assert_eq!((resource_role.as_deref(), *sample), (Some("ACTOR"), false));
    assert_eq!(s.values.get("severity"), Some(&8.0));

    let s = one(
        "sources/guardduty-credential-exfiltration.json",
        Source::GuardDuty,
    );
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::AccessKey, "ASIAQ5EXAMPLEKEY1234")
    );
    assert!(
        matches!(&s.kind, SignalKind::Finding { finding_type, .. } if finding_type.contains("InstanceCredentialExfiltration"))
    );

    let s = one("sources/guardduty-s3-public-access.json", Source::GuardDuty);
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::Other, "audit-logs-prod")
    );
    assert_eq!(
        s.resource.arn.as_deref(),
        Some("arn:aws:s3:::audit-logs-prod")
    );
}

#[test]
fn console_sign_ins() {
    let s = one("sources/signin-console-failure.json", Source::CloudTrail);
    assert_eq!(s.resource.kind, ResourceKind::Principal);
    assert_eq!(s.resource.id, "arn:aws:iam::123456789012:user/alice");
    let SignalKind::ConsoleSignIn {
        success,
        mfa_used,
        source_ip,
        principal,
        ..
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!(
        (*success, *mfa_used, source_ip.as_str()),
        (false, Some(false), "203.0.113.50")
    );
    assert_eq!(principal.name.as_deref(), Some("alice"));

    let s = one(
        "sources/signin-console-success-without-mfa.json",
        Source::CloudTrail,
    );
    assert!(matches!(
        s.kind,
        SignalKind::ConsoleSignIn {
            success: true,
            mfa_used: Some(false),
            ..
        }
    ));
}

#[test]
fn cloudtrail_api_calls() {
    let s = one("sources/cloudtrail-stop-logging.json", Source::CloudTrail);
    let SignalKind::ApiCall(call) = &s.kind else {
        panic!()
    };
    assert_eq!(
        (call.event_source.as_str(), call.event_name.as_str()),
        ("cloudtrail.amazonaws.com", "StopLogging")
    );
    assert_eq!(call.principal.kind, "AssumedRole");
    assert_eq!(call.principal.name.as_deref(), Some("ci-deployer"));
    assert_eq!(call.principal.mfa_authenticated, Some(false));
    assert_eq!(call.read_only, Some(false));
    assert_eq!(
        call.request,
        vec!["name=arn:aws:cloudtrail:us-east-1:123456789012:trail/management-events"]
    );
    assert_eq!(
        s.resource.id,
        "arn:aws:sts::123456789012:assumed-role/ci-deployer/ci-deployer"
    );
}

#[test]
fn raw_cloudtrail_records_from_the_crate_fixtures() {
    for (name, event_name) in [
        (
            "example-cloudwatch-cloudtrail-assumed-role.json",
            "CreateManagedAccount",
        ),
        (
            "example-cloudwatch-cloudtrail-unknown-user-auth.json",
            "UserAuthentication",
        ),
        (
            "example-cloudwatch-cloudtrail-unknown-federate.json",
            "Federate",
        ),
    ] {
        let record: serde_json::Value = serde_json::from_slice(&common::fixture_bytes(&format!(
            "sources/aws_lambda_events/{name}"
        )))
        .unwrap();
        let s = events::normalise_cloudtrail_record(&record).unwrap();
        assert!(
            matches!(&s.kind, SignalKind::ApiCall(c) if c.event_name == event_name),
            "{name}: {:?}",
            s.kind
        );
    }
}

#[test]
fn ec2_instance_state_change() {
    let s = one(
        "sources/aws_lambda_events/example-eventbridge-event-obj.json",
        Source::Ec2,
    );
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::Instance, "i-abcd1111")
    );
    assert!(matches!(&s.kind, SignalKind::InstanceStateChange { state } if state == "pending"));
}

#[test]
fn auto_scaling_activities() {
    for (name, activity) in [
        ("launch-successful", ScalingActivityKind::LaunchSucceeded),
        ("launch-unsuccessful", ScalingActivityKind::LaunchFailed),
        (
            "terminate-successful",
            ScalingActivityKind::TerminateSucceeded,
        ),
        (
            "terminate-unsuccessful",
            ScalingActivityKind::TerminateFailed,
        ),
        (
            "lifecycle-action",
            ScalingActivityKind::LaunchLifecycleAction,
        ),
        (
            "terminate-action",
            ScalingActivityKind::TerminateLifecycleAction,
        ),
    ] {
        let fixture = format!("sources/aws_lambda_events/example-autoscaling-event-{name}.json");
        let s = one(&fixture, Source::AutoScaling);
        let group = s.resource.group.as_ref().map(|g| g.as_str());
        assert!(
            matches!(group, Some("my-auto-scaling-group" | "my-asg")),
            "{name}: {group:?}"
        );
        let SignalKind::ScalingActivity { activity: a, .. } = &s.kind else {
            panic!("{name}")
        };
        assert_eq!(*a, activity, "{name}");
    }
}

#[test]
fn aws_health_event_on_an_instance() {
    let s = one("sources/health-instance-retirement.json", Source::Health);
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::Instance, "i-0a1b2c3d4e5f67890")
    );
    let SignalKind::HealthEvent {
        service,
        type_code,
        category,
        status,
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!(
        (
            service.as_str(),
            type_code.as_str(),
            category.as_str(),
            status.as_str()
        ),
        (
            "EC2",
            "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
            "scheduledChange",
            "upcoming"
        )
    );
    // The detail's RFC 2822 start time is the observation time.
    assert_eq!(s.observed_at.to_rfc3339(), "2026-11-26T06:00:00+00:00");
}

#[test]
fn codepipeline_execution_stage_and_action_changes() {
    for (name, stage, action) in [
        (
            "example-codepipeline-execution-state-change-event.json",
            None,
            None,
        ),
        // The crate's stage fixture carries no `stage` field; it must still parse.
        (
            "example-codepipeline-execution-stage-change-event.json",
            None,
            None,
        ),
        (
            "example-codepipeline-action-execution-stage-change-event.json",
            Some("Prod"),
            Some("myAction"),
        ),
    ] {
        let s = one(
            &format!("sources/aws_lambda_events/{name}"),
            Source::CodePipeline,
        );
        assert_eq!(
            (s.resource.kind, s.resource.id.as_str()),
            (ResourceKind::Pipeline, "myPipeline"),
            "{name}"
        );
        let SignalKind::Deployment {
            stage: st,
            action: ac,
            execution_id,
            ..
        } = &s.kind
        else {
            panic!()
        };
        assert_eq!((st.as_deref(), ac.as_deref()), (stage, action), "{name}");
        assert_eq!(execution_id, "01234567-0123-0123-0123-012345678901");
    }
}

#[test]
fn the_scheduled_event_is_a_tick() {
    let event = common::fixture("sources/aws_lambda_events/example-eventbridge-schedule.json");
    assert!(matches!(
        events::normalise(&event).unwrap(),
        Normalised::Tick { .. }
    ));
}

/// Every Stratus Red Team detonation log: every record parses into a signal, and the
/// techniques' tell-tale calls are there.
#[test]
fn every_stratus_detonation_record_parses() {
    let dir = format!("{}/../../data/stratus", env!("CARGO_MANIFEST_DIR"));
    let mut files = 0;
    let mut records = 0;
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        files += 1;
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for record in &list {
            let s = events::normalise_cloudtrail_record(record)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), vigil_core::error_chain(&e)));
            records += 1;
            match &s.kind {
                SignalKind::ApiCall(c) => names.insert(c.event_name.clone()),
                SignalKind::ConsoleSignIn { .. } => names.insert("ConsoleLogin".to_owned()),
                other => panic!("unexpected {other:?}"),
            };
        }
    }
    assert_eq!((files, records), (35, 310));
    for tell in [
        "StopLogging",
        "DeleteTrail",
        "CreateAccessKey",
        "AttachUserPolicy",
        "ConsoleLogin",
        "ModifySnapshotAttribute",
    ] {
        assert!(names.contains(tell), "{tell} missing");
    }
}

/// How many Stratus techniques the sensitive-call table recognises (at least one record of the
/// technique is classed under some tactic). A measurement of coverage, not a tuning target: the
/// table lists calls from AWS's and MITRE's documentation.
#[test]
fn sensitive_call_coverage_of_stratus_techniques() {
    use vigil_core::features::identity::sensitive;
    let dir = format!("{}/../../data/stratus", env!("CARGO_MANIFEST_DIR"));
    let (mut techniques, mut recognised) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        techniques += 1;
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let hit = list.iter().any(|r| {
            let s = events::normalise_cloudtrail_record(r).unwrap();
            match &s.kind {
                SignalKind::ApiCall(c) => sensitive(c).is_some(),
                SignalKind::ConsoleSignIn { mfa_used, .. } => *mfa_used == Some(false),
                _ => false,
            }
        });
        if hit {
            recognised += 1;
        } else {
            eprintln!("not recognised: {}", path.display());
        }
    }
    eprintln!("sensitive-call coverage: {recognised}/{techniques} Stratus techniques");
    assert!(
        recognised * 10 >= techniques * 8,
        "{recognised}/{techniques}"
    );
}

/// A Security Hub finding of another product, as a finding of its own source: its product in
/// its type, its ASFF type read as a threat purpose, its severity on GuardDuty's scale.
#[test]
fn security_hub_findings_of_other_products_and_never_vigils_own() {
    let s = one(
        "sources/securityhub-findings-imported.json",
        Source::SecurityHub,
    );
    assert_eq!(
        (s.resource.kind, s.resource.id.as_str()),
        (ResourceKind::Instance, "i-99999999")
    );
    let SignalKind::Finding {
        finding_type,
        severity,
        archived,
        resource_role,
        ..
    } = &s.kind
    else {
        panic!()
    };
    assert_eq!(finding_type, "Backdoor:SecurityHub/GuardDuty");
    assert_eq!((*severity, *archived), (8.0, false));
    assert_eq!(
        resource_role.as_deref(),
        None,
        "ASFF does not say who acted"
    );
    assert_eq!(events::securityhub_product(&s), Some("GuardDuty"));
    assert_eq!(
        s.resource.region.as_deref(),
        Some("us-east-1"),
        "its resource's Region"
    );

    let base = String::from_utf8(common::fixture_bytes(
        "sources/securityhub-findings-imported.json",
    ))
    .unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&base).unwrap();
        f(&mut v["detail"]["findings"][0]);
        events::normalise(&events::parse_envelope(v.to_string().as_bytes()).unwrap())
    };
    // Vigil's own findings (the account's own product) are never read back.
    let own = edit(&|f| {
        f["ProductArn"] =
            "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default".into();
    })
    .unwrap();
    assert_eq!(own, Normalised::Ignored(events::Ignored::OwnFinding));
    // Aggregated from another Region: the resource says where it is; a Region that is no
    // Region name is not kept.
    for (region, kept) in [("eu-west-1", Some("eu-west-1")), ("../x", None)] {
        let Normalised::Signals(from) =
            edit(&|f| f["Resources"][0]["Region"] = region.into()).unwrap()
        else {
            panic!()
        };
        assert_eq!(from[0].resource.region.as_deref(), kept, "{region}");
    }
    // Resolved or suppressed by people: archived.
    let Normalised::Signals(resolved) =
        edit(&|f| f["Workflow"]["Status"] = "RESOLVED".into()).unwrap()
    else {
        panic!()
    };
    assert!(matches!(
        resolved[0].kind,
        SignalKind::Finding { archived: true, .. }
    ));
    // A posture check is no threat purpose; a label alone gives the band's severity.
    let Normalised::Signals(check) = edit(&|f| {
        f["Types"] = serde_json::json!(["Software and Configuration Checks/Vulnerabilities/CVE"]);
        f["Severity"] = serde_json::json!({"Label": "CRITICAL"});
    })
    .unwrap() else {
        panic!()
    };
    assert!(matches!(
        &check[0].kind,
        SignalKind::Finding { finding_type, severity, .. }
            if finding_type == "Policy:SecurityHub/GuardDuty" && *severity == 9.0
    ));
    // Hostile or malformed: a typed error, no signal.
    for bad in [
        &(|f: &mut serde_json::Value| {
            f["Resources"][0]["Id"] = "arn:aws:ec2:::instance/i-1;reboot".into()
        }) as &dyn Fn(&mut serde_json::Value),
        &|f| f["AwsAccountId"] = "12345678901$(x)".into(),
        &|f| f["Severity"] = serde_json::json!({"Normalized": 1000}),
        &|f| f["ProductName"] = "<script>".into(),
        &|f| {
            f.as_object_mut().unwrap().remove("ProductArn");
        },
    ] {
        assert!(edit(bad).is_err());
    }
}
