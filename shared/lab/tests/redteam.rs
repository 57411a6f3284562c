//! The red-team suite, in memory: attacks on Vigil's control plane driven through the real
//! handlers, each asserting that nothing changed that should not and what was recorded.
//! docs/security.md lists every attack with the test that tries it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use vigil_core::approval::{self, Token, Verdict};
use vigil_core::domain::{
    Action, Code, Decision, FailureMode, Incident, Mode, OutcomeStatus, Resource, ResourceKind,
    Severity, Tier,
};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_handlers::approve::Page;
use vigil_handlers::ports::{ClaimOnce, SavePendingApproval, TakeQuota};
use vigil_handlers::remediate::{ApprovalLinks, RemediateConfig};
use vigil_lab::pipeline::Pipeline;
use vigil_lab::requests;

const KEY: &[u8] = b"a test signing key of 32 bytes!!";
const PERSON: &str = "198.51.100.7";

/// A world with one group of three instances (1 to 4), in `mode`, whose approval emails carry
/// signed links.
struct World {
    p: Pipeline,
    group: GroupName,
    instances: Vec<InstanceId>,
    requests: std::sync::atomic::AtomicU32,
}

impl World {
    fn new(mode: Mode) -> World {
        let group = GroupName::parse("web-prod").unwrap();
        let instances: Vec<InstanceId> = (0..3)
            .map(|i| InstanceId::parse(&format!("i-0000000{i}")).unwrap())
            .collect();
        let mut p = Pipeline::new(Models::bundled().unwrap(), Policy::bundled().unwrap(), mode);
        p.fleet.add_group(&group, 1, 4, &instances);
        p.remediate = RemediateConfig {
            verify_attempts: 1,
            verify_interval: std::time::Duration::ZERO,
            automation_role: Some("arn:aws:iam::123456789012:role/vigil-automation".into()),
            approval: Some(ApprovalLinks {
                base_url: "https://approve.example/".into(),
                key: KEY.to_vec(),
            }),
            ..RemediateConfig::default()
        };
        World {
            p,
            group,
            instances,
            requests: Default::default(),
        }
    }

    fn decision(&self, id: &str, tier: Tier, action: Action) -> Decision {
        Decision {
            id: id.into(),
            incident: Incident {
                id: format!("inc-{id}"),
                resource: Resource::new(ResourceKind::AutoScalingGroup, self.group.to_string()),
                failure_mode: FailureMode::TrafficSurge,
                threat: None,
                severity: Severity::High,
                confidence: 0.8,
                opened_at: Utc::now(),
                evidence: Vec::new(),
            },
            tier,
            action: Some(action),
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: Utc::now(),
        }
    }

    fn scale_out(&self, by: u32) -> Action {
        Action::ScaleOut {
            group: self.group.clone(),
            by,
        }
    }

