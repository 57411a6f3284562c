//! The SAM template against the sources it copies: its SSM documents are the ones in
//! `infra/ssm/`, and the remediate function is told their names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_norway::Value;

fn read(path: &str) -> Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    serde_norway::from_str(&std::fs::read_to_string(&full).unwrap())
        .unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn check(resource: &str, source: &str, document_type: &str) {
    check_in("template.yaml", resource, source, document_type);
}

fn check_in(stack: &str, resource: &str, source: &str, document_type: &str) {
    let template = read(stack);
    let r = &template["Resources"][resource]["Properties"];
    assert_eq!(r["DocumentType"], Value::from(document_type), "{resource}");
    assert_eq!(
        r["Content"],
        read(source),
        "{stack}: {resource} differs from {source}: copy the file into the template"
    );
}

#[test]
fn the_templates_documents_are_the_infra_sources() {
    check(
        "RestartServiceDocument",
        "infra/ssm/restart-service.yaml",
        "Command",
    );
    check(
        "DeactivateAccessKeyDocument",
        "infra/ssm/deactivate-access-key.yaml",
        "Automation",
    );
    check(
        "ContainInstanceDocument",
        "infra/ssm/contain-instance.yaml",
        "Automation",
    );
    check(
        "ReleaseInstanceDocument",
        "infra/ssm/release-instance.yaml",
        "Automation",
    );
    check(
        "ReactivateAccessKeyDocument",
        "infra/ssm/reactivate-access-key.yaml",
        "Automation",
    );
    // The collector, in both stacks: each account installs it from its own.
    for stack in ["template.yaml", "infra/member.yaml"] {
        check_in(
            stack,
            "TelemetryLinesDocument",
            "infra/ssm/telemetry-lines.yaml",
            "Command",
        );
    }
}

/// The collector writes where the pull reads: the document's default group is both stacks'
/// default, and its pattern theirs.
#[test]
fn the_collector_writes_to_the_group_the_pull_reads() {
    let doc = read("infra/ssm/telemetry-lines.yaml");
    for stack in ["template.yaml", "infra/member.yaml"] {
        let p = &read(stack)["Parameters"]["TelemetryLogGroupName"];
        assert_eq!(
            p["Default"], doc["parameters"]["LogGroupName"]["default"],
            "{stack}"
        );
        assert_eq!(
            p["AllowedPattern"], doc["parameters"]["LogGroupName"]["allowedPattern"],
            "{stack}"
        );
    }
}

#[test]
fn every_document_parameter_has_an_allowed_pattern() {
    for source in [
        "infra/ssm/restart-service.yaml",
        "infra/ssm/deactivate-access-key.yaml",
        "infra/ssm/contain-instance.yaml",
        "infra/ssm/release-instance.yaml",
        "infra/ssm/reactivate-access-key.yaml",
        "infra/ssm/telemetry-lines.yaml",
    ] {
        let doc = read(source);
        let params = doc["parameters"].as_mapping().unwrap();
        assert!(!params.is_empty());
        for (name, p) in params {
            assert!(
                p["allowedPattern"].as_str().is_some_and(|s| !s.is_empty()),
                "{source}: parameter {name:?} has no allowedPattern"
            );
        }
    }
    // The restart document's pattern is the one Vigil checks names against before sending.
    let doc = read("infra/ssm/restart-service.yaml");
    assert_eq!(
        doc["parameters"]["ServiceName"]["allowedPattern"],
        Value::from(vigil_core::names::SERVICE_NAME_PATTERN)
    );
}

