//! `approve`: a person clicked an approve or deny link from an approval email.
//!
//! The link's token must be the stack's (HMAC), unexpired and unused; the decision must still
//! be pending and not yet decided by its other link. An approval runs the decision's action
//! through the same `remediate` path (kill switch, verification, audit, email); a denial is
//! recorded and told. Every refusal changes nothing.

use chrono::{DateTime, Utc};
use vigil_core::domain::Code;

use super::remediate::{self, RemediateConfig, RemediatePorts};
use crate::ports::{AppendAudit, Claim, ClaimOnce, LoadPendingApproval};
use vigil_core::approval::{self, ApprovalError, Verdict};
use vigil_core::domain::Reason;

/// What the person's browser shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub title: String,
    pub message: String,
}

impl Page {
    fn new(status: u16, title: &str, message: impl Into<String>) -> Page {
        Page {
            status,
            title: title.to_owned(),
            message: message.into(),
        }
    }

    /// The page as a small HTML document, every text escaped.
    pub fn html(&self) -> String {
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Vigil: {t}</title></head><body><h1>{t}</h1><p>{m}</p></body></html>",
            t = escape(&self.title),
            m = escape(&self.message)
        )
    }
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// Handles one click. `key` is the signing key (`None` when it could not be read: nothing is
/// accepted then); `request` identifies this click (the Lambda request id), so a second click
/// is a second claimant.
pub async fn handle<P>(
    token: Option<&str>,
    key: Option<&[u8]>,
    request: &str,
    now: DateTime<Utc>,
    config: &RemediateConfig,
    ports: &P,
) -> Page
where
    P: RemediatePorts,
    P::History: LoadPendingApproval + ClaimOnce,
{
    let Some(key) = key else {
        return Page::new(
            503,
            "Unavailable",
            "Approvals are not configured on this stack: nothing was changed.",
        );
    };
    let Some(text) = token.filter(|t| !t.is_empty()) else {
        return Page::new(
            400,
            "Bad link",
            "The link has no token: nothing was changed.",
        );
    };
    let token = match approval::verify(key, text, now) {
        Ok(t) => t,
        Err(ApprovalError::Expired(at)) => {
            return Page::new(
                410,
                "Link expired",
                format!("This link expired at {at}: nothing was changed."),
            );
        }
        Err(ApprovalError::Forged) => {
            tracing::warn!(vigil_forged_approvals = 1, "forged approval link refused");
            return Page::new(
                403,
                "Refused",
                "This link is not valid: nothing was changed.",
            );
        }
        Err(e) => return Page::new(400, "Bad link", format!("{e}: nothing was changed.")),
    };
    let state = ports.history();
    // Load before claiming, so a failed read can be retried with the same link.
    let decision = match state.load_pending(&token.decision_id, now).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Page::new(
                404,
                "Nothing to approve",
                "This decision is no longer waiting (it expired or is unknown): nothing was changed.",
            );
        }
        Err(e) => {
            return Page::new(
                503,
                "Try again",
                format!("{}: nothing was changed.", vigil_core::error_chain(&e)),
            );
        }
    };
    // One use per link, one verdict per decision.
    for key in [
        vigil_core::keys::approval_link(&token.nonce),
        vigil_core::keys::approval_decided(&token.decision_id),
    ] {
        match state.claim(&key, request, now, token.expires_at).await {
            Ok(Claim::Won) => {}
            Ok(Claim::Held) => {
                return Page::new(
                    409,
                    "Already decided",
                    "This decision was already approved or denied: nothing more was changed.",
                );
            }
            Err(e) => {
                return Page::new(
                    503,
                    "Try again",
                    format!("{}: nothing was changed.", vigil_core::error_chain(&e)),
                );
            }
        }
    }
    let verdict = token.verdict;
    if let Err(e) = ports
        .audit()
        .append(
            "approval",
            &decision.id,
            serde_json::json!({"verdict": verdict, "at": now}),
            now,
        )
        .await
    {
        // The link is spent (claimed above): saying "try again" would send people to a 409.
        return Page::new(
            503,
            "Not recorded",
            format!(
                "the audit trail could not record the verdict ({e}): nothing was changed, and this link is used up; act by hand or wait for the next decision."
            ),
        );
    }
    let mut d = decision;
    d.decided_at = now;
    let d = match verdict {
        Verdict::Approve => d.approved(Reason::new(
            Code::Approval,
            format!("approved by a person through the signed link at {now}"),
        )),
        Verdict::Deny => d.hold(Reason::new(
            Code::Approval,
            format!("denied by a person through the signed link at {now}: not acting"),
        )),
    };
    let action = d
        .action
        .as_ref()
        .map_or_else(|| "nothing".to_owned(), ToString::to_string);
    match remediate::handle(&d, config, ports, now).await {
        Ok(outcome) => Page::new(
            200,
            match verdict {
                Verdict::Approve => "Approved",
                Verdict::Deny => "Denied",
            },
            format!("{action}: {:?}: {}", outcome.status, outcome.detail),
        ),
        Err(e) => Page::new(
            500,
            "Carried out, not told",
            format!("{action}: {}", vigil_core::error_chain(&e)),
        ),
    }
}
