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
use crate::ports::{
    AppendAudit, LoadPendingApproval, LoadUndoable, PublishAlert, ReadPolicy, SavePendingApproval,
    TakeQuota,
};
use crate::remediate::RemediatePorts;
use vigil_core::approval::Verdict;
use vigil_core::domain::{Code, Reason};
use vigil_core::policy::approvals;

/// A named approver's request: a verdict on a decision waiting for approval, or an undo of a
/// decision's action (`vigil undo`), which is an approval of the undo by the one who asks.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum Body {
    Verdict(Request),
    Undo(UndoRequest),
}

/// A verdict: the decision and the verdict.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    decision: String,
    verdict: Verdict,
}

/// An undo: the decision whose action is undone.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UndoRequest {
    undo: String,
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
/// "approve"|"deny"}`, or `{"undo": "<decision id>"}`: the undo of that decision's action is
/// opened (once) as a decision waiting for approval, and the asker's request is its first
/// approval.
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
    P::History: LoadPendingApproval + LoadUndoable,
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
    let (mut ask, undo) = match body(http) {
        Ok(Body::Verdict(ask)) => (ask, false),
        Ok(Body::Undo(UndoRequest { undo })) => (
            Request {
                decision: undo,
                verdict: Verdict::Approve,
            },
            true,
        ),
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
        let record = serde_json::json!({"refused": "not a named approver", "verdict": ask.verdict, "undo": undo, "at": now, "by": by});
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
    if undo {
        match open_undo(
            &ask.decision,
            &principal,
            &by,
            policy.approvals.required,
            ports,
            now,
        )
        .await
        {
            Ok(id) => ask.decision = id,
            Err(page) => return page,
        }
    }
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

/// Opens the undo of decision `original`'s action, asked for by the named approver
/// `principal`: a decision of its own ([`vigil_core::undo::decision`]) waiting for approval,
/// recorded in the audit trail. Opened once: asked again (by another approver), the undo
/// already waiting is the one voted on. Returns the undo's decision id.
async fn open_undo<P>(
    original: &str,
    principal: &str,
    by: &serde_json::Value,
    required: u32,
    ports: &P,
    now: DateTime<Utc>,
) -> Result<String, Page>
where
    P: RemediatePorts,
    P::History: LoadPendingApproval + LoadUndoable,
{
    let unavailable = |e: &crate::ports::PortError| {
        Page::new(
            503,
            "Try again",
            format!("{}: nothing was changed.", vigil_core::error_chain(e)),
        )
    };
    let state = ports.history();
    let id = vigil_core::undo::id(original);
    if state
        .load_pending(&id, now)
        .await
        .map_err(|e| unavailable(&e))?
        .is_some()
    {
        return Ok(id);
    }
    let nothing = || {
        Page::new(
            404,
            "Nothing to undo",
            format!(
                "Decision {original} took no action Vigil can undo (none with an inverse, none carried out, or more than {} days ago): nothing was changed.",
                vigil_core::undo::KEEP_DAYS
            ),
        )
    };
    let taken = state
        .load_undoable(original, now)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(nothing)?;
    let undo = vigil_core::undo::decision(&taken, principal, now).map_err(|_| nothing())?;
    let until = now + chrono::Duration::hours(VOTE_HOURS);
    state
        .save_pending(&undo, until)
        .await
        .map_err(|e| unavailable(&e))?;
    let record = serde_json::json!({
        "undo": original,
        "action": undo.action,
        "at": now,
        "by": by,
        "principal": principal,
        "required": required,
    });
    ports
        .audit()
        .append("undo-requested", &undo.id, record, now)
        .await
        .map_err(|e| unavailable(&e))?;
    if required > 1 {
        // The other approvers learn that an undo waits for them.
        let alert = vigil_core::alert::Alert {
            subject: format!("[Vigil] undo waiting for approval: {}", undo.id)
                .chars()
                .take(100)
                .collect(),
            body: format!(
                "{principal} asked to undo decision {original}: {}. It needs {required} named approvers; each approves with `vigil approve {} --url <ApproverUrl>` (or denies with --deny). Every verdict is in the audit trail.",
                super::describe(&undo),
                undo.id
            ),
            attributes: [("severity".to_owned(), "MEDIUM".to_owned())]
                .into_iter()
                .collect(),
            chat: None,
        };
        if let Err(e) = ports.alerts().publish(&alert).await {
            tracing::error!(error = %vigil_core::error_chain(&e), "undo request not told");
        }
    }
    Ok(undo.id)
}

/// The request's JSON body, within [`MAX_BODY_BYTES`].
fn body(http: &LambdaFunctionUrlRequest) -> Result<Body, Page> {
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
    let ask: Body = serde_json::from_slice(&bytes).map_err(|_| {
        bad(r#"send {"decision": "<decision id>", "verdict": "approve" or "deny"}, or {"undo": "<decision id>"}"#)
    })?;
    let id = match &ask {
        Body::Verdict(r) => &r.decision,
        Body::Undo(u) => &u.undo,
    };
    if id.is_empty() || id.len() > 512 {
        return Err(bad("the decision id is missing or too long"));
    }
    Ok(ask)
}