/// The longest a Task can take with its retries: every attempt to its timeout, every backoff
/// at its longest.
fn worst_case_seconds(state: &serde_json::Value) -> f64 {
    let timeout = state["TimeoutSeconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("a Task without TimeoutSeconds: {state}"));
    let retries = state["Retry"].as_array().cloned().unwrap_or_default();
    let mut total = timeout;
    for r in retries {
        let (interval, rate) = (
            r["IntervalSeconds"].as_f64().unwrap_or(1.0),
            r["BackoffRate"].as_f64().unwrap_or(2.0),
        );
        for k in 0..r["MaxAttempts"].as_i64().unwrap_or(3) {
            total += timeout + interval * rate.powi(i32::try_from(k).unwrap());
        }
    }
    total
}

fn tasks(states: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = vec![];
    for state in states.as_object().unwrap().values() {
        match state["Type"].as_str() {
            Some("Task") => out.push(state.clone()),
            Some("Map") => out.extend(tasks(&state["ItemProcessor"]["States"])),
            _ => {}
        }
    }
    out
}

fn asl(path: &str) -> serde_json::Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

#[test]
fn the_express_pipeline_ends_inside_five_minutes() {
    let machine = asl("infra/statemachine.asl.json");
    let limit = machine["TimeoutSeconds"]
        .as_f64()
        .expect("a workflow timeout");
    assert!(limit < 300.0, "Express workflows end at 300 s");
    // Every task on the way, each at its worst (the failure report excepted: it runs instead).
    let total: f64 = tasks(&machine["States"])
        .iter()
        .filter(|t| t["Resource"] != "arn:aws:states:::sns:publish")
        .map(worst_case_seconds)
        .sum();
    assert!(total < limit, "worst case {total} s, limit {limit} s");
}

#[test]
fn no_workflow_task_gives_up_on_a_function_still_running() {
    // A state that times out before its function would retry while the first attempt still
    // acts: each Lambda task waits longer than its function may run.
    let template = read("template.yaml");
    let globals = template["Globals"]["Function"]["Timeout"].as_i64().unwrap();
    for (path, functions) in [
        (
            "infra/statemachine.asl.json",
            &["Ingest", "Score", "Decide"][..],
        ),
        ("infra/remediation.asl.json", &["Remediate"][..]),
    ] {
        let machine = asl(path);
        for name in functions {
            let state = &machine["States"][*name];
            let function = format!("{name}Function");
            let timeout = template["Resources"][function.as_str()]["Properties"]["Timeout"]
                .as_i64()
                .unwrap_or(globals);
            let waits = state["TimeoutSeconds"].as_i64().unwrap();
            assert!(
                waits > timeout,
                "{path} {name}: waits {waits} s, runs {timeout} s"
            );
        }
    }
}

#[test]
fn changes_to_the_policy_rules_and_kill_switch_are_always_told() {
    let template = read("template.yaml");
    let rule = &template["Resources"]["ControlParameterChangeRule"];
    assert_eq!(rule["Type"], Value::from("AWS::Events::Rule"));
    let pattern = &rule["Properties"]["EventPattern"];
    // The event SSM sends on a change, in its documented shape, matches the pattern's fixed
    // parts, and carries the fields the pattern and the message read.
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../fixtures/events/sources/ssm-parameter-change.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        pattern["source"][0],
        Value::from(event["source"].as_str().unwrap())
    );
    assert_eq!(
        pattern["detail-type"][0],
        Value::from(event["detail-type"].as_str().unwrap())
    );
    for field in ["name", "operation"] {
        assert!(event["detail"][field].is_string(), "{field}");
    }
    // Every parameter that steers Vigil, by its logical id: whatever the stack is called.
    let names: Vec<String> = pattern["detail"]["name"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| serde_norway::to_string(v).unwrap().trim().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "!Ref PolicyOverride",
            "!Ref RulesOverride",
            "!Ref KillSwitch"
        ]
    );
    // Told to the people who get Vigil's alerts, naming the parameter and what was done.
    let target = &rule["Properties"]["Targets"][0];
    assert_eq!(
        serde_norway::to_string(&target["Arn"]).unwrap().trim(),
        "!Ref AlertTopic"
    );
    let transformer = &target["InputTransformer"];
    assert_eq!(
        transformer["InputPathsMap"]["name"],
        Value::from("$.detail.name")
    );
    let text = transformer["InputTemplate"].as_str().unwrap();
    assert!(
        text.contains("<name>") && text.contains("<operation>"),
        "{text}"
    );
}

