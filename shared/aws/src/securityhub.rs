//! Security Hub: the findings Vigil imports into the account's own default product
//! (`BatchImportFindings`, one finding a call; an import with a known id updates it).

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, FindingProviderFields, FindingProviderSeverity, Partition, Recommendation,
    RecordState, Remediation, Resource, Severity, SeverityLabel, Workflow, WorkflowStatus,
};

use super::port_error;
use vigil_core::securityhub::{self as asff, Finding};
use vigil_handlers::ports::{ImportFinding, PortError, PortErrorKind};

#[derive(Debug, Clone)]
pub struct SecurityHub {
    client: aws_sdk_securityhub::Client,
}

impl SecurityHub {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        SecurityHub {
            client: aws_sdk_securityhub::Client::new(config),
        }
    }
}

/// The finding in the SDK's types.
pub fn to_sdk(f: &Finding) -> AwsSecurityFinding {
    let label = SeverityLabel::from(f.severity);
    let mut b = AwsSecurityFinding::builder()
        .schema_version(asff::SCHEMA_VERSION)
        .id(&f.id)
        .product_arn(&f.product_arn)
        .generator_id(&f.generator_id)
        .aws_account_id(&f.aws_account_id)
        .region(&f.region)
        .created_at(
            f.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .updated_at(
            f.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        )
        .severity(Severity::builder().label(label.clone()).build())
        .confidence(f.confidence)
        .title(&f.title)
        .description(&f.description)
        .remediation(
            Remediation::builder()
                .recommendation(Recommendation::builder().text(&f.recommendation).build())
                .build(),
        )
        .record_state(RecordState::from(f.record_state.as_str()))
        // Read by Security Hub when the finding is created only: then it is the people's.
        .workflow(Workflow::builder().status(WorkflowStatus::New).build());
    let mut provided = FindingProviderFields::builder()
        .severity(FindingProviderSeverity::builder().label(label).build())
        .confidence(f.confidence);
    for t in &f.types {
        b = b.types(t);
        provided = provided.types(t);
    }
    b = b.finding_provider_fields(provided.build());
    for r in &f.resources {
        b = b.resources(
            Resource::builder()
                .r#type(r.kind)
                .id(&r.id)
                .partition(Partition::from(r.partition.as_str()))
                .region(&r.region)
                .build(),
        );
    }
    for (k, v) in &f.product_fields {
        b = b.product_fields(k, v);
    }
    b.build()
}

impl ImportFinding for SecurityHub {
    async fn import(&self, finding: &Finding) -> Result<(), PortError> {
        const OP: &str = "securityhub:BatchImportFindings";
        let out = self
            .client
            .batch_import_findings()
            .findings(to_sdk(finding))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        if out.failed_count().unwrap_or(0) > 0 {
            let why: Vec<String> = out
                .failed_findings()
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.error_code().unwrap_or("?"),
                        e.error_message().unwrap_or("")
                    )
                })
                .collect();
            return Err(PortError::new(OP, PortErrorKind::Rejected, why.join("; ")));
        }
        Ok(())
    }
}
