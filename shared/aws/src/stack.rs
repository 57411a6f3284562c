//! The remediation adapters as the stack's functions wire them from their environment: shared
//! by `remediate` and `approve`, which carry out actions the same way.

use super::{
    audit::AuditTrail,
    autoscaling::AutoScaling,
    codepipeline::CodePipeline,
    dynamodb::StateTable,
    securityhub::SecurityHub,
    sns::Sns,
    ssm::{Commands, KillSwitchParameter, OpsCenter, SigningKeyParameter},
};
use vigil_handlers::config::{self, ConfigError};
use vigil_handlers::ports::ReadSigningKey;
use vigil_handlers::remediate::{ApprovalLinks, RemediateConfig, RemediatePorts};

/// Every adapter `remediate` needs, built once per process.
#[derive(Debug, Clone)]
pub struct RemediateAdapters {
    pub kill_switch: KillSwitchParameter,
    pub autoscaling: AutoScaling,
    pub alerts: Sns,
    pub state: StateTable,
    pub commands: Commands,
    pub pipelines: CodePipeline,
    pub audit: AuditTrail,
    pub findings: SecurityHub,
    pub ops_items: OpsCenter,
}

impl RemediateAdapters {
    pub fn from_env(
        sdk: &aws_config::SdkConfig,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<RemediateAdapters, ConfigError> {
        let table = config::required(lookup, config::TABLE)?;
        Ok(RemediateAdapters {
            kill_switch: KillSwitchParameter::new(
                sdk,
                config::required(lookup, config::KILL_SWITCH_PARAMETER)?,
            ),
            autoscaling: AutoScaling::new(sdk),
            alerts: Sns::new(sdk, config::required(lookup, config::TOPIC_ARN)?),
            state: StateTable::new(sdk, &table),
            commands: Commands::new(sdk),
            pipelines: CodePipeline::new(sdk),
            audit: AuditTrail::new(
                sdk,
                config::required(lookup, config::AUDIT_BUCKET)?,
                "audit/",
                &table,
            ),
            findings: SecurityHub::new(sdk),
            ops_items: OpsCenter::new(sdk),
        })
    }
}

impl RemediateAdapters {
    /// The same adapters, acting in a member account: Auto Scaling, commands and pipelines
    /// through its role's configuration; the kill switch, the state table, the audit trail and
    /// the alerts stay the stack's own, so what is done there is recorded here.
    pub fn acting_in(&self, member: &aws_config::SdkConfig) -> RemediateAdapters {
        RemediateAdapters {
            autoscaling: AutoScaling::new(member),
            commands: Commands::new(member),
            pipelines: CodePipeline::new(member),
            ..self.clone()
        }
    }

    /// The adapters and settings for one decision: the stack's own, or for a decision about a
    /// member account the stack names, those acting through its role (and the settings saying
    /// so). For any other account, the stack's own with no account to act in: nothing is
    /// changed there ([`vigil_handlers::remediate`] refuses it).
    pub async fn for_decision(
        &self,
        decision: &vigil_core::domain::Decision,
        members: &crate::members::Members,
        settings: &vigil_handlers::remediate::RemediateConfig,
    ) -> (
        std::borrow::Cow<'_, RemediateAdapters>,
        vigil_handlers::remediate::RemediateConfig,
    ) {
        let Some(account) = decision.incident.resource.account.as_deref() else {
            return (std::borrow::Cow::Borrowed(self), settings.clone());
        };
        match members.config(account).await {
            Some(member) => (
                std::borrow::Cow::Owned(self.acting_in(&member)),
                vigil_handlers::remediate::RemediateConfig {
                    acting_account: Some(account.to_owned()),
                    ..settings.clone()
                },
            ),
            None => (std::borrow::Cow::Borrowed(self), settings.clone()),
        }
    }
}

/// The stack's adapters are `remediate`'s ports: Auto Scaling answers for instances, their
/// health and their groups.
impl RemediatePorts for RemediateAdapters {
    type KillSwitch = KillSwitchParameter;
    type Instances = AutoScaling;
    type Health = AutoScaling;
    type Alerts = Sns;
    type History = StateTable;
    type Groups = AutoScaling;
    type Commands = Commands;
    type Pipelines = CodePipeline;
    type Audit = AuditTrail;
    type Findings = SecurityHub;
    type OpsItems = OpsCenter;