    /// A decision that waits for a person: carried to its email; its approve and deny links.
    fn ask(&self, id: &str, action: Action) -> (String, String) {
        let d = self.decision(id, Tier::Approval, action);
        let out = block_on(self.p.remediate(&d, d.decided_at)).unwrap();
        assert_eq!(out.status, OutcomeStatus::NotActed);
        let body = self.p.outbox.sent().last().unwrap().body.clone();
        let find = |label: &str| {
            body.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|s| s.trim().to_owned()))
                .unwrap_or_else(|| panic!("no {label} link in {body}"))
        };
        (find("Approve:"), find("Deny:"))
    }

    fn send(
        &self,
        http: &aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest,
    ) -> Page {
        self.send_at(http, Utc::now())
    }

    fn send_at(
        &self,
        http: &aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest,
        now: DateTime<Utc>,
    ) -> Page {
        let n = self
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        block_on(
            self.p
                .approve(http, &format!("request-{n}"), &self.p.remediate, now),
        )
    }

    /// The confirming POST of a link's token, from a person's address.
    fn confirm(&self, link: &str) -> Page {
        self.send(&requests::confirm(requests::token_of(link), PERSON, false))
    }

    fn desired(&self) -> u32 {
        self.p.fleet.desired(&self.group).unwrap()
    }

    /// Everything an attack could have changed: capacity, health, commands, automations,
    /// audit records, alerts.
    fn snapshot(&self) -> (u32, Vec<Option<String>>, usize, usize, usize, usize) {
        (
            self.desired(),
            self.instances
                .iter()
                .map(|i| self.p.fleet.health(i))
                .collect(),
            self.p.ops.commands().len(),
            self.p.ops.automations().len(),
            self.p.audit.records().len(),
            self.p.outbox.sent().len(),
        )
    }

    fn audit_kinds(&self) -> Vec<String> {
        self.p
            .audit
            .records()
            .iter()
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

// 1. An approve or deny link acts on a plain GET.

#[test]
fn following_a_link_in_any_way_but_the_confirming_post_changes_nothing() {
    let w = World::new(Mode::Enforce);
    let (yes, no) = w.ask("d-1", w.scale_out(1));
    let before = w.snapshot();
    for link in [&yes, &no] {
        for (what, request) in [
            ("GET", requests::follow("GET", link)),
            ("HEAD", requests::follow("HEAD", link)),
            ("a scanner's prefetch", requests::prefetch(link)),
            ("PUT", requests::follow("PUT", link)),
            ("DELETE", requests::follow("DELETE", link)),
            ("OPTIONS", requests::follow("OPTIONS", link)),
            ("PATCH", requests::follow("PATCH", link)),
        ] {
            for _ in 0..3 {
                let page = w.send(&request);
                assert!(matches!(page.status, 200 | 405), "{what}: {page:?}");
            }
            assert_eq!(w.snapshot(), before, "{what} changed something");
        }
    }
    // The page a GET shows names the action and posts the token back; the link still works.
    let shown = w.send(&requests::follow("GET", &yes));
    assert_eq!(shown.title, "Confirm approval");
    assert!(shown.message.contains("out by 1"), "{shown:?}");
    assert!(shown.html().contains("<form method=\"post\">"));
    let form = shown.form.unwrap();
    assert_eq!(form.verdict, Verdict::Approve);
    let page = w.confirm(&form.token);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(w.desired(), before.0 + 1, "the confirmed approval acted");
}

#[test]
fn only_the_confirming_post_acts_and_only_once() {
    let w = World::new(Mode::Enforce);
    let (yes, no) = w.ask("d-1", w.scale_out(1));
    let page = w.confirm(&yes);
    assert_eq!(page.status, 200);
    assert_eq!(w.desired(), 4);
    // What it did is counted in Vigil's own metrics, as remediate counts its actions.
    let counted: Vec<(&str, Vec<(&str, &str)>)> = page
        .metrics
        .iter()
        .map(|m| (m.name, m.dimensions.clone()))
        .collect();
    assert!(
        counted.contains(&("ApprovalsDecided", vec![("Verdict", "approve")])),
        "{counted:?}"
    );
    assert!(
        counted.contains(&(
            "Actions",
            vec![("Action", "scale_out"), ("Outcome", "verified")]
        )),
        "{counted:?}"
    );
    let after = w.snapshot();
    // The same POST replayed (a double click, a proxy's retry), base64 as Lambda may pass it,
    // and the other verdict: refused.
    assert_eq!(w.confirm(&yes).status, 409);
    let base64 = requests::confirm(requests::token_of(&yes), PERSON, true);
    assert_eq!(w.send(&base64).status, 409);
    assert_eq!(w.confirm(&no).status, 409);
    assert_eq!(w.snapshot(), after);
}

#[test]
fn a_verdict_is_recorded_with_who_sent_it() {
    let w = World::new(Mode::Enforce);
    let (_, no) = w.ask("d-1", w.scale_out(1));
    assert_eq!(w.confirm(&no).status, 200);
    let record =
        w.p.audit
            .records()
            .into_iter()
            .find(|r| r.kind == "approval")
            .unwrap();
    let by = &record.payload["by"];
    assert_eq!(by["source_ip"], PERSON, "{record:?}");
    assert!(
        by["user_agent"].as_str().unwrap().contains("Firefox"),
        "{record:?}"
    );
    assert!(by["request"].as_str().unwrap().starts_with("request-"));
    assert_eq!(record.payload["verdict"], "deny");
    assert_eq!(w.desired(), 3, "denied: nothing done");
}

// 2. An approval is bound only to the decision id, and skips the limits.

#[test]
fn a_pending_decision_changed_after_its_email_is_refused_recorded_and_told() {
    let w = World::new(Mode::Enforce);
    let (yes, _) = w.ask("d-1", w.scale_out(1));
    // Someone with write access to the table swaps the action behind the genuine link.
    for swapped in [
        w.scale_out(3),
        Action::ReplaceInstance {
            group: w.group.clone(),
            instance: w.instances[1].clone(),
        },
    ] {
        let altered = w.decision("d-1", Tier::Approval, swapped);
        block_on(
            w.p.state
                .save_pending(&altered, Utc::now() + Duration::hours(1)),
        )
        .unwrap();
        let alerts = w.p.outbox.sent().len();
        let shown = w.send(&requests::follow("GET", &yes));
        assert_eq!(
            (shown.status, shown.form.is_some()),
            (409, false),
            "{shown:?}"
        );
        let page = w.confirm(&yes);
        assert_eq!(page.status, 409, "{page:?}");
        assert_eq!(w.desired(), 3, "nothing was scaled");
        assert_eq!(
            w.p.fleet.health(&w.instances[1]).as_deref(),
            Some("HEALTHY")
        );
        assert_eq!(w.audit_kinds().last().unwrap(), "approval-refused");
        let told = w.p.outbox.sent();
        assert_eq!(told.len(), alerts + 1);
        assert!(told.last().unwrap().subject.contains("altered"), "{told:?}");
    }
}

#[test]
fn a_link_signed_before_links_were_bound_is_refused() {
    let w = World::new(Mode::Enforce);
    let (yes, _) = w.ask("d-1", w.scale_out(1));
    let token = approval::verify(KEY, requests::token_of(&yes), Utc::now()).unwrap();
    let unbound = approval::sign(
        KEY,
        &Token {
            digest: String::new(),
            ..token
        },
    )
    .unwrap();
    let before = w.snapshot();
    assert_eq!(w.send(&requests::follow("GET", &unbound)).status, 409);
    assert_eq!(w.confirm(&unbound).status, 409);
    assert_eq!(w.snapshot(), before);
    // The genuine link still works.
    assert_eq!(w.confirm(&yes).status, 200);
}

/// An approval confirmed after the world changed: `change` changes it, `cites` is the limit the
/// held decision must cite.
fn check_reconsidered(w: &World, change: impl FnOnce(&World), cites: Code) {
    let (yes, _) = w.ask("d-1", w.scale_out(1));
    change(w);
    let before = w.desired();
    let page = w.confirm(&yes);
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(w.desired(), before, "held: {page:?}");
    let decision =
        w.p.audit
            .records()
            .into_iter()
            .rev()
            .find(|r| r.kind == "decision")
            .unwrap();
    let decided: Decision = serde_json::from_value(decision.payload).unwrap();
    assert!(!decided.acts(), "{decided:?}");
    assert!(decided.cites(&Code::Approval), "{decided:?}");
    assert!(decided.cites(&cites), "{cites:?}: {decided:?}");
}

#[test]
fn an_approval_is_decided_again_under_the_kill_switch_engaged_since() {
    check_reconsidered(
        &World::new(Mode::Enforce),
        |w| w.p.state.set_kill_switch(true),
        Code::KillSwitch,
    );
}

#[test]
fn an_approval_is_decided_again_under_the_stacks_mode_now() {
    // The email was sent in enforce; the stack now runs in dry-run.
    let w = World::new(Mode::DryRun);
    check_reconsidered(&w, |_| {}, Code::DryRun);
}

#[test]
fn an_approval_is_decided_again_under_the_policy_override_now() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/policy/default.yaml"
    ))
    .unwrap();
    assert!(text.contains("mode: dry-run"));
    // Operators switched to a policy with a maintenance window open all week.
    let all_week = "[mon, tue, wed, thu, fri, sat, sun]";
    let window = text.replacen("mode: dry-run", "mode: enforce", 1).replacen(
        "maintenance_windows: []",
        &format!(
            "maintenance_windows: [{{days: {all_week}, start: \"00:00\", end: \"12:00\"}}, {{days: {all_week}, start: \"12:00\", end: \"00:00\"}}]"
        ),
        1,
    );
    assert_ne!(window, text);
    check_reconsidered(
        &World::new(Mode::Enforce),
        |w| w.p.state.set_policy(&window, "7"),
        Code::Maintenance,
    );
}

