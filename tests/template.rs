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
    let template = read("template.yaml");
    let r = &template["Resources"][resource]["Properties"];
    assert_eq!(r["DocumentType"], Value::from(document_type), "{resource}");
    assert_eq!(
        r["Content"],
        read(source),
        "{resource} differs from {source}: copy the file into the template"
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
}

#[test]
fn every_document_parameter_has_an_allowed_pattern() {
    for source in [
        "infra/ssm/restart-service.yaml",
        "infra/ssm/deactivate-access-key.yaml",
        "infra/ssm/contain-instance.yaml",
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
fn changes_to_the_policy_and_kill_switch_are_always_told() {
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
    // Both parameters, by their logical ids: whatever the stack is called.
    let names: Vec<String> = pattern["detail"]["name"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| serde_norway::to_string(v).unwrap().trim().to_owned())
        .collect();
    assert_eq!(names, ["!Ref PolicyOverride", "!Ref KillSwitch"]);
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
