//! Undo, end to end against the emulator: an instance isolated and a key deactivated by the
//! stack's runbooks, each decision carried out through the real remediate handler, then undone
//! by a named approver's request through the real approve handler, both directions in the
//! audit trail.
//!
//! Moto has no SSM Automation: a proxy in front of it answers StartAutomationExecution and
//! GetAutomationExecution (and keeps the requests), and `runbooks/undo.py` runs each runbook
//! Vigil started, with the parameters Vigil sent, against moto as SSM Automation would
//! (`runbooks/steps.py`). The state each runbook leaves is read back from the emulator. Which
//! role may make each call is the permission check's to prove (moto evaluates no policy).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use serde_json::{Value, json};
use vigil_core::domain::{
    Action, Decision, FailureMode, Incident, Mode, OutcomeStatus, Resource, ResourceKind, Severity,
    ThreatClass, Tier,
};
use vigil_core::names::{AccessKeyId, GroupName, InstanceId};
use vigil_core::policy::approvals::Approvals;
use vigil_handlers::approve;
use vigil_handlers::remediate::{self, RemediateConfig};
use vigil_lab::requests::named_undo;
use vigil_tests as h;

const UNDO_ROLE: &str = "arn:aws:iam::123456789012:role/vigil/UndoRole";
const APPROVER: &str = "arn:aws:sts::123456789012:assumed-role/Approver/alice";
const APPROVER_URL: &str = "https://abcdefghij.lambda-url.us-east-1.on.aws/";

/// Runs `runbooks/undo.py` with `args` against the emulator; returns what it printed.
fn py(args: &[&str]) -> Value {
    h::runbook_harness("undo.py", args)
}

/// SSM Automation, which moto lacks: every execution started succeeds.
fn automation(_: u32, request: &str) -> Option<h::Fault> {
    if request.contains("AmazonSSM.StartAutomationExecution") {
        Some(h::Fault::Emulate(
            r#"{"AutomationExecutionId":"4105a4fc-f944-11e6-9d32-0123456789ab"}"#,
        ))
    } else if request.contains("AmazonSSM.GetAutomationExecution") {
        Some(h::Fault::Emulate(
            r#"{"AutomationExecution":{"AutomationExecutionId":"4105a4fc-f944-11e6-9d32-0123456789ab","AutomationExecutionStatus":"Success"}}"#,
        ))
    } else {
        None
    }
}

/// The stack as remediate and approve see it, behind the proxy.
struct Rig {
    stack: h::Stack,
    proxy: h::FaultProxy,
    adapters: vigil_aws::stack::RemediateAdapters,
    /// The approve function's settings: the undo role and runbooks (remediate has none).
    approve: RemediateConfig,
    /// The remediate function's settings.
    remediate: RemediateConfig,
}

impl Rig {
    async fn new() -> Rig {
        let stack = h::Stack::new().await;
        let proxy = h::FaultProxy::start(&h::endpoint(), automation);
        let config = h::sdk_config()
            .to_builder()
            .endpoint_url(&proxy.url)
            .build();
        let adapters =
            vigil_aws::stack::RemediateAdapters::from_env(&config, &|name: &str| match name {
                vigil_handlers::config::TABLE => Some(stack.table.clone()),
                vigil_handlers::config::TOPIC_ARN => Some(stack.topic.clone()),
                vigil_handlers::config::KILL_SWITCH_PARAMETER => Some(stack.kill_switch.clone()),
                vigil_handlers::config::AUDIT_BUCKET => Some(stack.audit_bucket.clone()),
                _ => None,
            })
            .unwrap();
        let remediate = RemediateConfig {
            verify_attempts: 3,
            verify_interval: std::time::Duration::from_millis(50),
            automation_role: Some("arn:aws:iam::123456789012:role/vigil/AutomationRole".into()),
            approver_url: Some(APPROVER_URL.into()),
            ..RemediateConfig::default()
        };
        let approve = RemediateConfig {
            undo_role: Some(UNDO_ROLE.into()),
            approver_url: None,
            ..remediate.clone()
        };
        Rig {
            stack,
            proxy,
            adapters,
            approve,
            remediate,
        }
    }

    /// The policy in force: one named approver, whose request alone is enough.
    fn store(&self) -> vigil_handlers::decide::PolicyStore {
        let mut policy = vigil_core::policy::Policy::bundled().unwrap();
        policy.approvals = Approvals {
            approvers: vec!["arn:aws:iam::123456789012:role/Approver".into()],
            required: 1,
            links: false,
        };
        vigil_handlers::decide::PolicyStore::new(policy, Mode::Enforce, std::time::Duration::ZERO)
    }

