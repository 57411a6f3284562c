//! The pull workflow (`infra/pull.asl.json`) against the code and the template. Step Functions
//! is not emulated here (and a Distributed Map's children are Lambda functions, which the
//! emulator runs only in Docker): the definition is checked against what the code reads and
//! writes, and the fan-out itself runs on in-memory ports (`shared/lab/tests/scale.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use vigil_core::metrics::fanout;

fn asl(path: &str) -> Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

fn template() -> serde_norway::Value {
    let full = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_norway::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

fn text(v: &serde_norway::Value) -> String {
    serde_norway::to_string(v).unwrap()
}

/// Replaces every `"<key>.$": "<path>"` of a Parameters block by the value at that path of
/// `input` (enough of Step Functions' JSONPath for these definitions: `$.a.b`).
fn resolve(parameters: &Value, input: &Value) -> Value {
    match parameters {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.strip_suffix(".$"), v.as_str()) {
                    (Some(key), Some(path)) => {
                        let mut at = input;
                        for part in path.trim_start_matches("$.").split('.') {
                            at = &at[part];
                        }
                        (key.to_owned(), at.clone())
                    }
                    _ => (k.clone(), resolve(v, input)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn each_batch_runs_the_pipelines_own_stages() {
    let pipeline = asl("infra/statemachine.asl.json");
    let pull = asl("infra/pull.asl.json");
    let child = &pull["States"]["Pull"]["ItemProcessor"];
    assert_eq!(child["ProcessorConfig"]["Mode"], "DISTRIBUTED");
    assert_eq!(child["ProcessorConfig"]["ExecutionType"], "EXPRESS");
    assert_eq!(child["StartAt"], "Ingest");
    // Score, decide and the decisions' remediation are the pipeline's states, unchanged: a
    // change to one is a change to both.
    for state in ["AnythingObserved", "Score", "Decide", "Remediate"] {
        assert_eq!(
            child["States"][state], pipeline["States"][state],
            "{state} differs from infra/statemachine.asl.json"
        );
    }
    // Ingest is too, but for what it is given: the batch.
    let mut ingest = child["States"]["Ingest"].clone();
    let mut theirs = pipeline["States"]["Ingest"].clone();
    ingest["Parameters"]
        .as_object_mut()
        .unwrap()
        .remove("Payload");
    theirs["Parameters"]
        .as_object_mut()
        .unwrap()
        .remove("Payload.$");
    assert_eq!(ingest, theirs);
    // A failed batch fails its child only (counted by the run, reported once by the pull).
    assert_eq!(child["States"]["ReportFailure"]["Type"], "Fail");
}

#[test]
fn the_plan_and_the_batches_are_read_as_the_code_writes_them() {
    let pull = asl("infra/pull.asl.json");
    let states = &pull["States"];
    assert_eq!(pull["StartAt"], "Plan");
    // The plan is asked of ingest with the schedule's event, as `Request::parse` reads it.
    let plan = &states["Plan"];
    assert_eq!(plan["Parameters"]["FunctionName"], "${IngestFunctionArn}");
    let tick: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../fixtures/events/sources/aws_lambda_events/example-eventbridge-schedule.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    // The whole input (the schedule's event), as `$`.
    assert_eq!(plan["Parameters"]["Payload"], json!({ "plan.$": "$" }));
    assert!(matches!(
        vigil_handlers::ingest::Request::parse(json!({ "plan": tick })),
        Ok(vigil_handlers::ingest::Request::Plan(_))
    ));
    // What the plan answers, as serde writes it, is what the next states read.
    let at = chrono::DateTime::from_timestamp(1_764_583_200, 0).unwrap();
    let answer = serde_json::to_value(fanout::PullPlan {
        tick: "t-1".into(),
        at,
        key: fanout::plan_key("t-1", at),
        instances: 12,
        batches: 2,
        volumes_not_read: 0,
        too_heavy: 1,
        accounts_not_listed: 0,
    })
    .unwrap();
    assert_eq!(plan["OutputPath"], "$.Payload");
    let choice = &states["AnyInstances"]["Choices"][0];
    assert_eq!(choice["Variable"], "$.batches");
    assert!(answer["batches"].is_u64());
    assert_eq!(choice["Next"], "Pull");
    // No batch, but instances too heavy for one: still counted.
    let none = &states[states["AnyInstances"]["Default"].as_str().unwrap()];
    assert_eq!(none["Choices"][0]["Variable"], "$.too_heavy");
    assert!(answer["too_heavy"].is_u64());
    let map = &states["Pull"];
    let reader = resolve(&map["ItemReader"]["Parameters"], &answer);
    assert_eq!(reader["Key"], answer["key"]);
    assert_eq!(reader["Bucket"], "${PullBucketName}");
    assert_eq!(map["ItemReader"]["ReaderConfig"]["InputType"], "JSON");
    // The plan forms the batches (by weight, which ItemBatcher cannot): one per child.
    assert!(map.get("ItemBatcher").is_none());
    // A child's input, as the map's ItemSelector makes it from the plan's answer and one of
    // its items, becomes the batch ingest reads.
    let watched = |id: &str| vigil_core::metrics::WatchedInstance {
        instance: vigil_core::names::InstanceId::parse(id).unwrap(),
        group: Some(vigil_core::names::GroupName::parse("web").unwrap()),
        application: None,
        environment: None,
        tags: Default::default(),
        account: None,
    };
    let planned = fanout::batches(
        fanout::plan(
            &[
                watched("i-0123456789abcdef0"),
                watched("i-0123456789abcdef1"),
            ],
            &[],
        )
        .items,
    );
    let item = serde_json::to_value(&planned.batches[0]).unwrap();
    let selector = map["ItemSelector"].as_object().unwrap();
    let mut child_input = serde_json::Map::new();
    for (key, path) in selector {
        let key = key.strip_suffix(".$").unwrap();
        let path = path.as_str().unwrap();
        let value = match path.strip_prefix("$$.Map.Item.Value.") {
            Some(field) => item[field].clone(),
            None => answer[path.strip_prefix("$.").unwrap()].clone(),
        };
        child_input.insert(key.to_owned(), value);
    }
    let ingest = &map["ItemProcessor"]["States"]["Ingest"]["Parameters"]["Payload"];
    assert_eq!(ingest, &json!({ "batch.$": "$" }));
    let payload = json!({ "batch": child_input });
    match vigil_handlers::ingest::Request::parse(payload).unwrap() {
        vigil_handlers::ingest::Request::Batch(batch) => {
            assert_eq!(batch.tick, "t-1");
            assert_eq!(batch.at, at);
            assert_eq!(batch.items, planned.batches[0].items);
            assert_eq!(batch.check(), Ok(()));
        }
        other => panic!("not a batch: {other:?}"),
    }
    // Bounded, tolerant of a few failed batches, results kept in the bucket.
    let concurrency = map["MaxConcurrency"].as_u64().unwrap();
    assert!((1..=100).contains(&concurrency), "{concurrency}");
    assert!(map["ToleratedFailurePercentage"].as_u64().unwrap() < 50);
    assert_eq!(
        map["ResultWriter"]["Parameters"]["Bucket"],
        "${PullBucketName}"
    );
    assert_eq!(map["ResultWriter"]["Parameters"]["Prefix"], "pull-results");
}

#[test]
fn instances_a_pull_could_not_score_are_counted_and_alarmed() {
    let pull = asl("infra/pull.asl.json");
    let states = &pull["States"];
    assert_eq!(states["Pull"]["Next"], "Count");
    let count = &states["Count"];
    assert_eq!(
        count["Resource"],
        "arn:aws:states:::aws-sdk:sfn:describeMapRun"
    );
    assert_eq!(count["Parameters"]["MapRunArn.$"], "$.run.MapRunArn");
    assert_eq!(states["Pull"]["ResultPath"], "$.run");
    // Failed, timed out or aborted batches, and instances too heavy for any: not scored.
    let choice = &states["AllScored"]["Choices"][0];
    let read: Vec<&str> = choice["Or"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Variable"].as_str().unwrap())
        .collect();
    assert_eq!(
        read,
        [
            "$.counts.failed",
            "$.counts.timedOut",
            "$.counts.aborted",
            "$.too_heavy"
        ]
    );
    for (field, from) in [
        ("failed.$", "$.ItemCounts.Failed"),
        ("timedOut.$", "$.ItemCounts.TimedOut"),
        ("aborted.$", "$.ItemCounts.Aborted"),
    ] {
        assert_eq!(count["ResultSelector"][field], from);
    }
    let put = &states[choice["Next"].as_str().unwrap()];
    let metric = &put["Parameters"]["MetricData"][0];
    let value = metric["Value.$"].as_str().unwrap();
    for field in read {
        assert!(value.contains(field), "{value} counts {field}");
    }
    let heavy_only = &states["CountTooHeavy"];
    assert_eq!(heavy_only["ResultPath"], "$.counts");
    assert_eq!(heavy_only["Next"], choice["Next"]);
    assert_eq!(put["Parameters"]["Namespace"], "Vigil");
    assert_eq!(metric["MetricName"], "PullInstancesNotScored");
    let template = template();
    let alarm = &template["Resources"]["PullInstancesNotScoredAlarm"]["Properties"];
    assert_eq!(alarm["MetricName"].as_str(), Some("PullInstancesNotScored"));
    assert_eq!(alarm["Namespace"].as_str(), Some("Vigil"));
    // A map that failed as a whole, or a plan that did, is told.
    for state in ["Plan", "Pull", "Count", "CountNotScored"] {
        assert_eq!(
            states[state]["Catch"][0]["Next"], "ReportFailure",
            "{state}"
        );
    }
    assert_eq!(
        states["ReportFailure"]["Resource"],
        "arn:aws:states:::sns:publish"
    );
}

#[test]
fn the_schedule_starts_the_pull_and_only_the_pull() {
    let template = template();
    let resources = &template["Resources"];
    let pull = &resources["PullStateMachine"]["Properties"];
    assert_eq!(pull["Type"].as_str(), Some("STANDARD"));
    assert_eq!(pull["DefinitionUri"].as_str(), Some("infra/pull.asl.json"));
    assert_eq!(
        pull["Events"]["MetricPull"]["Type"].as_str(),
        Some("Schedule")
    );
    let pipeline = &resources["PipelineStateMachine"]["Properties"]["Events"];
    for (name, event) in pipeline.as_mapping().unwrap() {
        assert_ne!(event["Type"].as_str(), Some("Schedule"), "{name:?}");
    }
    // Every substitution the definition names is given, the bucket being the detector
    // bucket, whose lifecycle forgets plans and results.
    let definition = std::fs::read_to_string(format!(
        "{}/../infra/pull.asl.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let substitutions = pull["DefinitionSubstitutions"].as_mapping().unwrap();
    for piece in definition.split("${").skip(1) {
        let name = piece.split('}').next().unwrap();
        assert!(
            substitutions.contains_key(name),
            "{name} is not substituted"
        );
    }
    assert_eq!(
        text(&pull["DefinitionSubstitutions"]["PullBucketName"]).trim(),
        "!Ref DetectorStateBucket"
    );
    let rules =
        text(&resources["DetectorStateBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]);
    assert!(
        rules.contains("Prefix: pull/") && rules.contains("Prefix: pull-results/"),
        "{rules}"
    );
    // The workflow's name is the one its role names for its own children and map runs.
    assert_eq!(text(&pull["Name"]).trim(), "!Sub ${AWS::StackName}-pull");
    let policies = text(&pull["Policies"]);
    for resource in [
        ":stateMachine:${AWS::StackName}-pull",
        ":execution:${AWS::StackName}-pull/*",
        ":mapRun:${AWS::StackName}-pull/*",
    ] {
        assert!(policies.contains(resource), "{resource}");
    }
}

/// The longest a Task can take with its retries: every attempt to its timeout, every backoff
/// at its longest.
fn worst_case_seconds(state: &Value) -> f64 {
    let timeout = state["TimeoutSeconds"].as_f64().unwrap();
    let mut total = timeout;
    for r in state["Retry"].as_array().cloned().unwrap_or_default() {
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

#[test]
fn a_batch_ends_inside_an_express_execution_and_no_task_gives_up_on_a_running_function() {
    let pull = asl("infra/pull.asl.json");
    let child = &pull["States"]["Pull"]["ItemProcessor"]["States"];
    let mut worst = 0.0;
    for state in child.as_object().unwrap().values() {
        match state["Type"].as_str() {
            Some("Task") => worst += worst_case_seconds(state),
            Some("Map") => {
                for inner in state["ItemProcessor"]["States"]
                    .as_object()
                    .unwrap()
                    .values()
                {
                    if inner["Type"] == "Task" {
                        worst += worst_case_seconds(inner);
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        worst < 300.0,
        "a child runs at most {worst} s of Express's 300"
    );
    // The plan waits longer than ingest may run.
    let template = template();
    let globals = template["Globals"]["Function"]["Timeout"].as_i64().unwrap();
    let ingest = template["Resources"]["IngestFunction"]["Properties"]["Timeout"]
        .as_i64()
        .unwrap_or(globals);
    let waits = pull["States"]["Plan"]["TimeoutSeconds"].as_i64().unwrap();
    assert!(
        waits > ingest,
        "plan waits {waits} s, ingest runs {ingest} s"
    );
}
