//! `approve`: a person answers an approval email.
//!
//! Following a link changes nothing: a GET (or a HEAD, a mail scanner's or a chat preview's
//! prefetch) shows what the verdict would do and a button that posts it back. Only that POST
//! acts, once: the token must be the stack's (HMAC), unexpired and unused, signed for the
//! decision as it is pending now (its digest: the action, target and incident shown in the
//! email), and the decision not yet answered by its other link. An approval is decided again
//! under the policy, Mode and limits in force now (kill switch, protect tag, maintenance
//! windows, loop breaker, blast radius against current capacity, cooldown, hourly quota), then
//! runs through the same `remediate` path as any decision; a denial is recorded and told. The
//! verdict is recorded in the audit trail with who sent it (source address, user agent,
//! request id). Every refusal changes nothing.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use chrono::{DateTime, Utc};

use super::decide::{self, PolicyStore};
use super::remediate::{self, RemediateConfig, RemediatePorts};
use crate::ports::{
    ActionHistory, AppendAudit, Claim, ClaimOnce, DescribeGroup, LoadPendingApproval, LoadUndoable,
    PublishAlert, ReadKillSwitch, ReadPolicy, TakeQuota,
};
use vigil_core::alert::Alert;
use vigil_core::approval::{self, ApprovalError, Token, Verdict};
use vigil_core::domain::{Code, Decision, Reason};
use vigil_core::policy::{Facts, Needs};

pub mod named;

/// Verdicts confirmed per minute, stack-wide: more is refused (429) and changes nothing.
pub const MAX_VERDICTS_PER_MINUTE: u32 = 20;
/// The largest form body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// What the person's browser shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub status: u16,
    pub title: String,
    pub message: String,
    /// The button that confirms the verdict, on the page a link opens.
    pub form: Option<Form>,
    /// Vigil's own metrics of what the confirmation did (the function prints them).
    pub metrics: Vec<vigil_core::telemetry::Metric>,
}

/// A form that posts a verdict's token back to the page's own address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub token: String,
    pub verdict: Verdict,
}

impl Page {
    fn new(status: u16, title: &str, message: impl Into<String>) -> Page {
        Page {
            status,
            title: title.to_owned(),
            message: message.into(),
            form: None,
            metrics: Vec::new(),
        }
    }

    /// The page as a small HTML document, every text escaped.
    pub fn html(&self) -> String {
        let form = self.form.as_ref().map_or_else(String::new, |f| {
            format!(
                "<form method=\"post\"><input type=\"hidden\" name=\"t\" value=\"{t}\"><button type=\"submit\">{b}</button></form>",
                t = escape(&f.token),
                b = match f.verdict {
                    Verdict::Approve => "Approve",
                    Verdict::Deny => "Deny",
                }
            )
        });
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>Vigil: {t}</title></head><body><h1>{t}</h1><p>{m}</p>{form}</body></html>",
            t = escape(&self.title),
            m = escape(&self.message)
        )
    }

    /// The response headers every page carries: never cached, never framed (the confirm button
    /// cannot be clicked through another site), no referrer, posting only back to itself.
    pub fn headers() -> [(&'static str, &'static str); 6] {
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            (
                "content-security-policy",
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("x-robots-tag", "noindex"),
        ]
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

/// Who sent a verdict, as the function URL saw the request: recorded with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requester {
    /// The Lambda request id: each request is a claimant of its own.
    pub request: String,
    pub source_ip: String,
    pub user_agent: String,
}

/// What the approve function is set up with.
pub struct Setup<'a, R> {
    /// The links' signing key (`None` when it could not be read: nothing is accepted then).
    pub key: Option<&'a [u8]>,
    pub remediate: &'a RemediateConfig,
    /// The policy and Mode in force, as decide reads them.
    pub store: &'a PolicyStore,
    pub policy: &'a R,
}

