//! The bundled pack: every rule loads, passes its own test events and carries what the pack
//! requires; the CIS AWS Foundations monitoring controls are each covered; every rule can be
//! routed by an EventBridge pattern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vigil_rules::Pack;
use vigil_rules::delivery::Delivery;

fn pack() -> &'static Pack {
    match Pack::bundled() {
        Ok(p) => p,
        Err(errors) => panic!("the bundled pack does not load:\n{errors:#?}"),
    }
}

#[test]
fn every_bundled_rule_passes_its_tests() {
    let failed: Vec<String> = pack()
        .test()
        .into_iter()
        .filter(|t| !t.passed())
        .map(|t| {
            format!(
                "{}: {:?} missing {:?}",
                t.file,
                t.cases.iter().filter(|c| !c.1).collect::<Vec<_>>(),
                t.missing
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} rules fail:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(pack().len() > 100, "{} rules", pack().len());
}

#[test]
fn every_cis_monitoring_control_is_covered() {
    // CIS AWS Foundations Benchmark (v1.4 and v1.5 numbering), section 4: Monitoring.
    for n in 1..=15 {
        let tag = format!("cis.4.{n}");
        let covering: Vec<&str> = pack()
            .rules()
            .iter()
            .filter(|r| r.sigma().tags.contains(&tag))
            .map(|r| r.name.as_str())
            .collect();
        assert!(!covering.is_empty(), "no rule covers CIS {tag}");
    }
}

#[test]
fn every_rule_can_be_routed() {
    let d = Delivery::of(pack());
    assert!(d.unrouted.is_empty(), "{:#?}", d.unrouted);
    assert!(d.sign_ins);
    assert!(d.identity_types.contains("Root"));
}

#[test]
fn an_invalid_rule_is_refused_by_name_and_field_and_the_others_load() {
    let good = vigil_rules::BUNDLED[0];
    let files = [
        good,
        (
            "mine/no-id.yml",
            "title: No id\nlevel: high\nlogsource: {product: aws}\ndetection: {s: {eventName: X}, condition: s}\n",
        ),
        (
            "mine/windows.yml",
            "title: Not AWS\nid: w1\nlevel: high\nlogsource: {product: windows}\ndetection: {s: {Image: x}, condition: s}\n",
        ),
        (
            "mine/outsider.yml",
            "title: Odd attribute\nid: o1\nlevel: high\nvigil.outsider: maybe\nlogsource: {product: aws}\ndetection: {s: {eventName: X}, condition: s}\n",
        ),
        (
            "mine/broken.yml",
            "title: Broken\nid: b1\nlevel: high\nlogsource: {product: aws}\ndetection: {s: {eventName: X}, condition: s and nothing}\n",
        ),
        (
            "mine/correlation.yml",
            "title: Bad correlation\nid: c1\nlevel: high\ncorrelation: {type: temporal, rules: [x], group-by: [userIdentity.arn], timespan: 5m}\n",
        ),
        ("mine/yaml.yml", "title: [unclosed\n"),
    ];
    let (pack, errors) = Pack::load(files);
    assert_eq!(pack.len(), 1, "the valid rule still loads");
    let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for (file, field) in [
        ("mine/no-id.yml", "id: missing"),
        ("mine/windows.yml", "logsource.product"),
        ("mine/outsider.yml", "vigil.outsider"),
        ("mine/broken.yml", "Broken"),
        ("mine/correlation.yml", "correlation"),
        ("mine/yaml.yml", "mine/yaml.yml"),
    ] {
        assert!(
            said.iter()
                .any(|e| e.starts_with(file) && e.contains(field)),
            "{file}: no error naming {field:?} in {said:#?}"
        );
    }
    // A strict load (the bundled pack's) refuses the lot.
    assert!(Pack::strict(files).is_err());
}

/// An operator's rule with a test event of its own: it must match `eventName`.
fn operator_rule(id: &str, name: &str, event_name: &str, expect: &str) -> String {
    format!(
        "title: {name}\nid: {id}\nname: {name}\nlevel: high\nlogsource: {{product: aws, service: cloudtrail}}\n\
         detection: {{s: {{eventName: {event_name}}}, condition: s}}\n\
         rsigma.exemplars:\n- name: the call\n  expect: {expect}\n  event: {{eventName: {event_name}}}\n"
    )
}

#[test]
fn an_override_adds_rules_replaces_by_id_and_is_refused_whole() {
    let bundled = pack();
    let added = operator_rule("op-1", "acme_export", "ExportThing", "match");
    let p = Pack::with_override("ssm:v2", &added).unwrap();
    assert_eq!(p.len(), bundled.len() + 1);
    assert_eq!(
        p.check(&serde_json::json!({"eventName": "ExportThing"}))[0].name,
        "acme_export"
    );

    // Same id as a bundled rule: the operator's version replaces it.
    let target = &bundled.rules()[0];
    let replacing = operator_rule(&target.id, &target.name, "SomethingElse", "match");
    let p = Pack::with_override("ssm:v3", &replacing).unwrap();
    assert_eq!(p.len(), bundled.len());
    assert_eq!(p.get(&target.name).unwrap().file, "ssm:v3");

    // A second name for a bundled rule, a rule whose own test fails, or nothing at all: the
    // whole override is refused, each error naming the rule and the field.
    let clash = operator_rule("op-2", &target.name, "X", "match");
    let failing = operator_rule("op-3", "acme_failing", "Y", "no-match");
    for (text, says) in [
        (format!("{added}---\n{clash}"), "name:"),
        (format!("{added}---\n{failing}"), "rsigma.exemplars"),
        ("# nothing\n".to_owned(), "holds no rule"),
        ("title: [unclosed\n".to_owned(), "ssm:v4"),
    ] {
        let errors = Pack::with_override("ssm:v4", &text).unwrap_err();
        let said: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            said.iter()
                .any(|e| e.starts_with("ssm:v4") && e.contains(says)),
            "{says:?} not in {said:#?}"
        );
    }
}
