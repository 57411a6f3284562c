//! Every remediation action through the `remediate` handler on the in-memory world: what it
//! changes, how it is verified, and that nothing changes when it must not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use vigil_core::domain::{
    Action, Decision, FailureMode, Incident, Mode, Outcome, OutcomeStatus, Resource, ResourceKind,
    Severity, Tier,
};
use vigil_core::models::Models;
use vigil_core::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};
use vigil_core::policy::Policy;
use vigil_handlers::approve;
use vigil_handlers::ports::DescribeGroup;
use vigil_handlers::remediate::{self, ApprovalLinks, RemediateConfig};
use vigil_lab::pipeline::Pipeline;
use vigil_lab::requests;

struct World {
    pipeline: Pipeline,
    clicks: std::sync::atomic::AtomicU32,
    /// Decisions made so far: each gets its own id, as decide gives them.
    decisions: std::sync::atomic::AtomicU32,
    group: GroupName,
    instances: Vec<InstanceId>,
}

impl std::ops::Deref for World {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

impl World {
    fn new() -> World {
        let group = GroupName::parse("web-prod").unwrap();
        let instances: Vec<InstanceId> = (0..3)
            .map(|i| InstanceId::parse(&format!("i-0000000{i}")).unwrap())
            .collect();
        let pipeline = Pipeline::new(
            Models::bundled().unwrap(),
            Policy::bundled().unwrap(),
            Mode::Enforce,
        );
        pipeline.fleet.add_group(&group, 1, 4, &instances);
        World {
            pipeline,
            clicks: Default::default(),
            decisions: Default::default(),
            group,
            instances,
        }
    }

    fn check(&self, action: Action, tier: Tier, mode: Mode) -> Outcome {
        self.check_at(action, tier, mode, Utc::now())
    }

    fn check_at(
        &self,
        action: Action,
        tier: Tier,
        mode: Mode,
        at: chrono::DateTime<Utc>,
    ) -> Outcome {
        let resource = Resource::new(ResourceKind::Instance, self.instances[0].to_string());
        self.check_on(resource, action, tier, mode, at)
    }