/// Answers one request to the function URL: GET and HEAD show, POST confirms, anything else
/// is refused. `request` is the Lambda request id.
pub async fn respond<P, R>(
    http: &LambdaFunctionUrlRequest,
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
    // Through the IAM-authenticated URL: Lambda says who signed the request.
    if let Some(caller) = named::caller(http) {
        return named::respond(http, caller, request, setup, ports, now).await;
    }
    let method = http.request_context.http.method.as_deref().unwrap_or("");
    match method.to_ascii_uppercase().as_str() {
        "GET" | "HEAD" => {
            let token = http.query_string_parameters.get("t").map(String::as_str);
            show(token, setup.key, ports, now).await
        }
        "POST" => {
            let token = match form_token(http) {
                Ok(t) => t,
                Err(page) => return page,
            };
            let who = Requester {
                request: request.to_owned(),
                source_ip: clip(http.request_context.http.source_ip.as_deref()),
                user_agent: clip(http.request_context.http.user_agent.as_deref()),
            };
            confirm(token.as_deref(), &who, setup, ports, now).await
        }
        _ => Page::new(
            405,
            "Not allowed",
            "Open the link in a browser, then confirm: nothing was changed.",
        ),
    }
}

/// At most 256 characters of what the client says about itself.
fn clip(s: Option<&str>) -> String {
    s.unwrap_or("unknown").chars().take(256).collect()
}

/// The `t` field of a POSTed form (`application/x-www-form-urlencoded`), base64 as the
/// function URL may pass it.
fn form_token(http: &LambdaFunctionUrlRequest) -> Result<Option<String>, Page> {
    let too_large = || {
        Page::new(
            413,
            "Bad request",
            "The form is too large: nothing was changed.",
        )
    };
    let body = http.body.as_deref().unwrap_or("");
    if body.len() > MAX_BODY_BYTES * 2 {
        return Err(too_large());
    }
    let bytes = if http.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| {
                Page::new(
                    400,
                    "Bad request",
                    "The form is malformed: nothing was changed.",
                )
            })?
    } else {
        body.as_bytes().to_vec()
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "t")
        .map(|(_, v)| v.into_owned()))
}

/// A link followed (GET or HEAD): checks the token and shows what the verdict would do, with a
/// button to confirm it. Reads only: nothing is claimed, written or told.
pub async fn show<P>(token: Option<&str>, key: Option<&[u8]>, ports: &P, now: DateTime<Utc>) -> Page
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
{
    let (token, text, decision) = match admit(token, key, ports, now).await {
        Ok(found) => found,
        Err(refused) => return refused.page,
    };
    let action = describe(&decision);
    let (title, message) = match token.verdict {
        Verdict::Approve => (
            "Confirm approval",
            format!(
                "Approve {action} for {}? It will be checked again against the limits and the Mode in force when you confirm. Reasons: {}",
                decision.incident.what(),
                reasons(&decision)
            ),
        ),
        Verdict::Deny => (
            "Confirm denial",
            format!(
                "Deny {action} for {}? Nothing will be done and people will be told.",
                decision.incident.what()
            ),
        ),
    };
    Page {
        form: Some(Form {
            token: text.to_owned(),
            verdict: token.verdict,
        }),
        ..Page::new(200, title, message)
    }
}

fn describe(decision: &Decision) -> String {
    decision.action.as_ref().map_or_else(
        || "nothing".to_owned(),
        |a| format!("{a} on {}", decision.incident.resource),
    )
}

