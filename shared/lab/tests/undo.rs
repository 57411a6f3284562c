//! Undo on the in-memory ports: who may undo (named approvers only, as many as the policy
//! wants), what an undo passes (every limit, like any action), and what no other path can do
//! (remediate never releases a quarantine or activates a key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use vigil_core::domain::{
    Action, Code, Decision, FailureMode, Incident, Mode, OutcomeStatus, Resource, ResourceKind,
    Severity, Tier,
};
use vigil_core::models::Models;
use vigil_core::names::{AccessKeyId, GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_handlers::approve::Page;
use vigil_handlers::remediate::RemediateConfig;
use vigil_lab::pipeline::Pipeline;
use vigil_lab::requests;

const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/Approver/alice";
const CAROL: &str = "arn:aws:iam::123456789012:user/carol";
const UNDO_ROLE: &str = "arn:aws:iam::123456789012:role/vigil-undo";

/// One group of three instances (at most four), in enforce mode, with a policy whose named
/// approvers are `approvals`; the approve function's settings carry the undo role.
struct World {
    p: Pipeline,
    group: GroupName,
    approve: RemediateConfig,
}

impl World {
    fn new(approvals: &str) -> World {
        let group = GroupName::parse("web-prod").unwrap();
        let instances: Vec<InstanceId> = (0..3)
            .map(|i| InstanceId::parse(&format!("i-0000000{i}")).unwrap())
            .collect();
        let mut p = Pipeline::new(
            Models::bundled().unwrap(),
            Policy::bundled().unwrap(),
            Mode::Enforce,
        );
        p.fleet.add_group(&group, 1, 4, &instances);
        // The override is read again at every request: a test changes it between two.
        p.policy = vigil_handlers::decide::PolicyStore::new(
            Policy::bundled().unwrap(),
            Mode::Enforce,
            std::time::Duration::ZERO,
        );
        p.remediate = RemediateConfig {
            verify_attempts: 1,
            verify_interval: std::time::Duration::ZERO,
            automation_role: Some("arn:aws:iam::123456789012:role/vigil-automation".into()),
            ..RemediateConfig::default()
        };
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/policy/default.yaml"
        ))
        .unwrap();
        let (head, _) = text.split_once("\napprovals:\n").unwrap();
        let policy = format!(
            "{}\napprovals:\n{approvals}\n",
            head.replacen("mode: dry-run", "mode: enforce", 1)
        );
        p.state.set_policy(&policy, "undo-1");
        let approve = RemediateConfig {
            undo_role: Some(UNDO_ROLE.into()),
            ..p.remediate.clone()
        };
        World { p, group, approve }
    }

    fn decision(&self, id: &str, resource: Resource, action: Action) -> Decision {
        Decision {
            id: id.into(),
            incident: Incident {
                id: format!("inc-{id}"),
                resource,
                failure_mode: FailureMode::TrafficSurge,
                threat: None,
                severity: Severity::High,
                confidence: 0.9,
                opened_at: Utc::now(),
                evidence: Vec::new(),
            },
            tier: Tier::AutoHeal,
            action: Some(action),
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: Utc::now(),
        }
    }

    /// A scale-out of the group by one, carried out.
    fn scaled_out(&self, id: &str) -> Decision {
        let resource = Resource::new(ResourceKind::AutoScalingGroup, self.group.to_string());
        let d = self.decision(
            id,
            resource,
            Action::ScaleOut {
                group: self.group.clone(),
                by: 1,
            },
        );
        let out = block_on(self.p.remediate(&d, d.decided_at)).unwrap();
        assert_eq!(out.status, OutcomeStatus::Verified, "{out:?}");
        d
    }

    fn undo(&self, caller: &str, decision: &str) -> Page {
        let http = requests::named_undo(caller, decision);
        block_on(
            self.p
                .approve(&http, "request-1", &self.approve, Utc::now()),
        )
    }

    fn desired(&self) -> u32 {
        self.p.fleet.desired(&self.group).unwrap()
    }

    fn audit_kinds(&self, subject: &str) -> Vec<String> {
        self.p
            .audit
            .records()
            .iter()
            .filter(|r| r.subject == subject)
            .map(|r| r.kind.clone())
            .collect()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_named_approver_undoes_a_scale_out_and_the_group_scales_back_in() {
    let w = World::new("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]");
    let d = w.scaled_out("d-undo-1");
    assert_eq!(w.desired(), 4);
    let told = w.p.outbox.sent().last().unwrap().body.clone();
    assert!(told.contains("vigil undo d-undo-1 --url"), "{told}");

    let page = w.undo(ALICE, &d.id);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(w.desired(), 3, "scaled back in");
    let undo = vigil_core::undo::id(&d.id);
    assert_eq!(
        w.audit_kinds(&undo),
        ["undo-requested", "approval-vote", "decision", "outcome"]
    );
    // An undo is not undone in turn.
    let again = w.undo(ALICE, &undo);
    assert_eq!(again.status, 404, "{again:?}");
    assert_eq!(w.desired(), 3);
}

#[test]
fn an_undo_needs_as_many_named_approvers_as_the_policy_wants_and_no_link_or_stranger() {
    let w = World::new(
        "  approvers: [\"arn:aws:iam::123456789012:role/Approver\", \"arn:aws:iam::123456789012:user/carol\"]\n  required: 2",
    );
    let d = w.scaled_out("d-undo-2");
    let sent = w.p.outbox.sent().len();
    // A stranger: refused and recorded; nothing opened.
    let mallory = w.undo("arn:aws:iam::123456789012:user/mallory", &d.id);
    assert_eq!(mallory.status, 403, "{mallory:?}");
    assert_eq!(w.audit_kinds(&d.id).last().unwrap(), "approval-refused");
    // The first approver: counted, the other told, nothing done.
    let first = w.undo(ALICE, &d.id);
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(w.desired(), 4);
    let asked = w.p.outbox.sent();
    assert_eq!(asked.len(), sent + 1);
    assert!(
        asked
            .last()
            .unwrap()
            .body
            .contains("vigil approve d-undo-2:undo"),
        "{}",
        asked.last().unwrap().body
    );
    // The second, through `vigil approve` on the undo (or `vigil undo` again): carried out.
    let second = w.undo(CAROL, &d.id);
    assert_eq!(second.status, 200, "{second:?}");
    assert_eq!(w.desired(), 3);
}

#[test]
fn an_undo_passes_every_limit_like_any_action() {
    let w = World::new("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]");
    let d = w.scaled_out("d-undo-3");
    w.p.state.set_kill_switch(true);
    let page = w.undo(ALICE, &d.id);
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.message.contains("NotActed"), "{}", page.message);
    assert_eq!(w.desired(), 4, "the kill switch holds an undo too");

    // Scaling in stops at the group's floor (its minimum, or the policy's min_in_service).
    let w = World::new("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]");
    let d = w.scaled_out("d-undo-4");
    let four: Vec<InstanceId> = (0..4)
        .map(|i| InstanceId::parse(&format!("i-0000001{i}")).unwrap())
        .collect();
    w.p.fleet.add_group(&w.group, 4, 4, &four);
    let page = w.undo(ALICE, &d.id);
    assert!(page.message.contains("NotActed"), "{}", page.message);
    let outcome = w.p.outbox.sent().last().unwrap().body.clone();
    assert!(outcome.contains(Code::BlastRadius.as_str()), "{outcome}");
}