#[test]
fn an_approval_is_decided_again_against_the_groups_capacity_now() {
    check_reconsidered(
        &World::new(Mode::Enforce),
        |w| {
            // The group reached its maximum since the email.
            let d = w.decision("d-0", Tier::AutoHeal, w.scale_out(1));
            let out = block_on(w.p.remediate(&d, d.decided_at)).unwrap();
            assert_eq!(out.status, OutcomeStatus::Verified, "{out:?}");
        },
        Code::BlastRadius,
    );
}

#[test]
fn an_approval_takes_the_cooldown_like_any_decision() {
    check_reconsidered(
        &World::new(Mode::Enforce),
        |w| {
            // Another delivery acted on the group moments ago and holds its cooldown.
            let key = vigil_core::keys::cooldown("scale_out", &w.group.to_string());
            let until = Utc::now() + Duration::minutes(30);
            let won = block_on(w.p.state.claim(&key, "decide-1", Utc::now(), until)).unwrap();
            assert_eq!(won, vigil_handlers::ports::Claim::Won);
        },
        Code::Cooldown,
    );
}

/// A member account's group named as the stack's own is another group: acting on one holds
/// neither the other's cooldown, and each holds its own.
#[test]
fn a_cooldown_is_the_accounts_own() {
    let w = World::new(Mode::Enforce);
    let policy = Policy::bundled().unwrap();
    let now = Utc::now();
    let claim = |id: &str, account: Option<&str>| {
        let mut d = w.decision(id, Tier::AutoHeal, w.scale_out(1));
        d.incident.resource.account = account.map(str::to_owned);
        block_on(vigil_handlers::decide::claim_action(
            d, &policy, &w.p.state, &w.p.state, id, now,
        ))
        .unwrap()
    };
    let member = Some("222222222222");
    assert!(claim("d-1", None).acts());
    assert!(
        claim("d-2", member).acts(),
        "the member's group of the same name is not held by the stack's"
    );
    assert!(!claim("d-3", None).acts(), "the stack's group held");
    assert!(!claim("d-4", member).acts(), "the member's group held");
}

