//! The manual approval action: CodePipeline's notification of an approval waiting, answered
//! with the posture's verdict.

use super::*;

/// The SNS message CodePipeline publishes for a manual approval action.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalNotification {
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub console_link: Option<String>,
    pub approval: ApprovalDetails,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalDetails {
    pub pipeline_name: String,
    pub stage_name: String,
    pub action_name: String,
    pub token: String,
    /// e.g. `2016-07-07T20:22Z`.
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub approval_review_link: Option<String>,
    #[serde(default)]
    pub custom_data: Option<String>,
}

/// What the gate did with an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    Approved(String),
    Rejected(String),
    /// Left to people; the email's subject.
    LeftToPeople(String),
}

pub(super) fn approval_expired(expires: Option<&str>, now: DateTime<Utc>) -> bool {
    let Some(e) = expires else { return false };
    let parsed = DateTime::parse_from_rfc3339(e)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(e, "%Y-%m-%dT%H:%MZ").map(|d| d.and_utc())
        });
    parsed.is_ok_and(|d| d <= now)
}

/// Evaluates the posture for one approval notification (an SNS message's text) and answers it.
pub async fn handle_approval<F, P, G, A, D, R, Q, S>(
    message: &str,
    policy: &GatePolicy,
    config: &GateConfig,
    ports: &GatePorts<'_, F, P, G, A, D, R, Q, S>,
    now: DateTime<Utc>,
) -> Result<ApprovalOutcome, GateError>
where
    F: ReadDeploymentFreeze,
    P: ReadPosture,
    G: ListFindings,
    A: FetchArtifact,
    Q: ReportApproval,
    S: PublishAlert,
{
    if message.len() > 64 * 1024 {
        return Err(GateError::Notification(format!(
            "{} bytes, over 64 KiB",
            message.len()
        )));
    }
    let n: ApprovalNotification = serde_json::from_str(message)
        .map_err(|e| GateError::Notification(format!("not an approval notification: {e}")))?;
    let a = &n.approval;
    let name = |what: &str, s: &str| {
        PipelineName::parse(s).map_err(|e| GateError::Notification(format!("{what}: {e}")))
    };
    let action = ApprovalAction {
        pipeline: name("pipelineName", &a.pipeline_name)?,
        stage: name("stageName", &a.stage_name)?,
        action: name("actionName", &a.action_name)?,
        token: a.token.clone(),
    };
    if a.token.is_empty() || a.token.len() > 128 {
        return Err(GateError::Notification(
            "the approval token is missing or too long".into(),
        ));
    }
    if approval_expired(a.expires.as_deref(), now) {
        return Err(GateError::Notification(format!(
            "the approval expired at {}",
            display_text(a.expires.as_deref().unwrap_or_default(), 32)
        )));
    }
    let where_ = format!("{}/{}/{}", action.pipeline, action.stage, action.action);
    let posture = match parameters(a.custom_data.as_deref()) {
        Err(why) => Posture {
            target: "(unknown target)".into(),
            results: vec![CheckResult::doubt(
                Check::Freeze,
                format!("the approval's CustomData: {why}"),
            )],
        },
        Ok(p) => {
            let mut results = Vec::new();
            // No artifact reaches a manual approval: scans are the invoke action's check.
            for check in Check::ALL.into_iter().filter(|c| *c != Check::Scans) {
                results.push(run_check(check, &p.target, None, policy, config, ports, now).await);
            }
            Posture {
                target: p.target,
                results,
            }
        }
    };
    let verdict = posture.verdict();
    let summary = posture.message(MAX_APPROVAL_SUMMARY);
    let answer = |approved: bool| async move {
        let summary = summary.clone();
        ports
            .approvals
            .answer(&action, approved, &summary)
            .await
            .map_err(|source| GateError::Approval {
                pipeline: action.pipeline.to_string(),
                stage: action.stage.to_string(),
                action: action.action.to_string(),
                source,
            })?;
        Ok::<String, GateError>(summary)
    };
    match (verdict, policy.on_doubt) {
        (Verdict::Clean, _) => Ok(ApprovalOutcome::Approved(answer(true).await?)),
        (Verdict::Blocked, _) | (Verdict::Uncertain, gate::OnDoubt::Reject) => {
            let summary = answer(false).await?;
            tell_people(&n, &posture, &where_, "REJECTED", ports.alerts).await?;
            Ok(ApprovalOutcome::Rejected(summary))
        }
        (Verdict::Uncertain, gate::OnDoubt::People) => {
            let subject =
                tell_people(&n, &posture, &where_, "NEEDS A PERSON", ports.alerts).await?;
            Ok(ApprovalOutcome::LeftToPeople(subject))
        }
    }
}

pub(super) async fn tell_people(
    n: &ApprovalNotification,
    posture: &Posture,
    where_: &str,
    status: &str,
    alerts: &impl PublishAlert,
) -> Result<String, GateError> {
    let subject = display_text(
        &format!("[Vigil gate] deploy of {} {status}", posture.target),
        vigil_core::alert::MAX_SUBJECT - 1,
    );
    let mut body = posture.message(8000);
    body.push_str(&format!("\n\nApproval action: {where_}"));
    if let Some(link) = &n.approval.approval_review_link {
        let verb = if status == "REJECTED" {
            "See the pipeline"
        } else {
            "Review and approve or reject"
        };
        body.push_str(&format!("\n{verb}: {}", display_text(link, 1000)));
    } else if let Some(link) = &n.console_link {
        body.push_str(&format!("\nPipeline: {}", display_text(link, 1000)));
    }
    if status != "REJECTED" {
        body.push_str(
            "\n\nVigil could not confirm the posture, and the policy leaves this approval to people.",
        );
    }
    let severity = if status == "REJECTED" {
        "HIGH"
    } else {
        "MEDIUM"
    };
    let alert = Alert {
        subject: subject.clone(),
        body,
        attributes: [("severity".to_owned(), severity.to_owned())]
            .into_iter()
            .collect(),
    };
    alerts
        .publish(&alert)
        .await
        .map_err(|source| GateError::Alert {
            pipeline: n.approval.pipeline_name.clone(),
            stage: n.approval.stage_name.clone(),
            source,
        })?;
    Ok(subject)
}
