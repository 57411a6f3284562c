//! Every remediation action through the `remediate` handler on the in-memory world: what it
//! changes, how it is verified, and that nothing changes when it must not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use vigil_shared::domain::{
    Action, Decision, FailureMode, Incident, Mode, Outcome, OutcomeStatus, Resource, ResourceKind,
    Severity, Tier,
};
use vigil_shared::handlers::remediate::{self, RemediateConfig, RemediatePorts};
use vigil_shared::memory::{MemoryAudit, MemoryFleet, MemoryOps, MemoryOutbox, MemoryState};
use vigil_shared::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};
use vigil_shared::ports::DescribeGroup;

struct World {
    fleet: MemoryFleet,
    state: MemoryState,
    outbox: MemoryOutbox,
    ops: MemoryOps,
    audit: MemoryAudit,
    group: GroupName,
    instances: Vec<InstanceId>,
}

impl World {
    fn new() -> World {
        let group = GroupName::parse("web-prod").unwrap();
        let instances: Vec<InstanceId> = (0..3)
            .map(|i| InstanceId::parse(&format!("i-0000000{i}")).unwrap())
            .collect();
        let fleet = MemoryFleet::default();
        fleet.add_group(&group, 1, 4, &instances);
        World {
            fleet,
            state: MemoryState::default(),
            outbox: MemoryOutbox::default(),
            ops: MemoryOps::default(),
            audit: MemoryAudit::default(),
            group,
            instances,
        }
    }

    fn check(&self, action: Action, tier: Tier, mode: Mode) -> Outcome {
        let decision = Decision {
            id: "d-1".into(),
            incident: Incident {
                id: "inc-1".into(),
                resource: Resource::new(ResourceKind::Instance, self.instances[0].to_string()),
                failure_mode: FailureMode::CpuRunaway,
                threat: None,
                severity: Severity::High,
                confidence: 0.95,
                opened_at: Utc::now(),
                evidence: Vec::new(),
            },
            tier,
            action: Some(action),
            mode,
            reasons: Vec::new(),
            decided_at: Utc::now(),
        };
        let ports = RemediatePorts {
            kill_switch: &self.state,
            instances: &self.fleet,
            health: &self.fleet,
            alerts: &self.outbox,
            history: &self.state,
            groups: &self.fleet,
            commands: &self.ops,
            pipelines: &self.ops,
            audit: &self.audit,
        };
        let settings = RemediateConfig {
            verify_attempts: 2,
            verify_interval: std::time::Duration::ZERO,
            automation_role: Some("arn:aws:iam::123456789012:role/vigil-automation".into()),
            ..RemediateConfig::default()
        };
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(remediate::handle(&decision, &settings, &ports))
            .unwrap()
    }

    fn desired(&self) -> u32 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(self.fleet.capacity(&self.group))
            .unwrap()
            .desired
    }
}

fn restart(w: &World) -> Action {
    Action::RestartService {
        group: w.group.clone(),
        instance: w.instances[0].clone(),
        service: ServiceName::parse("api.service").unwrap(),
    }
}

#[test]
fn a_restart_runs_the_stacks_document_and_is_verified_by_its_status() {
    let w = World::new();
    let out = w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    let sent = w.ops.commands();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "Vigil-RestartService");
    assert_eq!(sent[0].1, w.instances[0]);
    assert_eq!(
        sent[0].2,
        vec![("ServiceName".to_owned(), "api.service".to_owned())]
    );
    assert_eq!(w.outbox.sent().len(), 1);
}

#[test]
fn a_failed_or_stuck_restart_is_not_called_done() {
    let w = World::new();
    w.ops.end_with("Failed");
    let out = w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Failed, "{}", out.detail);
    let w = World::new();
    w.ops.end_with("InProgress");
    let out = w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Unverified, "{}", out.detail);
    // Either way people are told.
    assert_eq!(w.outbox.sent().len(), 1);
}

#[test]
fn scale_out_stays_within_the_groups_maximum() {
    let w = World::new();
    let action = || Action::ScaleOut {
        group: w.group.clone(),
        by: 1,
    };
    assert_eq!(
        w.check(action(), Tier::AutoHeal, Mode::Enforce).status,
        OutcomeStatus::Verified
    );
    assert_eq!(w.desired(), 4);
    // At the maximum (4): nothing more.
    let out = w.check(action(), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::NotActed, "{}", out.detail);
    assert_eq!(w.desired(), 4);
}