#[test]
fn verdicts_beyond_the_rate_limit_are_refused() {
    let w = World::new(Mode::Enforce);
    let (yes, _) = w.ask("d-1", w.scale_out(1));
    let now = Utc::now();
    let key = vigil_core::keys::approval_rate(now.timestamp() / 60);
    for _ in 0..vigil_handlers::approve::MAX_VERDICTS_PER_MINUTE {
        block_on(w.p.state.take(&key, u32::MAX, now + Duration::minutes(2))).unwrap();
    }
    let before = w.snapshot();
    let page = w.send_at(
        &requests::confirm(requests::token_of(&yes), PERSON, false),
        now,
    );
    assert_eq!(page.status, 429, "{page:?}");
    assert_eq!(w.snapshot(), before);
    // A minute later the same link works: the refusal did not spend it.
    let later = now + Duration::minutes(1);
    let page = w.send_at(
        &requests::confirm(requests::token_of(&yes), PERSON, false),
        later,
    );
    assert_eq!(page.status, 200, "{page:?}");
}

#[test]
fn hostile_requests_to_the_approve_function_change_nothing() {
    let w = World::new(Mode::Enforce);
    let (yes, _) = w.ask("d-1", w.scale_out(1));
    let token = approval::verify(KEY, requests::token_of(&yes), Utc::now()).unwrap();
    let forged = approval::sign(b"an attacker's key, long enough!!", &token).unwrap();
    let flipped = approval::sign(
        b"an attacker's key, long enough!!",
        &Token {
            verdict: Verdict::Approve,
            decision_id: "d-2".into(),
            ..token
        },
    )
    .unwrap();
    let before = w.snapshot();
    for (what, request, status) in [
        ("forged", requests::confirm(&forged, PERSON, false), 403),
        (
            "forged for another decision",
            requests::confirm(&flipped, PERSON, false),
            403,
        ),
        ("no token", requests::post_raw("x=1"), 400),
        ("empty", requests::post_raw(""), 400),
        ("oversized", requests::post_raw(&"t=".repeat(20_000)), 413),
        (
            "markup",
            requests::post_raw("t=<script>alert(1)</script>"),
            400,
        ),
    ] {
        let page = w.send(&request);
        assert_eq!(page.status, status, "{what}: {page:?}");
        assert!(!page.html().contains("<script>"), "{what}");
    }
    let mut bad64 = requests::confirm("x", PERSON, true);
    bad64.body = Some("%%%not base64".into());
    assert_eq!(w.send(&bad64).status, 400);
    assert_eq!(w.snapshot(), before);
}

