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
}

#[test]
fn every_document_parameter_has_an_allowed_pattern() {
    for source in [
        "infra/ssm/restart-service.yaml",
        "infra/ssm/deactivate-access-key.yaml",
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
        Value::from(vigil_shared::names::SERVICE_NAME_PATTERN)
    );
}