#[test]
fn queue_imports_that_fail_are_counted_from_both_logs_and_told() {
    let template = read("template.yaml");
    let r = &template["Resources"];
    let code = std::fs::read_to_string(format!(
        "{}/../shared/handlers/src/remediate/notification.rs",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let fields = ["vigil_findings_failed", "vigil_ops_items_failed"];
    for field in fields {
        assert!(
            code.contains(&format!("{field} = 1")),
            "{field} is no longer logged"
        );
    }
    // remediate and approve both tell people (approve through the same path).
    for (function, log_group) in [
        ("Remediate", "RemediateLogGroup"),
        ("Approve", "ApproveLogGroup"),
    ] {
        let filter = &r[format!("QueueImportsFailed{function}Metric")]["Properties"];
        let pattern = filter["FilterPattern"].as_str().unwrap();
        for field in fields {
            assert!(
                pattern.contains(&format!("$.fields.{field} = 1")),
                "{pattern}"
            );
        }
        assert_eq!(
            serde_norway::to_string(&filter["LogGroupName"])
                .unwrap()
                .trim(),
            format!("!Ref {log_group}")
        );
        assert_eq!(
            filter["MetricTransformations"][0]["MetricName"],
            Value::from("QueueImportsFailed")
        );
    }
    let alarm = &r["QueueImportsFailedAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"], Value::from("QueueImportsFailed"));
    assert_eq!(
        serde_norway::to_string(&alarm["AlarmActions"][0])
            .unwrap()
            .trim(),
        "!Ref AlertTopic"
    );
}

#[test]
fn refused_events_are_counted_and_told_once_per_burst() {
    let template = read("template.yaml");
    let r = &template["Resources"];
    // (what is refused, where the field is logged, its log group)
    for (name, field, source, log_group) in [
        (
            "Events",
            "vigil_refused_events",
            "functions/ingest/src/main.rs",
            "IngestLogGroup",
        ),
        (
            "Approvals",
            "vigil_refused_approvals",
            "shared/handlers/src/gate/mod.rs",
            "GateLogGroup",
        ),
    ] {
        // The field logged on a refusal is the one the metric filter counts, in that log.
        let filter = &r[format!("Refused{name}Metric")]["Properties"];
        assert_eq!(
            filter["FilterPattern"].as_str().unwrap(),
            format!("{{ $.fields.{field} = 1 }}")
        );
        assert_eq!(
            serde_norway::to_string(&filter["LogGroupName"])
                .unwrap()
                .trim(),
            format!("!Ref {log_group}")
        );
        let code =
            std::fs::read_to_string(format!("{}/../{source}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(
            code.contains(&format!("{field} = 1")),
            "{source} no longer logs {field}"
        );
        // One alarm on the count, to the alert topic: an email when refusals start, not per
        // refusal.
        let alarm = &r[format!("Refused{name}Alarm")]["Properties"];
        assert_eq!(alarm["MetricName"], Value::from(format!("Refused{name}")));
        assert_eq!(alarm["Namespace"], Value::from("Vigil"));
        assert_eq!(
            serde_norway::to_string(&alarm["AlarmActions"][0])
                .unwrap()
                .trim(),
            "!Ref AlertTopic"
        );
    }
}

/// What the functions emit: the EMF documents of the real handlers' outputs (the in-memory
/// pipeline on real-format events: a scheduled pull, a CPU alarm replaced, another while the
/// kill switch is engaged, a mining finding contained, one an outsider could cause asked
/// about), parsed back as CloudWatch reads them. Metric name -> its dimension-name sets.
fn emitted() -> std::collections::BTreeMap<String, std::collections::BTreeSet<Vec<String>>> {
    use vigil_core::domain::Mode;
    use vigil_core::names::{GroupName, InstanceId};
    use vigil_core::telemetry;
    let mut pipeline = vigil_lab::pipeline::Pipeline::new(
        vigil_core::models::Models::bundled().unwrap(),
        vigil_core::policy::Policy::bundled().unwrap(),
        Mode::Enforce,
    );
    pipeline.remediate.verify_attempts = 2;
    let ids = |names: &[&str]| -> Vec<InstanceId> {
        names
            .iter()
            .map(|n| InstanceId::parse(n).unwrap())
            .collect()
    };
    pipeline.fleet.add_group(
        &GroupName::parse("web-prod").unwrap(),
        1,
        8,
        &ids(&[
            "i-12345678901234567",
            "i-b0000001",
            "i-b0000002",
            "i-b0000003",
        ]),
    );
    pipeline.fleet.add_group(
        &GroupName::parse("shop-prod").unwrap(),
        1,
        8,
        &ids(&["i-99999999", "i-10000001", "i-10000002", "i-10000003"]),
    );
    let fixture = |name: &str| {
        let path = format!("{}/../fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap()).unwrap()
    };
    let mut again = fixture("alarm-cpu-high.json");
    again["id"] = "a-second-delivery-of-another-alarm".into();
    let mut outsider = fixture("sources/guardduty-crypto-instance.json");
    outsider["id"] = "a-finding-without-its-role".into();
    outsider["detail"]["service"]["resourceRole"] = serde_json::Value::Null;
    let schedule = serde_json::json!({
        "version": "0", "id": "5e0c7c9a-8d2b-4f5e-9a61-0c3f7e2b1d4a",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/vigil-MetricPull"],
        "detail": {}
    });
    let events = [
        schedule,
        fixture("alarm-cpu-high.json"),
        again,
        fixture("sources/guardduty-crypto-instance.json"),
        outsider,
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let now = chrono::Utc::now();
    let mut metrics = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        // The second alarm arrives while the kill switch is engaged: its action is held.
        pipeline.state.set_kill_switch(i == 2);
        let envelope =
            vigil_core::events::parse_envelope(&serde_json::to_vec(&event).unwrap()).unwrap();
        // As the functions' mains do, stage by stage.
        let observed = rt.block_on(pipeline.ingest(&envelope)).unwrap();
        metrics.extend(telemetry::event_in(
            &envelope.source,
            &envelope.detail_type,
            observed.ignored.is_some(),
        ));
        let decided = rt
            .block_on(pipeline.decide(observed, "delivery", now))
            .unwrap();
        metrics.extend(telemetry::decided(&decided.decisions));
        for d in decided.decisions {
            let outcome = rt.block_on(pipeline.remediate(&d, now)).unwrap();
            metrics.extend(telemetry::remediated(&d, &outcome));
        }
    }
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<Vec<String>>> =
        Default::default();
    for doc in telemetry::emf(&metrics, now) {
        let doc: serde_json::Value = serde_json::from_str(&doc.to_string()).unwrap();
        for spec in doc["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            assert_eq!(spec["Namespace"], "Vigil");
            for m in spec["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(doc[name].is_number(), "{doc}");
                for set in spec["Dimensions"].as_array().unwrap() {
                    let mut dims: Vec<String> = set
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_str().unwrap().to_owned())
                        .collect();
                    for d in &dims {
                        assert!(doc[d.as_str()].is_string(), "{d} has no value: {doc}");
                    }
                    dims.sort();
                    out.entry(name.to_owned()).or_default().insert(dims);
                }
            }
        }
    }
    out
}

/// A metric a widget or an alarm reads: its name and dimensions (with the value when fixed).
type Read = (String, Vec<(String, Option<String>)>);

/// The Vigil metrics the dashboard's widgets read: plain metric rows, and SEARCH expressions
/// (`{Vigil,Dim,...} MetricName="X"`).
fn dashboard_reads(body: &str) -> Vec<Read> {
    let mut text = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("${") {
        text.push_str(&rest[..i]);
        text.push('x');
        rest = &rest[i + rest[i..].find('}').unwrap() + 1..];
    }
    text.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            if let Some(expr) = row[0].get("expression").and_then(|e| e.as_str()) {
                let Some(schema) = expr.split_once("'{Vigil").map(|(_, s)| s) else {
                    continue;
                };
                let (dims, after) = schema.split_once('}').unwrap();
                let name = after.split('"').nth(1).unwrap();
                let dims = dims
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| (d.to_owned(), None))
                    .collect();
                out.push((name.to_owned(), dims));
            } else if row[0] == "Vigil" {
                let strings: Vec<String> = row
                    .iter()
                    .skip(1)
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                let dims = strings[1..]
                    .chunks(2)
                    .map(|p| (p[0].clone(), p.get(1).cloned()))
                    .collect();
                out.push((strings[0].clone(), dims));
            }
        }
    }
    out
}