    fn check_on(
        &self,
        resource: Resource,
        action: Action,
        tier: Tier,
        mode: Mode,
        at: chrono::DateTime<Utc>,
    ) -> Outcome {
        let n = self
            .decisions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let decision = Decision {
            id: format!("d-{}", n + 1),
            incident: Incident {
                id: "inc-1".into(),
                resource,
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
            decided_at: at,
        };
        let ports = &self.pipeline;
        block_on(remediate::handle(
            &decision,
            &decision.id,
            &settings(),
            ports,
            decision.decided_at,
        ))
        .unwrap()
    }

    /// A person follows a link (its full URL) at `now` and confirms on the page it opens.
    fn click(&self, link: &str, now: chrono::DateTime<Utc>) -> approve::Page {
        let shown = block_on(self.pipeline.approve(
            &requests::follow("GET", link),
            &self.request(),
            &settings(),
            now,
        ));
        let Some(form) = shown.form.clone() else {
            return shown;
        };
        block_on(self.pipeline.approve(
            &requests::confirm(&form.token, "198.51.100.7", false),
            &self.request(),
            &settings(),
            now,
        ))
    }

    /// A request id of its own.
    fn request(&self) -> String {
        format!(
            "click-{}",
            self.clicks
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        )
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

const KEY: &[u8] = b"a test signing key of 32 bytes!!";

fn settings() -> RemediateConfig {
    RemediateConfig {
        verify_attempts: 2,
        verify_interval: std::time::Duration::ZERO,
        automation_role: Some("arn:aws:iam::123456789012:role/vigil-automation".into()),
        approval: Some(ApprovalLinks {
            base_url: "https://approve.example/".into(),
            key: KEY.to_vec(),
        }),
        region: Some("eu-west-1".into()),
        ..RemediateConfig::default()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
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
    let sent = w.outbox.sent();
    assert_eq!(sent.len(), 1);
    // The email says where to look.
    assert!(
        sent[0]
            .body
            .contains("https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#InstanceDetails:instanceId=i-00000000"),
        "{}",
        sent[0].body
    );
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
fn a_resource_of_another_region_is_never_acted_on() {
    let w = World::new();
    // The stack runs in eu-west-1 (settings); the same instance id said to be elsewhere.
    let mut elsewhere = Resource::new(ResourceKind::Instance, w.instances[0].to_string());
    elsewhere.region = Some("us-east-1".into());
    let replace = || Action::ReplaceInstance {
        group: w.group.clone(),
        instance: w.instances[0].clone(),
    };
    let out = w.check_on(
        elsewhere,
        replace(),
        Tier::AutoHeal,
        Mode::Enforce,
        Utc::now(),
    );
    assert_eq!(out.status, OutcomeStatus::NotActed, "{}", out.detail);
    assert!(out.detail.contains("us-east-1"), "{}", out.detail);
    assert_eq!(w.fleet.health(&w.instances[0]).as_deref(), Some("HEALTHY"));
    // People are told, with the console of the resource's own Region.
    let told = w.outbox.sent();
    let last = told.last().expect("people are told");
    assert!(
        last.body
            .contains("https://us-east-1.console.aws.amazon.com"),
        "{}",
        last.body
    );
    // In the stack's own Region, the same decision acts.
    let mut here = Resource::new(ResourceKind::Instance, w.instances[0].to_string());
    here.region = Some("eu-west-1".into());
    let out = w.check_on(here, replace(), Tier::AutoHeal, Mode::Enforce, Utc::now());
    assert_ne!(out.status, OutcomeStatus::NotActed, "{}", out.detail);
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
    assert_eq!(started[0].0, "Vigil-ContainInstance");
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
    vigil_core::audit::verify(&records).unwrap();
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

/// The approve and deny links in the last email.
fn links(w: &World) -> (String, String) {
    let body = w.outbox.sent().last().unwrap().body.clone();
    let find = |label: &str| {
        body.lines()
            .find_map(|l| l.trim().strip_prefix(label).map(|s| s.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {label} link in {body}"))
    };
    (find("Approve:"), find("Deny:"))
}

#[test]
fn an_approval_email_carries_links_and_the_approved_action_runs_once() {
    let w = World::new();
    let out = w.check(restart(&w), Tier::Approval, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::NotActed);
    assert!(w.ops.commands().is_empty(), "nothing before approval");
    let (yes, no) = links(&w);
    assert!(yes.starts_with("https://approve.example?t="));

    let page = w.click(&yes, Utc::now());
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(w.ops.commands().len(), 1, "the restart ran");
    // Replayed, or answered the other way afterwards: refused, nothing more happens.
    assert_eq!(w.click(&yes, Utc::now()).status, 409);
    assert_eq!(w.click(&no, Utc::now()).status, 409);
    assert_eq!(w.ops.commands().len(), 1);
    // The trail holds the verdict between the decision and the action.
    let kinds: Vec<String> = w.audit.records().iter().map(|r| r.kind.clone()).collect();
    assert_eq!(
        kinds,
        ["decision", "outcome", "approval", "decision", "outcome"]
    );
}

#[test]
fn forged_expired_and_denied_links_change_nothing() {
    let w = World::new();
    w.check(restart(&w), Tier::Approval, Mode::Enforce);
    let (yes, no) = links(&w);
    // Forged: the token re-signed with another key, or tampered with.
    let token = yes.split_once("?t=").unwrap().1;
    let claims = vigil_core::approval::verify(KEY, token, Utc::now()).unwrap();
    let forged = vigil_core::approval::sign(b"an attacker's key, long enough!!", &claims).unwrap();
    assert_eq!(w.click(&format!("x?t={forged}"), Utc::now()).status, 403);
    let tampered = format!("{}A", yes);
    assert!(matches!(w.click(&tampered, Utc::now()).status, 400 | 403));
    assert_eq!(w.click("x?t=", Utc::now()).status, 400);
    // Expired.
    let later = Utc::now() + chrono::Duration::hours(25);
    assert_eq!(w.click(&yes, later).status, 410);
    assert!(w.ops.commands().is_empty());
    // Denied: told, recorded, not done; the approve link no longer works.
    let page = w.click(&no, Utc::now());
    assert_eq!(
        (page.status, page.title.as_str()),
        (200, "Denied"),
        "{page:?}"
    );
    assert!(w.ops.commands().is_empty());
    assert_eq!(w.click(&yes, Utc::now()).status, 409);
    assert!(
        w.outbox
            .sent()
            .last()
            .unwrap()
            .body
            .contains("denied by a person")
    );
}

#[test]
fn an_alert_storm_becomes_one_message_but_actions_are_always_told() {
    use chrono::TimeZone;
    let w = World::new();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    for i in 0..50 {
        let out = w.check_at(
            restart(&w),
            Tier::Escalate,
            Mode::Enforce,
            t0 + chrono::Duration::seconds(i * 10),
        );
        assert_eq!(out.status, OutcomeStatus::NotActed);
    }
    assert_eq!(
        w.outbox.sent().len(),
        1,
        "fifty escalations in one window, one email"
    );
    // Every one of them is still in the audit trail.
    let decisions = w
        .audit
        .records()
        .iter()
        .filter(|r| r.kind == "decision")
        .count();
    assert_eq!(decisions, 50);
    // The next window gets its own message; an action carried out is always told.
    w.check_at(
        restart(&w),
        Tier::Escalate,
        Mode::Enforce,
        t0 + chrono::Duration::minutes(20),
    );
    assert_eq!(w.outbox.sent().len(), 2);
    w.check_at(
        restart(&w),
        Tier::AutoHeal,
        Mode::Enforce,
        t0 + chrono::Duration::minutes(21),
    );
    assert_eq!(w.outbox.sent().len(), 3);
}

#[test]
fn scaling_is_suspended_and_resumed() {
    use vigil_handlers::ports::ScalingProcesses;
    let w = World::new();
    let suspended = || block_on(w.fleet.suspended(&w.group)).unwrap();
    let out = w.check(
        Action::SuspendScaling {
            group: w.group.clone(),
        },
        Tier::Block,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert_eq!(suspended().len(), 3);
    let out = w.check(
        Action::ResumeScaling {
            group: w.group.clone(),
        },
        Tier::AutoHeal,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert!(suspended().is_empty());
}

#[test]
fn a_rollback_is_verified_by_the_stages_status() {
    let w = World::new();
    let action = || Action::RollbackDeployment {
        pipeline: PipelineName::parse("web-release").unwrap(),
        stage: PipelineName::parse("Production").unwrap(),
    };
    let out = w.check(action(), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert_eq!(
        w.ops.rollbacks(),
        vec![("web-release".to_owned(), "Production".to_owned())]
    );
    w.ops.end_with("Failed");
    let out = w.check(action(), Tier::AutoHeal, Mode::Enforce);
    assert_eq!(out.status, OutcomeStatus::Failed, "{}", out.detail);
}

#[test]
fn a_deployment_is_stopped_and_a_freeze_lifted() {
    let w = World::new();
    let pipeline = || PipelineName::parse("web-release").unwrap();
    let out = w.check(
        Action::StopDeployment {
            pipeline: pipeline(),
            execution: PipelineName::parse("3137f7cb-7cf7-039j-s83l-d7eu3EXAMPLE").unwrap(),
        },
        Tier::AutoHeal,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    // Freeze, then lift it.
    let stage = || PipelineName::parse("Production").unwrap();
    w.check(
        Action::FreezeDeployments {
            pipeline: pipeline(),
            stage: stage(),
        },
        Tier::Block,
        Mode::Enforce,
    );
    assert!(w.ops.frozen("web-release", "Production").is_some());
    let out = w.check(
        Action::UnfreezeDeployments {
            pipeline: pipeline(),
            stage: stage(),
        },
        Tier::AutoHeal,
        Mode::Enforce,
    );
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert!(w.ops.frozen("web-release", "Production").is_none());
}