fn reasons(decision: &Decision) -> String {
    decision
        .reasons
        .iter()
        .map(|r| format!("{}: {}", r.code, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a link was not admitted: the page to show and, when the token is the stack's but its
/// pending decision no longer matches it, that decision's id.
struct Refused {
    page: Page,
    altered: Option<String>,
}

impl From<Page> for Refused {
    fn from(page: Page) -> Self {
        Refused {
            page,
            altered: None,
        }
    }
}

/// The token checked and its decision found, pending and as the link was signed for it.
async fn admit<'t, P>(
    token: Option<&'t str>,
    key: Option<&[u8]>,
    ports: &P,
    now: DateTime<Utc>,
) -> Result<(Token, &'t str, Decision), Refused>
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
{
    let Some(key) = key else {
        return Err(Refused::from(Page::new(
            503,
            "Unavailable",
            "Approvals are not configured on this stack: nothing was changed.",
        )));
    };
    let Some(text) = token.filter(|t| !t.is_empty()) else {
        return Err(Refused::from(Page::new(
            400,
            "Bad link",
            "The link has no token: nothing was changed.",
        )));
    };
    let token = match approval::verify(key, text, now) {
        Ok(t) => t,
        Err(ApprovalError::Expired(at)) => {
            return Err(Refused::from(Page::new(
                410,
                "Link expired",
                format!("This link expired at {at}: nothing was changed."),
            )));
        }
        Err(ApprovalError::Forged) => {
            tracing::warn!(vigil_forged_approvals = 1, "forged approval link refused");
            return Err(Refused::from(Page::new(
                403,
                "Refused",
                "This link is not valid: nothing was changed.",
            )));
        }
        Err(e) => {
            return Err(Refused::from(Page::new(
                400,
                "Bad link",
                format!("{e}: nothing was changed."),
            )));
        }
    };
    let decision = match ports.history().load_pending(&token.decision_id, now).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Refused::from(Page::new(
                404,
                "Nothing to approve",
                "This decision is no longer waiting (it expired or is unknown): nothing was changed.",
            )));
        }
        Err(e) => {
            return Err(Refused::from(Page::new(
                503,
                "Try again",
                format!("{}: nothing was changed.", vigil_core::error_chain(&e)),
            )));
        }
    };
    if token.digest.is_empty() {
        return Err(Refused::from(Page::new(
            409,
            "Link too old",
            "This link was signed by an earlier version of Vigil and is not bound to what it approves: nothing was changed. Act by hand, or wait for the next decision's email.",
        )));
    }
    if !token.binds(&decision) {
        return Err(Refused {
            page: Page::new(
                409,
                "Changed since sent",
                "The decision waiting for approval is not the one this link was sent for: nothing was changed. People have been told.",
            ),
            altered: Some(token.decision_id),
        });
    }
    Ok((token, text, decision))
}

/// The confirming POST: the verdict is taken once and acted on.
pub async fn confirm<P, R>(
    token: Option<&str>,
    who: &Requester,
    setup: &Setup<'_, R>,
    ports: &P,
    now: DateTime<Utc>,
) -> Page
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
    R: ReadPolicy,
{
    let (token, decision) = match admit(token, setup.key, ports, now).await {
        Ok((token, _, decision)) => (token, decision),
        Err(Refused { page, altered }) => {
            if let Some(id) = altered {
                report_altered(&id, who, ports, now).await;
            }
            return page;
        }
    };
    if token.verdict == Verdict::Approve && vigil_core::undo::is_undo(&decision) {
        return Page::new(
            403,
            "Named approvers only",
            "An undo is approved by named approvers only (signed as themselves through the stack's ApproverUrl, with `vigil approve`): nothing was changed, and this link can still deny.",
        );
    }
    if token.verdict == Verdict::Approve {
        let (policy, _) = setup.store.current(setup.policy, ports.alerts()).await;
        if !policy.approvals.links_approve() {
            return Page::new(
                403,
                "Named approvers only",
                "The policy in force takes approvals from named approvers only (signed as themselves through the stack's ApproverUrl, for example with `vigil approve`): nothing was changed, and this link can still deny.",
            );
        }
    }
    // The global rate limit, counted on verdicts with a valid link only (a forged flood
    // cannot use it up).
    if let Err(page) = within_rate(ports, now).await {
        return page;
    }
    let state = ports.history();
    // One use per link, one verdict per decision.
    for key in [
        vigil_core::keys::approval_link(&token.nonce),
        vigil_core::keys::approval_decided(&token.decision_id),
    ] {
        if let Err(page) = claim_or_page(
            state,
            &key,
            &who.request,
            now,
            token.expires_at,
            ALREADY_DECIDED,
        )
        .await
        {
            return page;
        }
    }
    let verdict = token.verdict;
    let record = serde_json::json!({
        "verdict": verdict,
        "at": now,
        "by": who,
        "digest": token.digest,
    });
    if let Err(e) = ports
        .audit()
        .append("approval", &decision.id, record, now)
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
    let action = describe(&decision);
    let decided = match verdict {
        Verdict::Approve => {
            let reason = Reason::new(
                Code::Approval,
                format!(
                    "approved by a person through the signed link at {now} (from {}, request {})",
                    who.source_ip, who.request
                ),
            );
            match reconsider(decision, reason, setup, ports, &who.request, now).await {
                Ok(d) => d,
                Err(page) => return page,
            }
        }
        Verdict::Deny => {
            let mut d = decision;
            d.decided_at = now;
            d.hold(Reason::new(
                Code::Approval,
                format!(
                    "denied by a person through the signed link at {now} (from {}): not acting",
                    who.source_ip
                ),
            ))
        }
    };
    carry_out(&decided, verdict, &who.request, &action, setup, ports, now).await
}