// 7. Remediate repeats actions when retried.

#[test]
fn a_retried_remediate_never_repeats_its_action() {
    let w = World::new(Mode::Enforce);
    let d = w.decision("d-1", Tier::AutoHeal, w.scale_out(1));
    // The action succeeds, then telling people fails: the state machine retries the task.
    w.p.outbox.fail_next(1);
    assert!(block_on(w.p.remediate(&d, d.decided_at)).is_err());
    assert_eq!(w.desired(), 4);
    let retried = block_on(w.p.remediate(&d, d.decided_at)).unwrap();
    assert_eq!(w.desired(), 4, "the retry did not scale out again");
    assert_eq!(retried.status, OutcomeStatus::Verified, "{retried:?}");
    assert!(retried.detail.contains("not repeated"), "{retried:?}");
    // People are told, once the topic works again.
    assert!(
        w.p.outbox
            .sent()
            .last()
            .unwrap()
            .body
            .contains("not repeated")
    );
    // A third delivery of the same decision (a redrive) does not act either.
    let again = block_on(w.p.remediate(&d, d.decided_at)).unwrap();
    assert_eq!(w.desired(), 4);
    assert!(again.detail.contains("not repeated"));
}

// 4. An outsider can make Vigil quarantine production instances.

/// The crypto-mining finding of the fixtures on a watched production instance, changed by
/// `edit`, through every stage: its decision and outcome, and the automations started.
fn contain(edit: impl FnOnce(&mut serde_json::Value)) -> (Decision, OutcomeStatus, usize) {
    contain_in(6, edit)
}

/// As [`contain`], the miner one of `size` instances of its group.
fn contain_in(
    size: usize,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (Decision, OutcomeStatus, usize) {
    let w = World::new(Mode::Enforce);
    let miner = InstanceId::parse("i-99999999").unwrap();
    let shop = GroupName::parse("shop-prod").unwrap();
    let others: Vec<InstanceId> = (1..size)
        .map(|i| InstanceId::parse(&format!("i-1000000{i}")).unwrap())
        .collect();
    let mut members = vec![miner.clone()];
    members.extend(others);
    w.p.fleet.add_group(&shop, 1, 8, &members);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/events/sources/guardduty-crypto-instance.json"
    );
    let mut event: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut event);
    let envelope =
        vigil_core::events::parse_envelope(&serde_json::to_vec(&event).unwrap()).unwrap();
    let results = block_on(w.p.event(&envelope, "delivery-1", Utc::now())).unwrap();
    let (d, o) = results.into_iter().next().unwrap();
    (d, o.status, w.p.ops.automations().len())
}

#[test]
fn a_finding_the_instance_acted_in_is_contained_without_a_person() {
    // The control: the instance itself connected to a mining pool.
    let (d, status, automations) = contain(|_| {});
    assert_eq!(d.tier, Tier::Block, "{d:?}");
    assert_eq!((status, automations), (OutcomeStatus::Verified, 1), "{d:?}");
}

#[test]
fn findings_an_outsider_can_cause_never_contain_without_a_person() {
    let inbound_tor = |e: &mut serde_json::Value| {
        e["detail"]["type"] = "UnauthorizedAccess:EC2/TorIPCaller".into();
        e["detail"]["service"]["resourceRole"] = "TARGET".into();
    };
    let dns = |e: &mut serde_json::Value| {
        e["detail"]["type"] = "CryptoCurrency:EC2/BitcoinTool.B!DNS".into();
    };
    let domain = |e: &mut serde_json::Value| {
        e["detail"]["type"] = "Impact:EC2/MaliciousDomainRequest.Reputation".into();
    };
    let no_role = |e: &mut serde_json::Value| {
        e["detail"]["service"]
            .as_object_mut()
            .unwrap()
            .remove("resourceRole");
    };
    for (what, edit) in [
        (
            "inbound Tor traffic",
            &inbound_tor as &dyn Fn(&mut serde_json::Value),
        ),
        ("a DNS lookup", &dns),
        ("a domain request", &domain),
        ("no resource role", &no_role),
    ] {
        let (d, status, automations) = contain(edit);
        assert_eq!(d.tier, Tier::Approval, "{what}: {d:?}");
        assert!(d.cites(&Code::Outsider), "{what}: {d:?}");
        assert_eq!(
            (status, automations),
            (OutcomeStatus::NotActed, 0),
            "{what}"
        );
    }
}

