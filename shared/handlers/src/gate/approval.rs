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
    /// Not answered, and no one emailed: CodePipeline does not know the approval as told
    /// (forged, replayed, or of a pipeline that did not opt in). Counted for an alarm.
    Refused(String),
}

/// Checks a notification against CodePipeline itself: the pipeline defines this manual
/// approval action, the action notifies the gate's own topic (the pipeline's opt-in), and it
/// waits for an approval with this very token. Returns the action's definition, whose
/// CustomData names the target; `Err(Ok(why))` refuses the notification, `Err(Err(e))` is a
/// dependency that could not answer (the delivery is retried).
async fn verify(
    action: &ApprovalAction,
    config: &GateConfig,
    approvals: &impl ReadApproval,
) -> Result<ApprovalDefinition, Result<String, GateError>> {
    let where_ = format!("{}/{}/{}", action.pipeline, action.stage, action.action);
    let ask = |e: PortError| match e.kind {
        // Denied (a pipeline not tagged for Vigil) or unknown: CodePipeline does not vouch.
        PortErrorKind::Rejected | PortErrorKind::NotFound => Ok(format!(
            "CodePipeline does not confirm {where_}: {}",
            vigil_core::error_chain(&e)
        )),
        PortErrorKind::Transient => Err(GateError::Verify {
            approval: where_.clone(),
            source: e,
        }),
    };
    let timed = |what: &'static str| {
        let where_ = where_.clone();
        move |_| {
            Err(GateError::Verify {
                approval: where_,
                source: PortError::new(
                    what,
                    PortErrorKind::Transient,
                    format!("no answer within {} s", config.call_timeout.as_secs_f64()),
                ),
            })
        }
    };
    let definition = tokio::time::timeout(
        config.call_timeout,
        approvals.approval_definition(&action.pipeline, &action.stage, &action.action),
    )
    .await
    .map_err(timed("codepipeline:GetPipeline"))?
    .map_err(ask)?
    .ok_or_else(|| {
        Ok(format!(
            "pipeline {} has no manual approval action {where_}",
            action.pipeline
        ))
    })?;
    let ours = config.approval_topic.as_deref();
    if ours.is_none() || definition.notification_arn.as_deref() != ours {
        return Err(Ok(format!(
            "{where_} does not notify the gate's topic, so its pipeline has not opted in"
        )));
    }
    let waiting = tokio::time::timeout(
        config.call_timeout,
        approvals.waiting_token(&action.pipeline, &action.stage, &action.action),
    )
    .await
    .map_err(timed("codepipeline:GetPipelineState"))?
    .map_err(ask)?;
    if waiting.as_deref() != Some(action.token.as_str()) {
        return Err(Ok(format!(
            "{where_} is not waiting for an approval with this token"
        )));
    }
    Ok(definition)
}

/// The pipeline's page in the console, made from names CodePipeline confirmed (never a link
/// from the notification).
fn console_link(action: &ApprovalAction, region: Option<&str>) -> String {
    match region {
        Some(r) => format!(
            "https://{r}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/view?region={r}",
            action.pipeline
        ),
        None => format!(
            "https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/view",
            action.pipeline
        ),
    }
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
    Q: ReportApproval + ReadApproval,
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
    let definition = match verify(&action, config, ports.approvals).await {
        Ok(d) => d,
        Err(Ok(why)) => return Ok(ApprovalOutcome::Refused(why)),
        Err(Err(e)) => return Err(e),
    };
    // The target is the pipeline's own CustomData, not the notification's copy of it.
    let posture = match parameters(definition.custom_data.as_deref()) {
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
    let action = &action;
    let answer = |approved: bool| async move {
        let summary = summary.clone();
        ports
            .approvals
            .answer(action, approved, &summary)
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
            tell_people(action, &posture, config, "REJECTED", ports.alerts).await?;
            Ok(ApprovalOutcome::Rejected(summary))
        }
        (Verdict::Uncertain, gate::OnDoubt::People) => {
            let subject =
                tell_people(action, &posture, config, "NEEDS A PERSON", ports.alerts).await?;
            Ok(ApprovalOutcome::LeftToPeople(subject))
        }
    }
}

pub(super) async fn tell_people(
    action: &ApprovalAction,
    posture: &Posture,
    config: &GateConfig,
    status: &str,
    alerts: &impl PublishAlert,
) -> Result<String, GateError> {
    let subject = display_text(
        &format!("[Vigil gate] deploy of {} {status}", posture.target),
        vigil_core::alert::MAX_SUBJECT - 1,
    );
    let mut body = posture.message(8000);
    body.push_str(&format!(
        "\n\nApproval action: {}/{}/{}",
        action.pipeline, action.stage, action.action
    ));
    let verb = if status == "REJECTED" {
        "See the pipeline"
    } else {
        "Review and approve or reject"
    };
    body.push_str(&format!(
        "\n{verb}: {}",
        console_link(action, config.region.as_deref())
    ));
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
        chat: None,
    };
    alerts
        .publish(&alert)
        .await
        .map_err(|source| GateError::Alert {
            pipeline: action.pipeline.to_string(),
            stage: action.stage.to_string(),
            source,
        })?;
    Ok(subject)
}