/// What a verdict on a decision already decided is told.
const ALREADY_DECIDED: (&str, &str) = (
    "Already decided",
    "This decision was already approved or denied: nothing more was changed.",
);

/// Takes the claim `key`, or the page that says why not: `held` (title, message) when
/// someone holds it, "try again" when the claim could not be read.
async fn claim_or_page<C: ClaimOnce>(
    state: &C,
    key: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    held: (&str, &str),
) -> Result<(), Page> {
    match state.claim(key, owner, now, until).await {
        Ok(Claim::Won) => Ok(()),
        Ok(Claim::Held) => Err(Page::new(409, held.0, held.1)),
        Err(e) => Err(Page::new(
            503,
            "Try again",
            format!("{}: nothing was changed.", vigil_core::error_chain(&e)),
        )),
    }
}

/// The stack-wide rate limit on verdicts: more than [`MAX_VERDICTS_PER_MINUTE`] a minute is
/// refused (429) and changes nothing.
async fn within_rate<P>(ports: &P, now: DateTime<Utc>) -> Result<(), Page>
where
    P: RemediatePorts,
{
    let minute = now.timestamp() / 60;
    let until = now + chrono::Duration::minutes(2);
    match ports
        .history()
        .take(
            &vigil_core::keys::approval_rate(minute),
            MAX_VERDICTS_PER_MINUTE,
            until,
        )
        .await
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => {
            tracing::warn!(vigil_approval_flood = 1, "approval rate limit reached");
            Err(Page::new(
                429,
                "Too many",
                format!(
                    "More than {MAX_VERDICTS_PER_MINUTE} verdicts this minute: nothing was changed. Try again in a minute."
                ),
            ))
        }
        Err(e) => Err(Page::new(
            503,
            "Try again",
            format!("{}: nothing was changed.", vigil_core::error_chain(&e)),
        )),
    }
}

/// A decided verdict through the same `remediate` path as any decision, and what it did.
async fn carry_out<P, R>(
    decided: &Decision,
    verdict: Verdict,
    owner: &str,
    action: &str,
    setup: &Setup<'_, R>,
    ports: &P,
    now: DateTime<Utc>,
) -> Page
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
    R: ReadPolicy,
{
    match remediate::handle(decided, owner, setup.remediate, ports, now).await {
        Ok(outcome) => {
            let mut metrics = vigil_core::telemetry::remediated(decided, &outcome);
            metrics.push(vigil_core::telemetry::approval_decided(match verdict {
                Verdict::Approve => "approve",
                Verdict::Deny => "deny",
            }));
            Page {
                metrics,
                ..Page::new(
                    200,
                    match verdict {
                        Verdict::Approve => "Approved",
                        Verdict::Deny => "Denied",
                    },
                    format!("{action}: {:?}: {}", outcome.status, outcome.detail),
                )
            }
        }
        Err(e) => Page::new(
            500,
            "Carried out, not told",
            format!("{action}: {}", vigil_core::error_chain(&e)),
        ),
    }
}

