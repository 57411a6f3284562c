//! What an outsider can make Vigil see. A finding someone outside the account can cause with no
//! foothold in it (traffic sent to an instance, a name it is made to look up) never acts without
//! a person: otherwise an outsider could have Vigil quarantine production on demand. Nor does
//! another product's finding through Security Hub, which Vigil cannot judge. Pure.

use crate::domain::{Incident, ResourceKind, SignalKind};

/// Marks of GuardDuty findings that come from DNS lookups: anyone who can make the resource
/// resolve a name (an address typed into a sign-up form, a webhook, a URL it fetches) causes
/// them.
const DNS_MARKS: [&str; 4] = [
    "!DNS",
    "DomainRequest",
    "DNSDataExfiltration",
    "DNSRebinding",
];

/// Why an outsider could have caused the incident's evidence, when they could.
pub fn could_cause(incident: &Incident) -> Option<String> {
    let on_instance = incident.resource.kind == ResourceKind::Instance;
    incident.evidence.iter().find_map(|e| {
        let signal = &e.observation.signal;
        match crate::events::securityhub_product(signal) {
            Some(product) => Some(format!(
                "a finding of another product ({product}, through Security Hub), which Vigil cannot judge for itself: a person decides"
            )),
            None => finding(&signal.kind, on_instance),
        }
    })
}

fn finding(kind: &SignalKind, on_instance: bool) -> Option<String> {
    let SignalKind::Finding {
        finding_type,
        resource_role,
        ..
    } = kind
    else {
        return None;
    };
    let Some((_, family)) = finding_type.split_once('/') else {
        return Some(format!(
            "{finding_type:?} is not a GuardDuty finding type Vigil can judge"
        ));
    };
    if DNS_MARKS.iter().any(|m| family.contains(m)) {
        return Some(format!(
            "{finding_type} comes from a DNS lookup, which anyone who can make the resource resolve a name (an address in a sign-up form, a webhook, a URL it fetches) can cause"
        ));
    }
    if on_instance && resource_role.as_deref() != Some("ACTOR") {
        let role = resource_role
            .as_deref()
            .map_or("target (no role given)".to_owned(), str::to_ascii_lowercase);
        return Some(format!(
            "GuardDuty names the instance as the {role} of {finding_type}, not its actor: traffic from outside can cause it"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(finding_type: &str, role: Option<&str>, on_instance: bool, outsider: bool) {
        let kind = SignalKind::Finding {
            finding_id: "f".into(),
            finding_type: finding_type.into(),
            severity: 8.0,
            title: String::new(),
            archived: false,
            count: 1,
            resource_role: role.map(str::to_owned),
            sample: false,
        };
        assert_eq!(
            finding(&kind, on_instance).is_some(),
            outsider,
            "{finding_type} {role:?}: {:?}",
            finding(&kind, on_instance)
        );
    }

    #[test]
    fn findings_an_outsider_can_cause_are_told_apart() {
        // Inbound: the instance is the target.
        check(
            "UnauthorizedAccess:EC2/TorIPCaller",
            Some("TARGET"),
            true,
            true,
        );
        check(
            "Recon:EC2/PortProbeUnprotectedPort",
            Some("TARGET"),
            true,
            true,
        );
        check(
            "UnauthorizedAccess:EC2/SSHBruteForce",
            Some("TARGET"),
            true,
            true,
        );
        // No role given: assumed the target.
        check("Backdoor:EC2/C&CActivity.B", None, true, true);
        // DNS lookups, whatever the role.
        check(
            "CryptoCurrency:EC2/BitcoinTool.B!DNS",
            Some("ACTOR"),
            true,
            true,
        );
        check("Trojan:EC2/DNSDataExfiltration", Some("ACTOR"), true, true);
        check(
            "Impact:EC2/MaliciousDomainRequest.Reputation",
            Some("ACTOR"),
            true,
            true,
        );
        check(
            "Trojan:EC2/DGADomainRequest.C!DNS",
            Some("ACTOR"),
            true,
            true,
        );
        // The instance acted: it opened the connection itself.
        check(
            "CryptoCurrency:EC2/BitcoinTool.B",
            Some("ACTOR"),
            true,
            false,
        );
        check(
            "UnauthorizedAccess:EC2/TorClient",
            Some("ACTOR"),
            true,
            false,
        );
        check(
            "UnauthorizedAccess:EC2/SSHBruteForce",
            Some("ACTOR"),
            true,
            false,
        );
        // A credential used from outside: only its holder can cause it.
        check(
            "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
            Some("TARGET"),
            false,
            false,
        );
        // A type Vigil cannot read is not trusted.
        check("garbage", Some("ACTOR"), true, true);
    }
}
