//! The permission check: the stack's roles, as CloudFormation deploys them, evaluated with a
//! real IAM policy evaluator for every operation in `infra/permissions.yaml`
//! (`scripts/permissions/`), and that table kept equal to the code that makes the calls.
//! `make test` installs the evaluator (`scripts/permissions/setup.sh`); without it these tests
//! fail, saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs the check on a template (and the table), with extra flags.
fn run(template: &Path, flags: &[&str]) -> Output {
    let script = root().join("scripts/permissions/run.sh");
    let out = Command::new(&script)
        .arg(template)
        .arg(root().join("infra/permissions.yaml"))
        .args(flags)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("permission check:"),
        "the permission check did not run (install it with scripts/permissions/setup.sh):\n{stderr}"
    );
    out
}

/// The check on the template with `edit` applied, which must change it.
fn run_edited(name: &str, edit: impl Fn(&str) -> String) -> Output {
    let original = read("template.yaml");
    let edited = edit(&original);
    assert_ne!(edited, original, "{name}: the edit changed nothing");
    let dir = std::env::temp_dir().join(format!("vigil-permissions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, edited).unwrap();
    run(&path, &[])
}

#[test]
fn every_role_may_make_exactly_the_calls_in_the_table() {
    let out = run(&root().join("template.yaml"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains(" 0 disagreement(s)"),
        "{stderr}"
    );
    // Every row was evaluated: allowed, denied untagged and denied when protected, per caller.
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(lines > 500, "only {lines} evaluations");
}

#[test]
fn a_tag_condition_key_written_literally_fails_the_check() {
    // `${!Name}` is Fn::Sub's escape: the key stays the literal text `${WatchTagKey}`, as a
    // condition key written as a YAML map key outside Fn::Sub does.
    let out = run_edited("literal-key", |t| {
        t.replacen(
            "\"aws:ResourceTag/${WatchTagKey}\"",
            "\"aws:ResourceTag/${!WatchTagKey}\"",
            1,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("\"check\":\"literal-key\""), "{stderr}");
}

#[test]
fn a_call_the_role_does_not_allow_fails_the_check() {
    let out = run_edited("no-grant", |t| {
        t.replace("\"autoscaling:SetInstanceHealth\", ", "")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("\"action\":\"autoscaling:SetInstanceHealth\"")
            && stderr.contains("\"want\":\"Allowed\""),
        "{stderr}"
    );
}

#[test]
fn a_protected_resource_is_opened_by_no_allow() {
    // Without the explicit Deny, a protected group that also carries the watch tag is allowed.
    let out = run_edited("no-deny", |t| {
        t.replacen(
            "\"Sid\": \"NeverProtected\",\n              \"Effect\": \"Deny\"",
            "\"Sid\": \"NeverProtected\",\n              \"Effect\": \"Allow\"",
            2,
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("\"want\":\"ExplicitlyDenied\""), "{stderr}");
}

fn table() -> Value {
    serde_norway::from_str(&read("infra/permissions.yaml")).unwrap()
}

/// (action, caller) for every row of the table.
fn rows() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for row in table()["operations"].as_sequence().unwrap() {
        // The API's name where the IAM action's differs (`api:`), as the adapters name it.
        let action = row
            .get("api")
            .and_then(|a| a.as_str())
            .unwrap_or_else(|| row["action"].as_str().unwrap());
        for by in row["by"].as_sequence().unwrap() {
            out.insert((action.to_owned(), by.as_str().unwrap().to_owned()));
        }
    }
    out
}

/// Every `"service:Operation"` an adapter names (each SDK call reports its errors under it),
/// whatever the service: a new adapter's calls are found too.
fn adapter_operations() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("shared/aws/src")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // Every text between two neighbouring quotes (both parities: a quote in a comment
        // cannot hide a call).
        let pieces: Vec<&str> = text.split('"').collect();
        for piece in pieces.iter().skip(1).take(pieces.len().saturating_sub(2)) {
            let Some((service, op)) = piece.split_once(':') else {
                continue;
            };
            if !service.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && op.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && op.chars().all(|c| c.is_ascii_alphanumeric())
            {
                out.insert((*piece).to_owned());
            }
        }
    }
    out
}

const FUNCTIONS: [&str; 6] = ["ingest", "score", "decide", "remediate", "approve", "gate"];

#[test]
fn every_call_an_adapter_makes_has_a_row_and_every_row_a_call() {
    let code = adapter_operations();
    assert!(code.len() > 30, "{code:?}");
    let by_functions: BTreeSet<String> = rows()
        .into_iter()
        .filter(|(_, by)| FUNCTIONS.contains(&by.as_str()))
        .map(|(action, _)| action)
        .collect();
    let operator: BTreeSet<String> = table()["operator"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = code
        .iter()
        .filter(|a| !by_functions.contains(*a) && !operator.contains(*a))
        .collect();
    assert!(
        missing.is_empty(),
        "called by an adapter, with no row for a function in infra/permissions.yaml: {missing:?}"
    );
    // Rows no adapter names: only what a call implies (publishing to the encrypted topic,
    // passing the automation role to a runbook).
    let implied = ["kms:GenerateDataKey", "kms:Decrypt", "iam:PassRole"];
    let stale: Vec<_> = by_functions
        .iter()
        .filter(|a| !code.contains(*a) && !implied.contains(&a.as_str()))
        .collect();
    assert!(stale.is_empty(), "rows no adapter calls: {stale:?}");
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The AWS calls a runbook makes: its scripts' boto3 calls on their `ec2` and `autoscaling`
/// clients, and its executeAwsApi and assertAwsResourceProperty steps.
fn runbook_calls(runbook: &str) -> BTreeSet<String> {
    let text = read(runbook);
    let mut calls = BTreeSet::new();
    let doc: Value = serde_norway::from_str(&text).unwrap();
    for step in doc["mainSteps"].as_sequence().unwrap() {
        let inputs = &step["inputs"];
        if let (Some(service), Some(api)) = (inputs["Service"].as_str(), inputs["Api"].as_str()) {
            calls.insert(format!("{service}:{api}"));
        }
        let Some(script) = inputs["Script"].as_str() else {
            continue;
        };
        for (client, service) in [("ec2.", "ec2"), ("autoscaling.", "autoscaling")] {
            for piece in script.split(client).skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if piece[name.len()..].starts_with('(') && !name.is_empty() {
                    calls.insert(format!("{service}:{}", pascal(&name)));
                }
            }
        }
    }
    calls
}

#[test]
fn every_call_a_runbook_makes_has_a_row_for_the_role_it_runs_as() {
    let rows = rows();
    for (runbooks, role, at_least) in [
        (
            [
                "infra/ssm/contain-instance.yaml",
                "infra/ssm/deactivate-access-key.yaml",
            ],
            "automation",
            12,
        ),
        (
            [
                "infra/ssm/release-instance.yaml",
                "infra/ssm/reactivate-access-key.yaml",
            ],
            "undo",
            10,
        ),
    ] {
        let calls: BTreeSet<String> = runbooks.iter().flat_map(|r| runbook_calls(r)).collect();
        assert!(calls.len() >= at_least, "{role}: {calls:?}");
        let missing: Vec<_> = calls
            .iter()
            .filter(|c| !rows.contains(&((*c).clone(), role.to_owned())))
            .collect();
        assert!(
            missing.is_empty(),
            "runbook calls with no {role} row: {missing:?}"
        );
    }
}

/// The AWS calls the telemetry-lines collector makes: its `aws logs <operation>` commands.
fn collector_calls() -> BTreeSet<String> {
    let text = read("infra/ssm/telemetry-lines.yaml");
    text.split("aws logs ")
        .skip(1)
        .map(|rest| {
            let op: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            format!("logs:{}", pascal(&op.replace('-', "_")))
        })
        .collect()
}

#[test]
fn every_call_the_collector_makes_is_allowed_by_the_policy_for_instances() {
    let calls = collector_calls();
    assert_eq!(
        calls,
        BTreeSet::from([
            "logs:CreateLogStream".to_owned(),
            "logs:PutLogEvents".to_owned()
        ])
    );
    let rows = rows();
    for table in ["infra/permissions.yaml", "infra/member-permissions.yaml"] {
        let table: Value = serde_norway::from_str(&read(table)).unwrap();
        let by_instances: BTreeSet<String> = table["operations"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|r| {
                r["by"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|b| b == "instance")
            })
            .map(|r| r["action"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            by_instances, calls,
            "the instance rows are the collector's calls"
        );
    }
    assert!(rows.contains(&("logs:FilterLogEvents".to_owned(), "ingest".to_owned())));
}

#[test]
fn the_table_in_the_deploy_guide_is_the_checked_one() {
    let out = run(&root().join("template.yaml"), &["--markdown"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8_lossy(&out.stdout);
    assert!(
        read("docs/deploy.md").contains(generated.trim()),
        "docs/deploy.md does not hold the permission table: paste the output of \
         `scripts/permissions/run.sh --markdown` into it"
    );
}

/// The member stack (infra/member.yaml), checked the same way with its own table: its role
/// admits only the central stack's own roles (by their path) of the same organisation, and
/// acts only on watched, unprotected groups; its forwarding role puts only to the central bus.
#[test]
fn the_member_role_admits_only_the_central_stacks_roles_and_acts_only_on_watched_groups() {
    let script = root().join("scripts/permissions/run.sh");
    let out = Command::new(&script)
        .arg(root().join("infra/member.yaml"))
        .arg(root().join("infra/member-permissions.yaml"))
        .args([
            "CentralAccountId=111111111111",
            "CentralStackName=vigil",
            "OrganizationId=o-exampleorgid1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains(" 0 disagreement(s)"),
        "{stderr}"
    );
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(lines > 25, "only {lines} evaluations");
    // The central roles that assume it are under the path its trust policy names.
    let template: serde_norway::Value = serde_norway::from_str(&read("template.yaml")).unwrap();
    for function in ["IngestFunction", "DecideFunction", "RemediateFunction"] {
        let path = &template["Resources"][function]["Properties"]["RolePath"];
        assert_eq!(
            serde_norway::to_string(path).unwrap().trim(),
            "!Sub /vigil/${AWS::StackName}/",
            "{function}"
        );
    }
    let member = read("infra/member.yaml");
    assert!(member.contains(":role/vigil/${CentralStackName}/*"));
}
