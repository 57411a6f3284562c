//! Approval links: what a person clicks in an approval email. Pure.
//!
//! A link carries a token: the decision, the verdict (approve or deny), an expiry, a nonce
//! and the [`digest`] of the decision as the email showed it, signed with HMAC-SHA256 under a
//! key only the stack holds. The approve handler accepts a token once (the nonce is claimed),
//! before it expires, only if the signature is the stack's, and only for the decision it was
//! signed for: a pending decision whose action, target or incident was changed after the email
//! was sent no longer matches its digest.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Decision;

type HmacSha256 = Hmac<Sha256>;

/// How long an approval link works.
pub const LINK_HOURS: i64 = 24;
/// The shortest signing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The longest token accepted, in characters (a link is never this long).
pub const MAX_TOKEN_CHARS: usize = 2048;

/// What the person says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Deny,
}

/// The signed content of a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub decision_id: String,
    pub verdict: Verdict,
    pub expires_at: DateTime<Utc>,
    /// Unique per link: the key of its single use.
    pub nonce: String,
    /// The [`digest`] of the decision the link was sent for. Empty in links signed by releases
    /// that did not bind them: those are refused.
    #[serde(default)]
    pub digest: String,
}

impl Token {
    /// Whether the token was signed for this decision, as it is now.
    pub fn binds(&self, decision: &Decision) -> bool {
        !self.digest.is_empty()
            && self.decision_id == decision.id
            && self.digest == digest(decision)
    }
}

/// What a person approves, as the approval email shows it: the decision, its incident, the
/// resource and the action (kind, target and parameters). SHA-256 over their JSON, base64url.
pub fn digest(decision: &Decision) -> String {
    let shown = serde_json::json!({
        "decision": decision.id,
        "incident": decision.incident.id,
        "resource": decision.incident.resource.id,
        "kind": decision.incident.resource.kind,
        "account": decision.incident.resource.account,
        "action": decision.action,
    });
    URL_SAFE_NO_PAD.encode(Sha256::digest(shown.to_string().as_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("the signing key is shorter than {MIN_KEY_BYTES} bytes")]
    WeakKey,
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature is not the stack's: it was forged or altered")]
    Forged,
    #[error("the link expired at {0}")]
    Expired(DateTime<Utc>),
}

fn mac(key: &[u8]) -> Result<HmacSha256, ApprovalError> {
    if key.len() < MIN_KEY_BYTES {
        return Err(ApprovalError::WeakKey);
    }
    HmacSha256::new_from_slice(key).map_err(|_| ApprovalError::WeakKey)
}

/// Signs a token: `base64url(json).base64url(hmac)`.
pub fn sign(key: &[u8], token: &Token) -> Result<String, ApprovalError> {
    let body =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(token).map_err(|_| ApprovalError::Malformed)?);
    let mut m = mac(key)?;
    m.update(body.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    Ok(format!("{body}.{sig}"))
}

/// Checks a link's token: well formed, signed with `key` (compared in constant time), and
/// not expired at `now`. Whether it was used before is the caller's claim to make.
pub fn verify(key: &[u8], text: &str, now: DateTime<Utc>) -> Result<Token, ApprovalError> {
    if text.len() > MAX_TOKEN_CHARS {
        return Err(ApprovalError::Malformed);
    }
    let (body, sig) = text.split_once('.').ok_or(ApprovalError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| ApprovalError::Malformed)?;
    let mut m = mac(key)?;
    m.update(body.as_bytes());
    m.verify_slice(&sig).map_err(|_| ApprovalError::Forged)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| ApprovalError::Malformed)?;
    let token: Token = serde_json::from_slice(&bytes).map_err(|_| ApprovalError::Malformed)?;
    if now >= token.expires_at {
        return Err(ApprovalError::Expired(token.expires_at));
    }
    Ok(token)
}