/// An approved decision decided again now: the policy and Mode in force, every limit with
/// facts read now, then the cooldown and hourly quota claims decide takes.
async fn reconsider<P, R>(
    pending: Decision,
    approval: Reason,
    setup: &Setup<'_, R>,
    ports: &P,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Decision, Page>
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
    R: ReadPolicy,
{
    let unavailable = |e: &crate::ports::PortError| {
        Page::new(
            503,
            "Not carried out",
            format!(
                "the limits could not be checked ({}): nothing was changed, and this link is used up; act by hand or wait for the next decision.",
                vigil_core::error_chain(e)
            ),
        )
    };
    let (policy, _) = setup.store.current(setup.policy, ports.alerts()).await;
    let needs = Needs::of(pending.action.as_ref(), &pending.incident.resource);
    let since = now - policy.loop_window();
    let attempts = ports
        .history()
        .recent(&pending.incident.resource.id, since)
        .await
        .map_err(|e| unavailable(&e))?;
    let kill_switch = match ports.kill_switch().engaged().await {
        Ok(engaged) => engaged,
        Err(e) => {
            tracing::error!(error = %e, "kill switch unreadable: failing closed");
            true
        }
    };
    let group = match &needs.capacity {
        Some(group) => Some(
            ports
                .groups()
                .capacity(group)
                .await
                .map_err(|e| unavailable(&e))?,
        ),
        None => None,
    };
    let facts = Facts {
        kill_switch,
        group,
        attempts,
    };
    let decision = policy.reconsider(pending, approval, &facts, now);
    decide::claim_action(
        decision,
        &policy,
        ports.history(),
        ports.history(),
        owner,
        now,
    )
    .await
    .map_err(|e| unavailable(&e))
}

/// A valid link whose pending decision no longer matches it: someone changed what waits for
/// approval. Recorded in the audit trail and told; nothing else changes.
async fn report_altered<P>(id: &str, who: &Requester, ports: &P, now: DateTime<Utc>)
where
    P: RemediatePorts,
    P::History: LoadPendingApproval,
{
    tracing::error!(vigil_altered_approvals = 1, decision = %id, "pending decision altered since its link was sent");
    let record = serde_json::json!({"refused": "the pending decision does not match its link", "at": now, "by": who});
    if let Err(e) = ports
        .audit()
        .append("approval-refused", id, record, now)
        .await
    {
        tracing::error!(error = %e, "refused approval not recorded");
    }
    let alert = Alert {
        subject: "[Vigil] a pending decision was altered after its approval email".to_owned(),
        body: format!(
            "The decision {id} waiting for approval no longer matches the email its link was sent in: its action, target or incident was changed in the state table. The confirmation was refused and nothing was changed. Find who wrote the item approval#{id} (CloudTrail data events on the table) and check the roles that may write it."
        ),
        attributes: [("severity".to_owned(), "HIGH".to_owned())]
            .into_iter()
            .collect(),
        chat: None,
    };
    if let Err(e) = ports.alerts().publish(&alert).await {
        tracing::error!(error = %vigil_core::error_chain(&e), "altered approval not told");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_it_shows_and_posts_its_token_back() {
        let page = Page {
            status: 200,
            title: "<script>".into(),
            message: "a & b \"c\"".into(),
            form: Some(Form {
                token: "x\"><script>".into(),
                verdict: Verdict::Approve,
            }),
            metrics: Vec::new(),
        };
        let html = page.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("a &amp; b &quot;c&quot;"));
        assert!(html.contains("<form method=\"post\">"), "{html}");
        assert!(
            html.contains("value=\"x&quot;&gt;&lt;script&gt;\""),
            "{html}"
        );
    }
}
