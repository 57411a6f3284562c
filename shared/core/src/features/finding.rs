//! A GuardDuty finding's features ([`super::FINDING_V1`]): its severity, whether it is
//! archived, how often it was seen, and its threat purpose's family.

fn flag(b: bool) -> f64 {
    f64::from(u8::from(b))
}

/// GuardDuty finding families (the `ThreatPurpose` of the finding type), in feature order.
pub const FINDING_FAMILIES: [&str; 12] = [
    "Backdoor",
    "Behavior",
    "CryptoCurrency",
    "CredentialAccess",
    "DefenseEvasion",
    "Discovery",
    "Execution",
    "Exfiltration",
    "Impact",
    "InitialAccess",
    "Persistence",
    "PrivilegeEscalation",
];

/// Threat purposes GuardDuty also uses, mapped onto [`FINDING_FAMILIES`].
fn family_index(purpose: &str) -> Option<usize> {
    let canonical = match purpose {
        "Recon" => "Discovery",
        "Stealth" => "DefenseEvasion",
        "Trojan" => "Backdoor",
        "UnauthorizedAccess" => "InitialAccess",
        "Policy" | "PenTest" => "Behavior",
        other => other,
    };
    FINDING_FAMILIES.iter().position(|f| *f == canonical)
}

/// The names of [`super::FINDING_V1`], in order.
pub fn finding_names() -> Vec<String> {
    let mut names = vec![
        "severity".to_owned(),
        "archived".to_owned(),
        "count_log".to_owned(),
    ];
    names.extend(
        FINDING_FAMILIES
            .iter()
            .map(|f| format!("family_{}", f.to_lowercase())),
    );
    names
}

/// Features of a GuardDuty finding.
pub fn finding(finding_type: &str, severity: f64, archived: bool, count: u64) -> Vec<f64> {
    let mut out = vec![0.0; 3 + FINDING_FAMILIES.len()];
    out[0] = if severity.is_finite() {
        (severity / 10.0).clamp(0.0, 1.0)
    } else {
        0.0
    };
    out[1] = flag(archived);
    out[2] = (count as f64).ln_1p();
    let purpose = finding_type.split(':').next().unwrap_or("");
    if let Some(i) = family_index(purpose) {
        out[3 + i] = 1.0;
    }
    out
}