/// The approve and deny links of a decision, under `base_url` (the approve function's URL).
pub fn links(
    key: &[u8],
    base_url: &str,
    decision: &Decision,
    now: DateTime<Utc>,
    nonce: impl Fn(Verdict) -> String,
) -> Result<(String, String), ApprovalError> {
    let expires_at = now + chrono::Duration::hours(LINK_HOURS);
    let digest = digest(decision);
    let link = |verdict| -> Result<String, ApprovalError> {
        let token = Token {
            decision_id: decision.id.clone(),
            verdict,
            expires_at,
            nonce: nonce(verdict),
            digest: digest.clone(),
        };
        Ok(format!(
            "{}?t={}",
            base_url.trim_end_matches('/'),
            sign(key, &token)?
        ))
    };
    Ok((link(Verdict::Approve)?, link(Verdict::Deny)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    fn token() -> Token {
        Token {
            decision_id: "d-1".into(),
            verdict: Verdict::Approve,
            expires_at: t0() + chrono::Duration::hours(1),
            nonce: "n-1".into(),
            digest: "x".into(),
        }
    }

    fn check(text: &str, key: &[u8], now: DateTime<Utc>, expect: Result<Token, ApprovalError>) {
        assert_eq!(verify(key, text, now), expect, "{text}");
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let t = sign(KEY, &token()).unwrap();
        check(&t, KEY, t0(), Ok(token()));
        check(
            &t,
            KEY,
            t0() + chrono::Duration::hours(1),
            Err(ApprovalError::Expired(token().expires_at)),
        );
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let t = sign(KEY, &token()).unwrap();
        // Another key.
        check(
            &t,
            b"another key, long enough to be used!",
            t0(),
            Err(ApprovalError::Forged),
        );
        // The verdict flipped in the body, signature kept.
        let (_, sig) = t.split_once('.').unwrap();
        let deny = Token {
            verdict: Verdict::Deny,
            ..token()
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&deny).unwrap());
        check(
            &format!("{body}.{sig}"),
            KEY,
            t0(),
            Err(ApprovalError::Forged),
        );
        // Garbage.
        for bad in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert!(verify(KEY, bad, t0()).is_err(), "{bad:?}");
        }
        check(&"a".repeat(5000), KEY, t0(), Err(ApprovalError::Malformed));
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(sign(b"short", &token()), Err(ApprovalError::WeakKey));
    }

    fn decision(id: &str, by: u32) -> Decision {
        use crate::domain::{
            Action, FailureMode, Incident, Mode, Resource, ResourceKind, Severity, Tier,
        };
        Decision {
            id: id.into(),
            incident: Incident {
                id: "inc-1".into(),
                resource: Resource::new(ResourceKind::AutoScalingGroup, "web"),
                failure_mode: FailureMode::CpuRunaway,
                threat: None,
                severity: Severity::High,
                confidence: 0.9,
                opened_at: t0(),
                evidence: Vec::new(),
            },
            tier: Tier::Approval,
            action: Some(Action::ScaleOut {
                group: crate::names::GroupName::parse("web").unwrap(),
                by,
            }),
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: t0(),
        }
    }

    #[test]
    fn links_carry_both_verdicts_bound_to_the_decision_shown() {
        let shown = decision("d-9", 1);
        let (yes, no) = links(
            KEY,
            "https://x.lambda-url.eu-west-1.on.aws/",
            &shown,
            t0(),
            |v| format!("{v:?}"),
        )
        .unwrap();
        let t = |link: &str| verify(KEY, link.split_once("?t=").unwrap().1, t0()).unwrap();
        assert_eq!(t(&yes).verdict, Verdict::Approve);
        assert_eq!(t(&no).verdict, Verdict::Deny);
        assert_eq!(t(&yes).decision_id, "d-9");
        assert!(yes.starts_with("https://x.lambda-url.eu-west-1.on.aws?t="));
        // Bound to what was shown: the same decision read back, not one with another action,
        // another id or another resource.
        assert!(t(&yes).binds(&shown));
        let mut tiered = shown.clone();
        tiered.reasons.push(crate::domain::Reason::new(
            crate::domain::Code::Approval,
            "reasons are not what is approved",
        ));
        assert!(t(&yes).binds(&tiered));
        assert!(!t(&yes).binds(&decision("d-9", 5)));
        assert!(!t(&yes).binds(&decision("d-8", 1)));
        let mut elsewhere = shown.clone();
        elsewhere.incident.resource.id = "api".into();
        assert!(!t(&yes).binds(&elsewhere));
        // A token signed without a digest (an earlier release's link) binds nothing.
        let unbound = Token {
            digest: String::new(),
            ..t(&yes)
        };
        assert!(!unbound.binds(&shown));
    }
}