#[test]
fn nothing_but_a_named_approvers_undo_releases_a_quarantine_or_activates_a_key() {
    let w = World::new("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]");
    let instance = InstanceId::parse("i-00000001").unwrap();
    let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
    for (id, action) in [
        (
            "d-x:undo",
            Action::ReleaseInstance {
                instance: instance.clone(),
            },
        ),
        (
            "d-y:undo",
            Action::ReactivateAccessKey {
                access_key_id: key.clone(),
            },
        ),
    ] {
        let resource = Resource::new(ResourceKind::Instance, instance.to_string());
        let d = w.decision(id, resource.clone(), action.clone());
        // The remediate function has no undo role: an undo that reaches it changes nothing.
        let out = block_on(w.p.remediate(&d, d.decided_at)).unwrap();
        assert_eq!(out.status, OutcomeStatus::NotActed, "{out:?}");
        // With the undo role, a decision that is no undo changes nothing either.
        let mut forged = w.decision("d-z", resource, action);
        forged.id = "inc-1:release_instance".into();
        let out = block_on(vigil_handlers::remediate::handle(
            &forged,
            "attempt-x",
            &w.approve,
            &w.p,
            Utc::now(),
        ))
        .unwrap();
        assert_eq!(out.status, OutcomeStatus::NotActed, "{out:?}");
    }
    assert!(w.p.ops.automations().is_empty());

    // A quarantine carried out, undone by the named approver: the release runbook, as the
    // undo role (the moto test runs the runbook itself).
    let contain = w.decision(
        "d-q",
        Resource::new(ResourceKind::Instance, instance.to_string()),
        Action::QuarantineInstance {
            instance: instance.clone(),
        },
    );
    let out = block_on(w.p.remediate(&contain, contain.decided_at)).unwrap();
    assert_eq!(out.status, OutcomeStatus::Verified, "{out:?}");
    let page = w.undo(ALICE, "d-q");
    assert_eq!(page.status, 200, "{page:?}");
    let (document, params) = w.p.ops.automations().last().unwrap().clone();
    assert_eq!(document, "Vigil-ReleaseInstance");
    let params: Vec<(String, String)> = params.into_iter().collect();
    assert!(
        params.contains(&("AutomationAssumeRole".to_owned(), UNDO_ROLE.to_owned())),
        "{params:?}"
    );
}