#[test]
fn quarantine_is_bounded_by_the_blast_radius_like_any_action_that_takes_an_instance_out() {
    // The group's only instance: quarantining it would leave none in service.
    let (d, status, automations) = contain_in(1, |_| {});
    assert_ne!(d.tier, Tier::Block, "{d:?}");
    assert!(d.cites(&Code::BlastRadius), "{d:?}");
    assert_eq!((status, automations), (OutcomeStatus::NotActed, 0));
    // One of two: half the group, within the default limit (50%).
    let (d, status, _) = contain_in(2, |_| {});
    assert_eq!(
        (d.tier, status),
        (Tier::Block, OutcomeStatus::Verified),
        "{d:?}"
    );
}

#[test]
fn a_sample_finding_is_recorded_and_changes_nothing() {
    let (d, status, automations) = contain(|e| {
        e["detail"]["service"]["additionalInfo"]["sample"] = true.into();
    });
    assert_eq!(d.tier, Tier::Observe, "{d:?}");
    assert!(d.incident.threat.is_none());
    assert_eq!((status, automations), (OutcomeStatus::NotActed, 0));
}

// 9. Identity novelty keyed by the session: a fresh session name each time never warms up.

#[test]
fn a_fresh_session_name_each_time_still_builds_the_roles_history() {
    use vigil_handlers::ports::PrincipalHistory;
    let state = vigil_lab::memory::MemoryState::default();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/events/sources/cloudtrail-stop-logging.json"
    );
    let base: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let calls = vigil_core::features::identity::WARM_UP + 5;
    for i in 0..calls {
        let mut e = base.clone();
        e["id"] = format!("event-{i}").into();
        e["detail"]["userIdentity"]["arn"] =
            format!("arn:aws:sts::123456789012:assumed-role/ci-deployer/session-{i}").into();
        e["detail"]["userIdentity"]["principalId"] =
            format!("AROAEXAMPLEROLEID12:session-{i}").into();
        let envelope =
            vigil_core::events::parse_envelope(&serde_json::to_vec(&e).unwrap()).unwrap();
        let vigil_core::events::Normalised::Signals(signals) =
            vigil_core::events::normalise(&envelope).unwrap()
        else {
            panic!("a CloudTrail call")
        };
        block_on(vigil_handlers::ingest::observe(signals, &state, &[])).unwrap();
    }
    let role = "arn:aws:sts::123456789012:assumed-role/ci-deployer";
    let profile = block_on(state.load(role)).unwrap().unwrap();
    assert_eq!(profile.seen, calls, "every session counted for the role");
    assert!(profile.seen > vigil_core::features::identity::WARM_UP);
    // No history per session name.
    let session = format!("{role}/session-{}", calls - 1);
    assert!(block_on(state.load(&session)).unwrap().is_none());
}

/// The policy override as text: the bundled default, in enforce mode, with `approvals`.
fn with_approvals(approvals: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/policy/default.yaml"
    ))
    .unwrap();
    let (head, _) = text
        .split_once("\napprovals:\n")
        .expect("the default policy has an approvals section");
    format!(
        "{}\napprovals:\n{approvals}\n",
        head.replacen("mode: dry-run", "mode: enforce", 1)
    )
}

#[test]
fn a_link_cannot_approve_where_the_policy_wants_named_approvers_but_can_deny() {
    let w = World::new(Mode::Enforce);
    w.p.state.set_policy(
        &with_approvals(
            "  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]\n  links: false",
        ),
        "9",
    );
    let (approve, deny) = w.ask("d-named-1", w.scale_out(1));
    let before = w.snapshot();
    let page = w.confirm(&approve);
    assert_eq!(page.status, 403, "{page:?}");
    assert_eq!(w.snapshot(), before, "a refused link changes nothing");
    // The link is not used up by the refusal: its deny still works.
    let denied = w.confirm(&deny);
    assert_eq!(denied.status, 200, "{denied:?}");
    assert_eq!(w.desired(), before.0);
}