    fn kill_switch(&self) -> &KillSwitchParameter {
        &self.kill_switch
    }
    fn instances(&self) -> &AutoScaling {
        &self.autoscaling
    }
    fn health(&self) -> &AutoScaling {
        &self.autoscaling
    }
    fn alerts(&self) -> &Sns {
        &self.alerts
    }
    fn history(&self) -> &StateTable {
        &self.state
    }
    fn groups(&self) -> &AutoScaling {
        &self.autoscaling
    }
    fn commands(&self) -> &Commands {
        &self.commands
    }
    fn pipelines(&self) -> &CodePipeline {
        &self.pipelines
    }
    fn audit(&self) -> &AuditTrail {
        &self.audit
    }
    fn findings(&self) -> &SecurityHub {
        &self.findings
    }
    fn ops_items(&self) -> &OpsCenter {
        &self.ops_items
    }
}

/// The signing key of approval links, when the stack names one and it can be read. Without it
/// approvals are told without links (remediate) and no link is accepted (approve).
pub async fn signing_key(
    sdk: &aws_config::SdkConfig,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Option<Vec<u8>> {
    let name = config::optional(lookup, config::APPROVAL_KEY_PARAMETER)?;
    match SigningKeyParameter::new(sdk, name).signing_key().await {
        Ok(key) if key.len() >= vigil_core::approval::MIN_KEY_BYTES => Some(key),
        Ok(_) => {
            tracing::error!("the approval signing key is too short: approvals are disabled");
            None
        }
        Err(e) => {
            tracing::error!(error = %vigil_core::error_chain(&e), "approval signing key unreadable: approvals are disabled");
            None
        }
    }
}

/// `remediate`'s settings from the environment.
pub fn remediate_config(
    lookup: &impl Fn(&str) -> Option<String>,
    key: Option<Vec<u8>>,
) -> RemediateConfig {
    let defaults = RemediateConfig::default();
    RemediateConfig {
        restart_document: config::optional(lookup, config::RESTART_DOCUMENT)
            .unwrap_or(defaults.restart_document.clone()),
        deactivate_key_document: config::optional(lookup, config::DEACTIVATE_KEY_DOCUMENT)
            .unwrap_or(defaults.deactivate_key_document.clone()),
        quarantine_document: config::optional(lookup, config::QUARANTINE_DOCUMENT)
            .unwrap_or(defaults.quarantine_document.clone()),
        automation_role: config::optional(lookup, config::AUTOMATION_ROLE_ARN),
        release_document: config::optional(lookup, config::RELEASE_DOCUMENT)
            .unwrap_or(defaults.release_document.clone()),
        reactivate_key_document: config::optional(lookup, config::REACTIVATE_KEY_DOCUMENT)
            .unwrap_or(defaults.reactivate_key_document.clone()),
        undo_role: config::optional(lookup, config::UNDO_ROLE_ARN),
        approver_url: config::optional(lookup, config::APPROVER_URL),
        // Set by Lambda itself.
        region: config::optional(lookup, "AWS_REGION"),
        approval: match (config::optional(lookup, config::APPROVAL_URL), key) {
            (Some(base_url), Some(key)) => Some(ApprovalLinks { base_url, key }),
            _ => None,
        },
        securityhub: home(lookup, config::SECURITY_HUB),
        opscenter: home(lookup, config::OPSCENTER),
        ..defaults
    }
}

/// Where the stack runs, when its `switch` (`VIGIL_SECURITY_HUB`, `VIGIL_OPSCENTER`) is `on`:
/// the account and partition findings and OpsItems name.
fn home(
    lookup: &impl Fn(&str) -> Option<String>,
    switch: &str,
) -> Option<vigil_core::securityhub::Stack> {
    if config::optional(lookup, switch).as_deref() != Some("on") {
        return None;
    }
    let stack = vigil_core::securityhub::Stack {
        partition: config::optional(lookup, config::PARTITION).unwrap_or_else(|| "aws".to_owned()),
        region: config::optional(lookup, "AWS_REGION")?,
        account: config::optional(lookup, config::ACCOUNT_ID)?,
    };
    Some(stack)
}
