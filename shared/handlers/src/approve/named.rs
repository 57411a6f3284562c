//! Verdicts by named approvers: an IAM principal signs its request to the stack's
//! `ApproverUrl` (a function URL with IAM authentication), so Lambda, not the request, says who
//! sent it. The policy's `approvals` names whose verdict counts and how many distinct approvers
//! an approval needs; one denial by a named approver denies. Every verdict, counted or refused,
//! is in the audit trail with the principal.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::{
    ALREADY_DECIDED, MAX_BODY_BYTES, Page, Setup, carry_out, claim_or_page, describe, reconsider,
    within_rate,
};
use crate::ports::{AppendAudit, LoadPendingApproval, ReadPolicy, TakeQuota};
use crate::remediate::RemediatePorts;
use vigil_core::approval::Verdict;
use vigil_core::domain::{Code, Reason};
use vigil_core::policy::approvals;

/// A named approver's request: the decision and the verdict.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    decision: String,
    verdict: Verdict,
}

/// How long a named approver's vote waits for the others: as long as a link is good for.
const VOTE_HOURS: i64 = vigil_core::approval::LINK_HOURS;

/// The caller Lambda authenticated, when the request came through the IAM-authenticated URL.
pub fn caller(http: &LambdaFunctionUrlRequest) -> Option<&str> {
    http.request_context
        .authorizer
        .as_ref()?
        .iam
        .as_ref()?
        .user_arn
        .as_deref()
}

/// Answers a named approver's request: `POST` with `{"decision": "...", "verdict":
/// "approve"|"deny"}`.
pub async fn respond<P, R>(
    http: &LambdaFunctionUrlRequest,
    caller_arn: &str,
    request: &str,
    setup: &Setup<'_, R>,
    ports: &P,
    now: DateTime<Utc>,
) -> Page
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
    R: ReadPolicy,
{
    let method = http.request_context.http.method.as_deref().unwrap_or("");
    if !method.eq_ignore_ascii_case("POST") {
        return Page::new(
            405,
            "Not allowed",
            "Send a POST with the decision and the verdict: nothing was changed.",
        );
    }
    let ask = match body(http) {
        Ok(ask) => ask,
        Err(page) => return page,
    };
    let (policy, _) = setup.store.current(setup.policy, ports.alerts()).await;
    let by = serde_json::json!({
        "caller": vigil_core::names::display_text(caller_arn, 512),
        "request": request,
        "source_ip": http.request_context.http.source_ip.as_deref().unwrap_or("unknown"),
    });
    let Some(principal) = approvals::principal(caller_arn).filter(|p| policy.approvals.names(p))
    else {
        tracing::warn!(vigil_unnamed_approvers = 1, caller = %vigil_core::names::display_text(caller_arn, 512), "a verdict from a principal the policy does not name was refused");
        let record = serde_json::json!({"refused": "not a named approver", "verdict": ask.verdict, "at": now, "by": by});
        let _ = ports
            .audit()
            .append("approval-refused", &ask.decision, record, now)
            .await;
        return Page::new(
            403,
            "Not an approver",
            "The policy in force does not name you as an approver: nothing was changed, and the attempt is recorded.",
        );
    };
    let decision = match ports.history().load_pending(&ask.decision, now).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Page::new(
                404,
                "Nothing to approve",
                "This decision is not waiting for approval (it expired, was decided or is unknown): nothing was changed.",
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
    if let Err(page) = within_rate(ports, now).await {
        return page;
    }
    let state = ports.history();
    let until = now + chrono::Duration::hours(VOTE_HOURS);
    // One verdict per approver per decision.
    if let Err(page) = claim_or_page(
        state,
        &vigil_core::keys::approval_vote(&decision.id, &principal),
        request,
        now,
        until,
        (
            "Already given",
            "You have already given your verdict on this decision: nothing more was changed.",
        ),
    )
    .await
    {
        return page;
    }
    let required = policy.approvals.required;
    let votes = match ask.verdict {
        Verdict::Deny => 0,
        Verdict::Approve => match state
            .take(
                &vigil_core::keys::approval_votes(&decision.id),
                u32::MAX,
                until,
            )
            .await
        {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => {
                return Page::new(
                    503,
                    "Not counted",
                    "Your approval could not be counted: nothing was changed; send it again.",
                );
            }
        },
    };
    let record = serde_json::json!({
        "verdict": ask.verdict,
        "at": now,
        "by": by,
        "principal": principal,
        "approvals": votes,
        "required": required,
    });
    if let Err(e) = ports
        .audit()
        .append("approval-vote", &decision.id, record, now)
        .await
    {
        return Page::new(
            503,
            "Not recorded",
            format!(
                "the audit trail could not record your verdict ({e}): nothing was changed, and your verdict on this decision is used up; act by hand."
            ),
        );
    }
    if ask.verdict == Verdict::Approve && votes < required {
        return Page::new(
            202,
            "Approval counted",
            format!(
                "{votes} of {required} named approvals for {}: nothing is done until {} more.",
                describe(&decision),
                required - votes
            ),
        );
    }
    // Enough approvals, or a denial: the decision's one verdict.
    if let Err(page) = claim_or_page(
        state,
        &vigil_core::keys::approval_decided(&decision.id),
        request,
        now,
        until,
        ALREADY_DECIDED,
    )
    .await
    {
        return page;
    }
    let action = describe(&decision);
    let decided = match ask.verdict {
        Verdict::Approve => {
            let reason = Reason::new(
                Code::Approval,
                format!(
                    "approved by {votes} named approver(s), the last {principal} at {now} (every verdict in the audit trail)"
                ),
            );
            match reconsider(decision, reason, setup, ports, request, now).await {
                Ok(d) => d,
                Err(page) => return page,
            }
        }
        Verdict::Deny => {
            let mut d = decision;
            d.decided_at = now;
            d.hold(Reason::new(
                Code::Approval,
                format!("denied by the named approver {principal} at {now}: not acting"),
            ))
        }
    };
    carry_out(&decided, ask.verdict, request, &action, setup, ports, now).await
}

/// The request's JSON body, within [`MAX_BODY_BYTES`].
fn body(http: &LambdaFunctionUrlRequest) -> Result<Request, Page> {
    let bad = |m: &str| Page::new(400, "Bad request", format!("{m}: nothing was changed."));
    let raw = http.body.as_deref().unwrap_or("");
    if raw.len() > MAX_BODY_BYTES {
        return Err(bad("the request is too large"));
    }
    let bytes = if http.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| bad("the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    let ask: Request = serde_json::from_slice(&bytes).map_err(|_| {
        bad(r#"send {"decision": "<decision id>", "verdict": "approve" or "deny"}"#)
    })?;
    if ask.decision.is_empty() || ask.decision.len() > 512 {
        return Err(bad("the decision id is missing or too long"));
    }
    Ok(ask)
}
