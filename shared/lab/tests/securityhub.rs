//! Other products' findings through Security Hub, through every stage: taken only from the
//! products the stack names, never Vigil's own, and never acted on without a person.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use vigil_core::domain::{Code, Mode, OutcomeStatus, Tier};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_lab::pipeline::Pipeline;

/// The fixture's finding, as product `product` reports it, on an instance of a watched group.
fn world_and_event(products: &[&str], product: &str) -> (Pipeline, vigil_core::events::Envelope) {
    world_and(products, product, |_| {})
}

/// As [`world_and_event`], the finding edited by `edit`.
fn world_and(
    products: &[&str],
    product: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> (Pipeline, vigil_core::events::Envelope) {
    let mut p = Pipeline::new(
        Models::bundled().unwrap(),
        Policy::bundled().unwrap(),
        Mode::Enforce,
    );
    p.ingest.securityhub_products = products.iter().map(|s| (*s).to_owned()).collect();
    let instances: Vec<InstanceId> = ["i-99999999", "i-99999998", "i-99999997", "i-99999996"]
        .iter()
        .map(|i| InstanceId::parse(i).unwrap())
        .collect();
    p.fleet
        .add_group(&GroupName::parse("web-prod").unwrap(), 1, 6, &instances);
    let mut v: serde_json::Value = serde_json::from_slice(&common::fixture_bytes(
        "sources/securityhub-findings-imported.json",
    ))
    .unwrap();
    v["detail"]["findings"][0]["ProductName"] = product.into();
    edit(&mut v["detail"]["findings"][0]);
    let event = vigil_core::events::parse_envelope(v.to_string().as_bytes()).unwrap();
    (p, event)
}

fn run(
    p: &Pipeline,
    event: &vigil_core::events::Envelope,
) -> Vec<(vigil_core::domain::Decision, vigil_core::domain::Outcome)> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(p.event(event, "delivery-1", chrono::Utc::now()))
        .unwrap()
}

#[test]
fn a_named_products_finding_is_told_and_waits_for_a_person() {
    let (p, event) = world_and_event(&["Falcon"], "Falcon");
    let out = run(&p, &event);
    assert_eq!(out.len(), 1);
    let (d, o) = &out[0];
    assert_eq!(
        d.incident.threat,
        Some(vigil_core::domain::ThreatClass::Persistence),
        "{:#?}",
        d.reasons
    );
    // Another product's word never acts alone: at most, a person is asked.
    assert!(
        matches!(d.tier, Tier::Approval | Tier::Escalate),
        "{:#?}",
        d.reasons
    );
    assert_eq!(o.status, OutcomeStatus::NotActed);
    assert!(p.ops.automations().is_empty());
    assert_eq!(
        p.fleet
            .health(&InstanceId::parse("i-99999999").unwrap())
            .as_deref(),
        Some("HEALTHY")
    );
    assert_eq!(p.outbox.sent().len(), 1, "people are told");
}

#[test]
fn a_product_the_stack_does_not_name_is_ignored() {
    for (products, product) in [(&[][..], "Falcon"), (&["Inspector"][..], "Falcon")] {
        let (p, event) = world_and_event(products, product);
        let observed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(p.ingest(&event))
            .unwrap();
        assert!(observed.observations.is_empty());
        assert!(
            observed
                .ignored
                .as_deref()
                .unwrap()
                .contains("SecurityHubInputProducts"),
            "{:?}",
            observed.ignored
        );
        assert!(p.outbox.sent().is_empty());
    }
}

#[test]
fn a_named_products_finding_that_a_rule_would_act_on_asks_a_person_first() {
    // A key used from outside, as another product reports it: the ladder would deactivate it.
    let (p, event) = world_and(&["Falcon"], "Falcon", |f| {
        f["Types"] = serde_json::json!([
            "TTPs/Initial Access/UnauthorizedAccess:IAMUser-InstanceCredentialExfiltration"
        ]);
        f["Resources"] =
            serde_json::json!([{"Type": "AwsIamAccessKey", "Id": "ASIAQ5EXAMPLEKEY1234"}]);
    });
    let out = run(&p, &event);
    let (d, o) = &out[0];
    assert_eq!(
        d.incident.threat,
        Some(vigil_core::domain::ThreatClass::CredentialCompromise)
    );
    assert!(d.action.is_some(), "{:#?}", d.reasons);
    assert_eq!(d.tier, Tier::Approval, "{:#?}", d.reasons);
    assert!(d.cites(&Code::Outsider), "{:#?}", d.reasons);
    assert_eq!(o.status, OutcomeStatus::NotActed);
    assert!(p.ops.automations().is_empty(), "nothing deactivated");
}