    /// `caller` asks to undo `decision` through the ApproverUrl.
    async fn undo(&self, caller: &str, decision: &str, request: &str) -> approve::Page {
        let store = self.store();
        let policy = vigil_aws::ssm::PolicyParameter::new(&self.stack.config, &self.stack.policy);
        let setup = approve::Setup {
            key: None,
            remediate: &self.approve,
            store: &store,
            policy: &policy,
        };
        let http = named_undo(caller, decision);
        approve::respond(&http, request, &setup, &self.adapters, Utc::now()).await
    }

    /// The runbooks Vigil started, in order: (document, parameters).
    fn started(&self) -> Vec<(String, Value)> {
        self.proxy
            .emulated("AmazonSSM.StartAutomationExecution")
            .into_iter()
            .map(|b| {
                (
                    b["DocumentName"].as_str().unwrap().to_owned(),
                    b["Parameters"].clone(),
                )
            })
            .collect()
    }

    /// The audit records about `subject`: (kind, payload), in the trail's order.
    async fn trail(&self, subject: &str) -> Vec<(String, Value)> {
        self.adapters
            .audit
            .read_all()
            .await
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
            .filter(|r| r["subject"] == subject)
            .map(|r| (r["kind"].as_str().unwrap().to_owned(), r["payload"].clone()))
            .collect()
    }
}

fn decision(resource: Resource, threat: ThreatClass, action: Action) -> Decision {
    Decision {
        id: h::unique("d"),
        incident: Incident {
            id: h::unique("inc"),
            resource,
            failure_mode: FailureMode::Normal,
            threat: Some(threat),
            severity: Severity::High,
            confidence: 0.95,
            opened_at: Utc::now(),
            evidence: Vec::new(),
        },
        tier: Tier::Block,
        action: Some(action),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: Utc::now(),
    }
}

fn kinds(trail: &[(String, Value)]) -> Vec<&str> {
    trail.iter().map(|(k, _)| k.as_str()).collect()
}

#[tokio::test]
async fn a_named_approver_undoes_a_quarantine_and_the_instance_has_its_own_groups_again() {
    let rig = Rig::new().await;
    // An instance of a watched group, isolated by the containment runbook (as SSM ran it for
    // the decision below).
    let contained = py(&["contain"]);
    assert_eq!(contained["run"]["status"], "Success", "{contained}");
    let instance = contained["instance"].as_str().unwrap();
    let original = contained["original_group"].as_str().unwrap();
    assert_ne!(contained["after"]["groups"], json!([original]));

    let mut resource = Resource::new(ResourceKind::Instance, instance);
    resource.group = Some(GroupName::parse(contained["group"].as_str().unwrap()).unwrap());
    let quarantine = decision(
        resource,
        ThreatClass::Persistence,
        Action::QuarantineInstance {
            instance: InstanceId::parse(instance).unwrap(),
        },
    );
    let out = remediate::handle(
        &quarantine,
        "attempt-1",
        &rig.remediate,
        &rig.adapters,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, OutcomeStatus::Verified, "{out:?}");
    // The outcome email says how to undo it, as a named approver only.
    let told = h::sns_sent(&rig.stack.topic).last().unwrap().body.clone();
    assert!(
        told.contains(&format!(
            "vigil undo {} --url {APPROVER_URL}",
            quarantine.id
        )),
        "{told}"
    );

    // Someone the policy does not name: refused, recorded, nothing started.
    let started = rig.started().len();
    let dan = rig
        .undo(
            "arn:aws:sts::123456789012:assumed-role/Developer/dan",
            &quarantine.id,
            "r-0",
        )
        .await;
    assert_eq!(dan.status, 403, "{dan:?}");
    assert_eq!(rig.started().len(), started);

    // The named approver: the release runbook, as the undo role, on that instance.
    let alice = rig.undo(APPROVER, &quarantine.id, "r-1").await;
    assert_eq!(alice.status, 200, "{alice:?}");
    assert!(alice.message.contains("Verified"), "{}", alice.message);
    let started = rig.started();
    let (document, parameters) = started.last().unwrap();
    assert_eq!(document, "Vigil-ReleaseInstance");
    assert_eq!(parameters["InstanceId"], json!([instance]));
    assert_eq!(parameters["AutomationAssumeRole"], json!([UNDO_ROLE]));
    // SSM Automation runs it: the instance is back in its own group, may be terminated, carries
    // no quarantine mark; the evidence snapshot stays; the quarantine groups are gone.
    let released = py(&["run", "release-instance.yaml", &parameters.to_string()]);
    assert_eq!(released["run"]["status"], "Success", "{released}");
    let now = py(&["instance", instance]);
    assert_eq!(now["groups"], json!([original]), "{now}");
    assert_eq!(now["termination_disabled"], false);
    assert!(now["tags"].get("vigil:quarantine").is_none(), "{now}");
    assert!(now["tags"].get("vigil:quarantine-from").is_none(), "{now}");
    assert_eq!(now["snapshots"], contained["after"]["snapshots"]);
    assert_eq!(now["quarantine_groups"], 0);

    // Asked again: already decided, nothing more started.
    let again = rig.undo(APPROVER, &quarantine.id, "r-2").await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(rig.started().len(), started.len());

    // Both directions in the trail: the quarantine, then its undo with who asked for it.
    assert_eq!(
        kinds(&rig.trail(&quarantine.id).await),
        ["decision", "outcome", "approval-refused"]
    );
    let undo_id = vigil_core::undo::id(&quarantine.id);
    let undo = rig.trail(&undo_id).await;
    assert_eq!(
        kinds(&undo),
        ["undo-requested", "approval-vote", "decision", "outcome"],
        "{undo:?}"
    );
    assert_eq!(
        undo[0].1["principal"],
        "arn:aws:iam::123456789012:role/Approver"
    );
    assert_eq!(undo[0].1["undo"], quarantine.id.as_str());
    assert_eq!(undo[2].1["action"]["type"], "release_instance");
    assert_eq!(undo[3].1["status"], "verified");
}