#[test]
fn a_detached_instance_leaves_the_group() {
    let w = World::new();
    let out = w.check(
        Action::DetachInstance {
            group: w.group.clone(),
            instance: w.instances[1].clone(),
        },
        Tier::Block,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert!(w.fleet.health(&w.instances[1]).is_none());
}

#[test]
fn containment_starts_the_runbooks_with_their_parameters() {
    let w = World::new();
    let out = w.check(
        Action::QuarantineInstance {
            instance: w.instances[2].clone(),
        },
        Tier::Block,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
    let out = w.check(
        Action::DeactivateAccessKey { access_key_id: key },
        Tier::Block,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    let started = w.ops.automations();
    assert_eq!(started[0].0, "AWSSupport-ContainEC2Instance");
    assert!(
        started[0]
            .1
            .contains(&("InstanceId".to_owned(), w.instances[2].to_string()))
    );
    assert_eq!(started[1].0, "Vigil-DeactivateAccessKey");
    assert!(
        started[1]
            .1
            .contains(&("AccessKeyId".to_owned(), "AKIAIOSFODNN7EXAMPLE".to_owned()))
    );
    assert!(
        started[1]
            .1
            .iter()
            .any(|(k, _)| k == "AutomationAssumeRole")
    );
}

#[test]
fn a_freeze_disables_the_stage_transition_with_its_reason() {
    let w = World::new();
    w.ops.add_stage("web-release", "Production");
    let freeze = |stage: &str| Action::FreezeDeployments {
        pipeline: PipelineName::parse("web-release").unwrap(),
        stage: PipelineName::parse(stage).unwrap(),
    };
    let out = w.check(freeze("Production"), Tier::Block, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert!(
        w.ops
            .frozen("web-release", "Production")
            .is_some_and(|r| r.contains("d-1"))
    );
    // A stage that does not exist: the freeze failed, and it says so.
    let out = w.check(freeze("Nowhere"), Tier::Block, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Failed, "{}", out.detail);
}

#[test]
fn dry_run_approval_and_the_kill_switch_change_nothing() {
    for (tier, mode) in [
        (Tier::AutoHeal, Mode::DryRun),
        (Tier::Approval, Mode::Enforce),
        (Tier::Escalate, Mode::Enforce),
    ] {
        let w = World::new();
        let out = w.check(restart(&w), tier, mode);
        assert_eq!(out.status, OutcomeStatus::NotActed, "{tier:?} {mode:?}");
        assert!(w.ops.commands().is_empty());
    }
    let w = World::new();
    w.state.set_kill_switch(true);
    let out = w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::NotActed);
    assert!(w.ops.commands().is_empty());
}

#[test]
fn hostile_names_never_become_actions() {
    for bad in [
        "api; reboot",
        "$(curl x)",
        "-rf",
        "a b",
        "api\nreboot",
        "ü",
        "",
    ] {
        assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
    }
    for bad in ["web/../x", "name;rm", ""] {
        assert!(PipelineName::parse(bad).is_err(), "{bad:?}");
    }
    for bad in ["AKIA123", "akiaiosfodnn7example", "AKIAIOSFODNN7EXAMPL;"] {
        assert!(AccessKeyId::parse(bad).is_err(), "{bad:?}");
    }
    // And the parse is also the deserialiser: a hostile payload between stages is refused.
    let payload = serde_json::json!({
        "type": "restart_service",
        "group": "web-prod",
        "instance": "i-00000000",
        "service": "api; reboot"
    });
    assert!(serde_json::from_value::<Action>(payload).is_err());
}

#[test]
fn every_action_and_its_outcome_are_in_the_audit_trail() {
    let w = World::new();
    w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    let records = w.audit.records();
    assert_eq!(
        records.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["decision", "outcome"]
    );
    assert_eq!(records[1].payload["status"], "verified");
    vigil_shared::audit::verify(&records).unwrap();
}

#[test]
fn without_an_audit_trail_nothing_is_changed() {
    let w = World::new();
    w.audit.break_store();
    let out = w.check(restart(&w), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::NotActed);
    assert!(out.detail.contains("audit trail"), "{}", out.detail);
    assert!(w.ops.commands().is_empty());
    // People are still told.
    assert_eq!(w.outbox.sent().len(), 1);
}
