//! Security Hub Findings - Imported: another product's finding (AWS Security Finding Format),
//! read like a GuardDuty finding. Vigil's own findings (the account's own product, where
//! `securityhub.rs` imports them) are never read back. Which products count is the stack's
//! allow-list, applied by `ingest` ([`product`] names a signal's product); a finding of another
//! product is something an outsider may have caused, so it never acts without a person
//! (`policy::outsiders`).

use super::*;

/// The most findings one event may carry (Security Hub sends one).
const MAX_FINDINGS: usize = 10;

#[derive(Debug, Deserialize)]
pub(super) struct ImportedDetail {
    findings: Vec<Asff>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Asff {
    id: String,
    product_arn: String,
    #[serde(default)]
    product_name: Option<String>,
    aws_account_id: String,
    #[serde(default)]
    types: Vec<String>,
    severity: AsffSeverity,
    #[serde(default)]
    title: String,
    #[serde(default)]
    resources: Vec<AsffResource>,
    #[serde(default)]
    record_state: Option<String>,
    #[serde(default)]
    workflow: Option<AsffWorkflow>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffSeverity {
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    normalized: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffResource {
    #[serde(rename = "Type")]
    kind: String,
    id: String,
    /// Where the resource is: a finding aggregated from another Region says so here.
    #[serde(default)]
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AsffWorkflow {
    #[serde(default)]
    status: Option<String>,
}

/// What a finding's type says it is, as a GuardDuty threat purpose the scoring reads (the
/// ASFF `Types` namespaces: TTPs by tactic, Effects, Unusual Behaviors; checks and sensitive
/// data are posture, `Policy`).
fn purpose(types: &[String]) -> &'static str {
    for t in types {
        let mut parts = t.split('/');
        let (namespace, category) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let p = match (namespace, category) {
            ("TTPs", "Initial Access") => "InitialAccess",
            ("TTPs", "Execution" | "Lateral Movement") => "Execution",
            ("TTPs", "Persistence") => "Persistence",
            ("TTPs", "Privilege Escalation") => "PrivilegeEscalation",
            ("TTPs", "Defense Evasion") => "DefenseEvasion",
            ("TTPs", "Credential Access") => "CredentialAccess",
            ("TTPs", "Discovery") => "Discovery",
            ("TTPs", "Collection" | "Exfiltration") => "Exfiltration",
            ("TTPs", "Command and Control") => "Backdoor",
            ("TTPs", _) => "Impact",
            ("Effects", "Data Exfiltration" | "Data Exposure") => "Exfiltration",
            ("Effects", "Resource Consumption") => "CryptoCurrency",
            ("Effects", _) => "Impact",
            ("Unusual Behaviors", _) => "Behavior",
            _ => continue,
        };
        return p;
    }
    "Policy"
}

/// The product a Security Hub finding's signal came from (its finding type is
/// `<purpose>:SecurityHub/<product>`); `None` for any other signal.
pub fn product(signal: &Signal) -> Option<&str> {
    match (&signal.source, &signal.kind) {
        (Source::SecurityHub, SignalKind::Finding { finding_type, .. }) => {
            finding_type.split_once(":SecurityHub/").map(|(_, p)| p)
        }
        _ => None,
    }
}

/// ASFF's severity on GuardDuty's 0-10 scale: `Normalized` (0-100) divided by ten, else the
/// label's band.
fn severity(s: &AsffSeverity) -> Option<f64> {
    if let Some(n) = s.normalized {
        return (n.is_finite() && (0.0..=100.0).contains(&n)).then_some(n / 10.0);
    }
    Some(match s.label.as_deref()? {
        "CRITICAL" => 9.0,
        "HIGH" => 7.0,
        "MEDIUM" => 5.0,
        "LOW" => 2.0,
        "INFORMATIONAL" => 0.0,
        _ => return None,
    })
}

pub(super) fn imported(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: ImportedDetail = ctx.detail()?;
    if d.findings.is_empty() || d.findings.len() > MAX_FINDINGS {
        return Err(ctx.unusable(format!(
            "{} findings in one event (1 to {MAX_FINDINGS})",
            d.findings.len()
        )));
    }
    let mut signals = Vec::with_capacity(d.findings.len());
    for f in &d.findings {
        let account = &f.aws_account_id;
        if !(account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ctx.unusable(format!(
                "AwsAccountId {:?} is not an account id",
                display_text(account, 32)
            )));
        }
        // The account's own product is where Vigil imports its findings: never read back.
        if f.product_arn
            .ends_with(&format!(":product/{account}/default"))
        {
            continue;
        }
        let product = f
            .product_name
            .as_deref()
            .or_else(|| f.product_arn.rsplit('/').next())
            .unwrap_or("unknown");
        let product = word(&ctx, "ProductName", product)?;
        let severity =
            severity(&f.severity).ok_or_else(|| ctx.unusable("the finding has no severity"))?;
        let resource = match f.resources.first() {
            Some(r) if r.kind == "AwsEc2Instance" => {
                let id = r.id.rsplit('/').next().unwrap_or(&r.id);
                Resource::instance(
                    &InstanceId::parse(id).map_err(|e| ctx.invalid("Resources[0].Id", e))?,
                )
            }
            Some(r) if r.kind == "AwsIamAccessKey" && access_key_id(&r.id) => {
                Resource::new(ResourceKind::AccessKey, &r.id)
            }
            Some(r) if matches!(r.kind.as_str(), "AwsIamUser" | "AwsIamRole") => {
                Resource::new(ResourceKind::Principal, display_text(&r.id, 2048))
            }
            Some(r) => Resource::new(ResourceKind::Other, display_text(&r.kind, 64))
                .with_arn(Some(display_text(&r.id, 2048))),
            None => Resource::new(ResourceKind::Other, "unknown"),
        };
        // A member account's finding, received by the administrator account: told, not acted
        // on (as GuardDuty's).
        let mut resource = resource;
        if event.account.as_deref().is_some_and(|own| own != account) {
            resource.account = Some(account.clone());
        }
        resource.region = f
            .resources
            .first()
            .and_then(|r| r.region.as_deref())
            .filter(|r| crate::names::is_region(r))
            .map(str::to_owned);
        let archived = f.record_state.as_deref() == Some("ARCHIVED")
            || f.workflow
                .as_ref()
                .and_then(|w| w.status.as_deref())
                .is_some_and(|s| matches!(s, "SUPPRESSED" | "RESOLVED"));
        let observed_at = ctx.time(f.updated_at.as_deref())?;
        let mut signal = ctx.signal(
            Source::SecurityHub,
            resource,
            observed_at,
            SignalKind::Finding {
                finding_id: display_text(&f.id, 128),
                finding_type: format!("{}:SecurityHub/{product}", purpose(&f.types)),
                severity,
                title: display_text(&f.title, 512),
                archived,
                count: 1,
                resource_role: None,
                sample: false,
            },
        );
        signal.values.insert("severity".into(), severity);
        signals.push(signal);
    }
    Ok(signals)
}