#[test]
fn what_was_only_recorded_or_failed_has_nothing_to_undo() {
    let w = World::new("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]");
    let resource = Resource::new(ResourceKind::AutoScalingGroup, w.group.to_string());
    let mut dry = w.decision(
        "d-dry",
        resource,
        Action::ScaleOut {
            group: w.group.clone(),
            by: 1,
        },
    );
    dry.mode = Mode::DryRun;
    block_on(w.p.remediate(&dry, dry.decided_at)).unwrap();
    let page = w.undo(ALICE, "d-dry");
    assert_eq!(page.status, 404, "{page:?}");
    assert_eq!(w.desired(), 3);
}

#[test]
fn a_link_signed_for_an_undo_can_deny_it_but_never_approve_it() {
    use vigil_handlers::ports::LoadPendingApproval;
    const KEY: &[u8] = b"a test signing key of 32 bytes!!";
    let mut w = World::new(
        "  approvers: [\"arn:aws:iam::123456789012:role/Approver\", \"arn:aws:iam::123456789012:user/carol\"]\n  required: 2",
    );
    w.approve.approval = Some(vigil_handlers::remediate::ApprovalLinks {
        base_url: "https://approve.example/".into(),
        key: KEY.to_vec(),
    });
    let d = w.scaled_out("d-undo-5");
    assert_eq!(w.undo(ALICE, &d.id).status, 202);
    let undo = vigil_core::undo::id(&d.id);
    let pending = block_on(w.p.state.load_pending(&undo, Utc::now()))
        .unwrap()
        .unwrap();
    // Links as an email would carry them, signed with the stack's own key.
    let (approve, deny) =
        vigil_core::approval::links(KEY, "https://approve.example/", &pending, Utc::now(), |v| {
            format!("nonce-{v:?}")
        })
        .unwrap();
    // Even where links may approve (the policy changed since: one approver, links on).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/policy/default.yaml"
    ))
    .unwrap()
    .replacen("mode: dry-run", "mode: enforce", 1)
    .replacen(
        "  approvers: []",
        "  approvers: [\"arn:aws:iam::123456789012:role/Approver\", \"arn:aws:iam::123456789012:user/carol\"]",
        1,
    );
    w.p.state.set_policy(&text, "undo-2");
    let confirm = |link: &str| {
        let http = requests::confirm(requests::token_of(link), "198.51.100.7", false);
        block_on(w.p.approve(&http, "request-2", &w.approve, Utc::now()))
    };
    let page = confirm(&approve);
    assert_eq!(page.status, 403, "{page:?}");
    assert_eq!(w.desired(), 4);
    let page = confirm(&deny);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(page.title, "Denied");
    // Denied: the second approver finds it decided.
    assert_eq!(w.undo(CAROL, &d.id).status, 409);
    assert_eq!(w.desired(), 4);
}