#[test]
fn named_verdicts_hostile_or_unnamed_change_nothing() {
    let w = World::new(Mode::Enforce);
    w.p.state.set_policy(
        &with_approvals("  approvers: [\"arn:aws:iam::123456789012:role/Approver\"]"),
        "10",
    );
    w.ask("d-named-2", w.scale_out(1));
    let before = w.snapshot();
    let approver = "arn:aws:sts::123456789012:assumed-role/Approver/alice";
    // Not named, another account's role of the same name, a malformed or oversized body, an
    // unknown decision, a GET: all refused.
    for (caller, http) in [
        (
            "unnamed",
            requests::named("arn:aws:iam::123456789012:user/mallory", "d-named-2", true),
        ),
        (
            "other account",
            requests::named(
                "arn:aws:sts::444455556666:assumed-role/Approver/eve",
                "d-named-2",
                true,
            ),
        ),
        (
            "unknown decision",
            requests::named(approver, "d-unknown", true),
        ),
    ] {
        let page = w.send(&http);
        assert!(page.status >= 400, "{caller}: {page:?}");
    }
    for body in [
        "not json",
        "{\"decision\":\"d-named-2\"}",
        &"x".repeat(20_000),
    ] {
        let mut http = requests::named(approver, "d-named-2", true);
        http.body = Some(body.to_owned());
        assert_eq!(w.send(&http).status, 400, "{body:.40}");
    }
    let mut get = requests::named(approver, "d-named-2", true);
    get.request_context.http.method = Some("GET".into());
    assert_eq!(w.send(&get).status, 405);
    let after = w.snapshot();
    assert_eq!(after.0, before.0, "nothing was acted on");
    // The two unnamed callers are recorded (the named approver's unknown decision is not a
    // verdict on anything).
    assert_eq!(
        w.audit_kinds()
            .iter()
            .filter(|k| *k == "approval-refused")
            .count(),
        2
    );
    // The named approver, alone enough here (required 1): carried out once.
    let page = w.send(&requests::named(approver, "d-named-2", true));
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(w.desired(), before.0 + 1);
    let again = w.send(&requests::named(
        "arn:aws:sts::123456789012:assumed-role/Approver/bob",
        "d-named-2",
        true,
    ));
    assert_eq!(again.status, 409, "one approver, one verdict: {again:?}");
    assert_eq!(w.desired(), before.0 + 1);
}

#[test]
fn one_named_denial_denies() {
    let w = World::new(Mode::Enforce);
    w.p.state.set_policy(
        &with_approvals(
            "  approvers: [\"arn:aws:iam::123456789012:role/Approver\", \"arn:aws:iam::123456789012:user/carol\"]\n  required: 2",
        ),
        "11",
    );
    w.ask("d-named-3", w.scale_out(1));
    let before = w.desired();
    let yes = w.send(&requests::named(
        "arn:aws:sts::123456789012:assumed-role/Approver/alice",
        "d-named-3",
        true,
    ));
    assert_eq!(yes.status, 202, "{yes:?}");
    let no = w.send(&requests::named(
        "arn:aws:iam::123456789012:user/carol",
        "d-named-3",
        false,
    ));
    assert_eq!(no.status, 200, "{no:?}");
    assert_eq!(no.title, "Denied");
    assert_eq!(w.desired(), before);
}

/// A refused policy override read again while the store's copy is fresh: the refusal is cited
/// again (and told once). This once waited forever on its own lock.
#[test]
fn a_refused_override_read_again_within_the_cache_period_is_cited_again() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let state = vigil_lab::memory::MemoryState::default();
        state.set_policy("version: 2\nlimits: {max_group_share: 7}\n", "3");
        let outbox = vigil_lab::memory::MemoryOutbox::default();
        let store = vigil_handlers::decide::PolicyStore::new(
            Policy::bundled().unwrap(),
            Mode::Enforce,
            std::time::Duration::from_secs(600),
        );
        let first = block_on(store.current(&state, &outbox)).1;
        let second = block_on(store.current(&state, &outbox)).1;
        let _ = tx.send((first, second, outbox.sent().len()));
    });
    // A watchdog, not a timing: the store must answer at all.
    let (first, second, told) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the policy store did not answer its second read");
    for notice in [first, second] {
        assert_eq!(notice.map(|r| r.code), Some(Code::OverrideRefused));
    }
    assert_eq!(told, 1, "told once per refused version");
}