/// Every Vigil metric the dashboard and the alarms read is one the functions emit, with the
/// same dimensions (each fixed value one the code can give), or one a metric filter of the
/// stack counts.
#[test]
fn the_dashboard_and_alarms_read_metrics_the_functions_emit() {
    let mut emitted = emitted();
    // And what the remediation and pull workflows count themselves (in Vigil's namespace, no
    // dimensions).
    for name in workflow_metrics() {
        emitted.entry(name).or_default().insert(Vec::new());
    }
    let template = read("template.yaml");
    let r = template["Resources"].as_mapping().unwrap();
    let of_type = |t: &'static str| {
        r.iter()
            .filter(move |(_, v)| v["Type"].as_str() == Some(t))
            .map(|(_, v)| &v["Properties"])
    };
    let filters: Vec<String> = of_type("AWS::Logs::MetricFilter")
        .flat_map(|p| p["MetricTransformations"].as_sequence().unwrap().iter())
        .map(|t| t["MetricName"].as_str().unwrap().to_owned())
        .collect();
    let mut reads: Vec<Read> = of_type("AWS::CloudWatch::Alarm")
        .filter(|p| p["Namespace"].as_str() == Some("Vigil"))
        .map(|p| {
            let dims = p["Dimensions"]
                .as_sequence()
                .map(|ds| {
                    ds.iter()
                        .map(|d| {
                            (
                                d["Name"].as_str().unwrap().to_owned(),
                                d["Value"].as_str().map(str::to_owned),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (p["MetricName"].as_str().unwrap().to_owned(), dims)
        })
        .collect();
    let body = of_type("AWS::CloudWatch::Dashboard").next().unwrap()["DashboardBody"].clone();
    let body = match body {
        Value::Tagged(t) => t.value.as_str().unwrap().to_owned(),
        other => other.as_str().unwrap().to_owned(),
    };
    reads.extend(dashboard_reads(&body));
    let from_emf = reads
        .iter()
        .filter(|(name, _)| !filters.contains(name))
        .count();
    assert!(
        from_emf >= 8,
        "the test reads the widgets and alarms: {reads:?}"
    );
    for (name, dims) in &reads {
        if filters.contains(name) {
            assert!(
                dims.is_empty(),
                "{name}: a metric filter's metric has no dimensions"
            );
            continue;
        }
        let sets = emitted
            .get(name)
            .unwrap_or_else(|| panic!("{name} is read but never emitted: {emitted:?}"));
        let mut names: Vec<String> = dims.iter().map(|(d, _)| d.clone()).collect();
        names.sort();
        assert!(
            sets.contains(&names),
            "{name} is read with dimensions {names:?}; it is emitted with {sets:?}"
        );
        for (d, v) in dims {
            if let Some(v) = v {
                assert!(
                    vigil_core::telemetry::values_of(d).contains(&v.as_str()),
                    "{name}: {d}={v} is not a value the code gives"
                );
            }
        }
    }
}

/// EventBridge's quota on one rule's pattern (characters; adjustable, but not by the stack).
const MAX_PATTERN_CHARS: usize = 2048;

#[test]
fn the_event_rules_deliver_what_the_detection_rules_select() {
    use vigil_lab::eventbridge;
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let rules = eventbridge::rules_of(&text, "PipelineStateMachine").unwrap();
    let pack = vigil_rules::Pack::bundled().unwrap();
    let mut undelivered = Vec::new();
    for rule in pack.rules() {
        let examples = rule.examples(true);
        assert!(
            !examples.is_empty(),
            "{} has no matching test event",
            rule.name
        );
        for record in examples {
            let event = eventbridge::envelope(&record);
            if eventbridge::delivered_by(&rules, &event).is_none() {
                undelivered.push(format!(
                    "{}: {} {}",
                    rule.name, record["eventSource"], record["eventName"]
                ));
            }
        }
    }
    assert!(
        undelivered.is_empty(),
        "no event rule of the template delivers what these detection rules select \
         (add what `vigil rules delivery` lists):\n{}",
        undelivered.join("\n")
    );
    // The derivation itself: every service, read and principal type the rules need is named.
    let d = vigil_rules::delivery::Delivery::of(pack);
    let patterns =
        serde_json::to_string(&rules.iter().map(|r| &r.pattern).collect::<Vec<_>>()).unwrap();
    for needed in d
        .write_sources
        .iter()
        .chain(&d.read_names)
        .chain(&d.identity_types)
        .chain(&d.error_codes)
    {
        assert!(
            patterns.contains(&format!("\"{needed}\"")),
            "no pattern names {needed}"
        );
    }
    // Each pattern within EventBridge's quota, with the stack's role ARNs at a realistic length.
    let arn = format!(
        "\"arn:aws:iam::123456789012:role/vigil/{0}/{0}-RemediateFunctionRole-ABCDEFGHIJKL\"",
        "a".repeat(30)
    );
    for r in &rules {
        let json = serde_json::to_string(&r.pattern).unwrap();
        let mut expanded = String::new();
        let mut rest = json.as_str();
        while let Some(i) = rest.find("\"!GetAtt:") {
            expanded.push_str(&rest[..i]);
            let end = rest[i + 1..]
                .find("\\\"\"")
                .map_or(rest.len(), |e| i + 1 + e + 3);
            expanded.push_str(&arn);
            rest = &rest[end..];
        }
        expanded.push_str(rest);
        assert!(
            expanded.len() <= MAX_PATTERN_CHARS,
            "{}: pattern of {} characters, above EventBridge's {MAX_PATTERN_CHARS}",
            r.name,
            expanded.len()
        );
    }
}

#[test]
fn chat_channels_exist_only_when_asked_and_may_do_nothing() {
    let template = read("template.yaml");
    let r = &template["Resources"];
    let tagged = |v: &Value| serde_norway::to_string(v).unwrap().trim().to_owned();
    // Created only when the operator gives the channel's ids (the defaults are empty).
    for (resource, condition) in [
        ("ChatChannelRole", "AnyChat"),
        ("SlackChannel", "SlackChat"),
        ("TeamsChannel", "TeamsChat"),
    ] {
        assert_eq!(
            r[resource]["Condition"],
            Value::from(condition),
            "{resource}"
        );
    }
    for p in [
        "ChatSlackWorkspaceId",
        "ChatSlackChannelId",
        "ChatTeamsTenantId",
        "ChatTeamsTeamId",
        "ChatTeamsChannelId",
    ] {
        assert_eq!(template["Parameters"][p]["Default"], Value::from(""), "{p}");
    }
    // The channel's role grants nothing: Vigil tells the channel and takes no commands.
    let role = &r["ChatChannelRole"]["Properties"];
    assert!(role["Policies"].is_null() && role["ManagedPolicyArns"].is_null());
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        Value::from("chatbot.amazonaws.com")
    );
    for channel in ["SlackChannel", "TeamsChannel"] {
        let p = &r[channel]["Properties"];
        let topics: Vec<String> = p["SnsTopicArns"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(tagged)
            .collect();
        assert_eq!(topics, ["!Ref AlertTopic"], "{channel}");
        assert_eq!(tagged(&p["IamRoleArn"]), "!GetAtt ChatChannelRole.Arn");
        assert_eq!(p["UserRoleRequired"], Value::from(false));
    }
}

/// The metrics the remediation and pull workflows put (`cloudwatch:putMetricData` tasks), by
/// name.
fn workflow_metrics() -> Vec<String> {
    ["infra/remediation.asl.json", "infra/pull.asl.json"]
        .iter()
        .flat_map(|path| tasks(&asl(path)["States"]))
        .filter(|t| t["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData")
        .inspect(|t| assert_eq!(t["Parameters"]["Namespace"], "Vigil"))
        .flat_map(|t| t["Parameters"]["MetricData"].as_array().unwrap().clone())
        .map(|m| m["MetricName"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_approval_nobody_answers_is_counted_and_told_when_its_links_expire() {
    use vigil_core::domain::{OutcomeStatus, Tier};
    let machine = asl("infra/remediation.asl.json");
    let states = &machine["States"];
    // remediate's outcome is kept beside the decision, in the fields the choice reads.
    let remediate = &states["Remediate"];
    assert_eq!(remediate["ResultPath"], "$.outcome");
    assert_eq!(remediate["ResultSelector"]["status.$"], "$.Payload.status");
    assert_eq!(remediate["Next"], "WaitsForAPerson");
    // An approval asked, nothing done: the decision's tier and the outcome's status as serde
    // writes them.
    let choice = &states["WaitsForAPerson"]["Choices"][0];
    let tier = serde_json::to_value(Tier::Approval).unwrap();
    let status = serde_json::to_value(OutcomeStatus::NotActed).unwrap();
    assert_eq!(choice["And"][0]["Variable"], "$.tier");
    assert_eq!(choice["And"][0]["StringEquals"], tier);
    assert_eq!(choice["And"][1]["Variable"], "$.outcome.status");
    assert_eq!(choice["And"][1]["StringEquals"], status);
    // It waits until its links and votes have expired, not much longer.
    let wait = &states[choice["Next"].as_str().unwrap()];
    let seconds = wait["Seconds"].as_i64().unwrap();
    let expiry = vigil_core::approval::LINK_HOURS * 3600;
    assert!((expiry..=expiry + 600).contains(&seconds), "{seconds}");
    // Then reads the verdict's claim, by the key the approve function claims.
    let get = &states[wait["Next"].as_str().unwrap()];
    assert_eq!(get["Resource"], "arn:aws:states:::dynamodb:getItem");
    let key = get["Parameters"]["Key"]["pk"]["S.$"].as_str().unwrap();
    let format = vigil_core::keys::approval_decided("{}");
    assert_eq!(key, format!("States.Format('{format}', $.id)"));
    assert_eq!(get["Parameters"]["ConsistentRead"], true);
    // Unanswered: counted (which the alarm reads) and told; answered: done.
    let answered = &states[get["Next"].as_str().unwrap()];
    assert_eq!(answered["Choices"][0]["Variable"], "$.answer.Item");
    assert_eq!(answered["Choices"][0]["Next"], "Done");
    let count = &states[answered["Default"].as_str().unwrap()];
    assert_eq!(
        count["Parameters"]["MetricData"][0]["MetricName"],
        "ApprovalsExpired"
    );
    let tell = &states[count["Next"].as_str().unwrap()];
    assert_eq!(tell["Resource"], "arn:aws:states:::sns:publish");
    assert!(
        tell["Parameters"]["Message.$"]
            .as_str()
            .unwrap()
            .contains("$.id")
    );
    // The workflow outlives the wait with every task at its worst.
    let worst: f64 = tasks(states).iter().map(worst_case_seconds).sum();
    let limit = machine["TimeoutSeconds"].as_f64().unwrap();
    assert!(
        seconds as f64 + worst < limit,
        "{seconds} + {worst} >= {limit}"
    );
    // The template gives the table and alarms on the count.
    let template = read("template.yaml");
    let r = &template["Resources"];
    let table =
        &r["RemediationStateMachine"]["Properties"]["DefinitionSubstitutions"]["StateTableName"];
    assert_eq!(
        serde_norway::to_string(table).unwrap().trim(),
        "!Ref StateTable"
    );
    assert_eq!(
        r["ApprovalsExpiredAlarm"]["Properties"]["MetricName"],
        Value::from("ApprovalsExpired")
    );
    assert_eq!(
        workflow_metrics(),
        ["ApprovalsExpired", "PullInstancesNotScored"]
    );
}

#[test]
fn other_products_findings_come_only_from_the_products_the_stack_names() {
    let template = read("template.yaml");
    let rule = &template["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["SecurityHubFindingsIn"]
        ["Properties"];
    let text = |v: &Value| serde_norway::to_string(v).unwrap();
    // Off unless the operator names products; their names are the pattern's.
    assert!(text(&rule["State"]).contains("TakesSecurityHubFindings"));
    let products = text(&rule["Pattern"]["detail"]["findings"]["ProductName"]);
    assert!(
        products.contains("SecurityHubInputProducts") && products.contains("!Split"),
        "{products}"
    );
    assert_eq!(
        template["Parameters"]["SecurityHubInputProducts"]["Default"],
        Value::from("")
    );
    // The fixture, a real-format event, matches the rule's fixed parts.
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../fixtures/events/sources/securityhub-findings-imported.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        rule["Pattern"]["source"][0],
        Value::from(event["source"].as_str().unwrap())
    );
    assert_eq!(
        rule["Pattern"]["detail-type"][0],
        Value::from(event["detail-type"].as_str().unwrap())
    );
    let finding = &event["detail"]["findings"][0];
    assert_eq!(
        rule["Pattern"]["detail"]["findings"]["RecordState"][0],
        Value::from(finding["RecordState"].as_str().unwrap())
    );
    // Ingest is told the same names.
    let env = &template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        text(&env["VIGIL_SECURITY_HUB_PRODUCTS"]).trim(),
        "!Ref SecurityHubInputProducts"
    );
}
