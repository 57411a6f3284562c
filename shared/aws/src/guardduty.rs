//! GuardDuty: the active findings the deployment gate weighs (ListFindings with finding
//! criteria, then GetFindings in batches of 50).

use aws_sdk_guardduty::Client;
use aws_sdk_guardduty::types::{Condition, FindingCriteria};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use super::autoscaling::{APPLICATION_TAGS, ENVIRONMENT_TAGS};
use super::port_error;
use vigil_core::gate::FindingSummary;
use vigil_core::names::display_text;
use vigil_handlers::ports::{ListFindings, PortError, PortErrorKind};

/// At most this many findings are read per check (GuardDuty pages of 50).
pub const MAX_FINDINGS: usize = 500;

#[derive(Debug)]
pub struct GuardDuty {
    client: Client,
    /// The region's detector, found once (GuardDuty has at most one per region).
    detector: OnceCell<Option<String>>,
}

impl GuardDuty {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        GuardDuty {
            client: Client::new(config),
            detector: OnceCell::new(),
        }
    }

    /// Uses a known detector id instead of listing detectors.
    pub fn with_detector(config: &aws_config::SdkConfig, detector: impl Into<String>) -> Self {
        GuardDuty {
            client: Client::new(config),
            detector: OnceCell::new_with(Some(Some(detector.into()))),
        }
    }

    async fn detector(&self) -> Result<Option<&str>, PortError> {
        self.detector
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .list_detectors()
                    .send()
                    .await
                    .map_err(|e| port_error("guardduty:ListDetectors", e))?;
                Ok::<_, PortError>(out.detector_ids().first().cloned())
            })
            .await
            .map(Option::as_deref)
    }
}

/// The criteria of an active finding at or above a severity, updated since a time.
pub fn criteria(min_severity: f64, since: DateTime<Utc>) -> FindingCriteria {
    FindingCriteria::builder()
        .criterion(
            "severity",
            Condition::builder()
                .greater_than_or_equal(min_severity.floor().max(0.0) as i64)
                .build(),
        )
        .criterion(
            "service.archived",
            Condition::builder().equals("false").build(),
        )
        .criterion(
            "updatedAt",
            Condition::builder()
                .greater_than_or_equal(since.timestamp_millis())
                .build(),
        )
        .build()
}

fn summary(f: &aws_sdk_guardduty::types::Finding) -> Option<FindingSummary> {
    let resource = f.resource();
    let instance = resource.and_then(|r| r.instance_details());
    let tag = |keys: &[&str]| {
        instance?.tags().iter().find_map(|t| {
            let k = t.key()?.to_ascii_lowercase();
            let v = t.value()?;
            keys.contains(&k.as_str()).then(|| display_text(v, 128))
        })
    };
    let subject = instance
        .and_then(|i| i.instance_id())
        .or_else(|| resource?.access_key_details()?.access_key_id())
        .or_else(|| resource?.resource_type())
        .unwrap_or("account");
    Some(FindingSummary {
        id: display_text(f.id()?, 128),
        finding_type: display_text(f.r#type().unwrap_or("unknown"), 128),
        severity: f.severity().filter(|s| s.is_finite())?,
        title: display_text(f.title().unwrap_or(""), 256),
        resource: display_text(subject, 128),
        application: tag(&APPLICATION_TAGS),
        environment: tag(&ENVIRONMENT_TAGS),
        updated_at: f
            .updated_at()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    })
}

impl ListFindings for GuardDuty {
    async fn active_findings(
        &self,
        min_severity: f64,
        since: DateTime<Utc>,
    ) -> Result<Vec<FindingSummary>, PortError> {
        let Some(detector) = self.detector().await? else {
            // GuardDuty is not enabled in this region: nothing to weigh. The gate says so.
            return Err(PortError::new(
                "guardduty:ListDetectors",
                PortErrorKind::NotFound,
                "GuardDuty has no detector in this region",
            ));
        };
        let mut ids: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_findings()
                .detector_id(detector)
                .finding_criteria(criteria(min_severity, since))
                .max_results(50)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| port_error("guardduty:ListFindings", e))?;
            ids.extend(out.finding_ids().iter().cloned());
            token = out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
            if ids.len() >= MAX_FINDINGS {
                // Weighing some of them would pass a target whose finding is on a later page.
                return Err(PortError::new(
                    "guardduty:ListFindings",
                    PortErrorKind::Rejected,
                    format!(
                        "more than {MAX_FINDINGS} active findings match: the gate cannot weigh them all"
                    ),
                ));
            }
        }
        let mut findings = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(50) {
            let out = self
                .client
                .get_findings()
                .detector_id(detector)
                .set_finding_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| port_error("guardduty:GetFindings", e))?;
            findings.extend(
                out.findings()
                    .iter()
                    // Archived findings are excluded by the criteria; checked again here.
                    .filter(|f| !f.service().and_then(|s| s.archived()).unwrap_or(false))
                    .filter_map(summary),
            );
        }
        Ok(findings)
    }
}