#[tokio::test]
async fn a_named_approver_activates_a_deactivated_key_again_and_only_that_key() {
    let rig = Rig::new().await;
    let deactivated = py(&["deactivate"]);
    assert_eq!(deactivated["run"]["status"], "Success", "{deactivated}");
    let (user, leaked, other) = (
        deactivated["user"].as_str().unwrap(),
        deactivated["leaked"].as_str().unwrap(),
        deactivated["other"].as_str().unwrap(),
    );
    assert_eq!(deactivated["after"]["keys"][leaked], "Inactive");

    let key = decision(
        Resource::new(ResourceKind::AccessKey, leaked),
        ThreatClass::CredentialCompromise,
        Action::DeactivateAccessKey {
            access_key_id: AccessKeyId::parse(leaked).unwrap(),
        },
    );
    let out = remediate::handle(&key, "attempt-1", &rig.remediate, &rig.adapters, Utc::now())
        .await
        .unwrap();
    assert_eq!(out.status, OutcomeStatus::Verified, "{out:?}");

    // A decision with no action to undo: nothing.
    let unknown = rig.undo(APPROVER, "inc-none:replace_instance", "r-0").await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let alice = rig.undo(APPROVER, &key.id, "r-1").await;
    assert_eq!(alice.status, 200, "{alice:?}");
    let (document, parameters) = rig.started().last().unwrap().clone();
    assert_eq!(document, "Vigil-ReactivateAccessKey");
    assert_eq!(parameters["AccessKeyId"], json!([leaked]));
    assert_eq!(parameters["AutomationAssumeRole"], json!([UNDO_ROLE]));
    let run = py(&["run", "reactivate-access-key.yaml", &parameters.to_string()]);
    assert_eq!(run["run"]["status"], "Success", "{run}");
    let now = py(&["user", user]);
    assert_eq!(now["keys"][leaked], "Active", "{now}");
    assert_eq!(now["keys"][other], "Active", "{now}");
    assert_eq!(
        now["tags"],
        json!({}),
        "the containment mark is gone: {now}"
    );
    // Run again (the mark is gone): refused at the check, nothing changed.
    let twice = py(&["run", "reactivate-access-key.yaml", &parameters.to_string()]);
    assert_eq!(twice["run"]["failed"], "checkMark", "{twice}");

    assert_eq!(kinds(&rig.trail(&key.id).await), ["decision", "outcome"]);
    let undo = rig.trail(&vigil_core::undo::id(&key.id)).await;
    assert_eq!(
        kinds(&undo),
        ["undo-requested", "approval-vote", "decision", "outcome"],
        "{undo:?}"
    );
    assert_eq!(undo[2].1["action"]["type"], "reactivate_access_key");
}

#[tokio::test]
async fn the_release_runbook_refuses_an_instance_vigil_did_not_isolate() {
    let contained = py(&["contain"]);
    let instance = contained["instance"].as_str().unwrap();
    let parameters = json!({"InstanceId": [instance], "AutomationAssumeRole": [UNDO_ROLE]});
    // Released once; a second release finds no quarantine mark and changes nothing.
    let first = py(&["run", "release-instance.yaml", &parameters.to_string()]);
    assert_eq!(first["run"]["status"], "Success", "{first}");
    let before = py(&["instance", instance]);
    let second = py(&["run", "release-instance.yaml", &parameters.to_string()]);
    assert_eq!(second["run"]["status"], "Failed", "{second}");
    assert!(
        second["run"]["error"]
            .as_str()
            .unwrap()
            .contains("not isolated by Vigil"),
        "{second}"
    );
    assert_eq!(py(&["instance", instance]), before);
}
