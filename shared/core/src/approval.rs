//! Approval links: what a person clicks in an approval email. Pure.
//!
//! A link carries a token: the decision, the verdict (approve or deny), an expiry and a
//! nonce, signed with HMAC-SHA256 under a key only the stack holds. The approve handler
//! accepts a token once (the nonce is claimed), before it expires, and only if the signature
//! is the stack's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

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
    decision_id: &str,
    now: DateTime<Utc>,
    nonce: impl Fn(Verdict) -> String,
) -> Result<(String, String), ApprovalError> {
    let expires_at = now + chrono::Duration::hours(LINK_HOURS);
    let link = |verdict| -> Result<String, ApprovalError> {
        let token = Token {
            decision_id: decision_id.to_owned(),
            verdict,
            expires_at,
            nonce: nonce(verdict),
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

    #[test]
    fn links_carry_both_verdicts() {
        let (yes, no) = links(
            KEY,
            "https://x.lambda-url.eu-west-1.on.aws/",
            "d-9",
            t0(),
            |v| format!("{v:?}"),
        )
        .unwrap();
        let t = |link: &str| verify(KEY, link.split_once("?t=").unwrap().1, t0()).unwrap();
        assert_eq!(t(&yes).verdict, Verdict::Approve);
        assert_eq!(t(&no).verdict, Verdict::Deny);
        assert_eq!(t(&yes).decision_id, "d-9");
        assert!(yes.starts_with("https://x.lambda-url.eu-west-1.on.aws?t="));
    }
}
