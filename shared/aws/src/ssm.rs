//! SSM: the operators' kill switch, policy override and rules override (Parameter Store); Run Command and
//! Automation for remediation; OpsCenter for operations incidents.

use aws_sdk_ssm::Client;

use super::port_error;
use vigil_core::names::InstanceId;
use vigil_handlers::ports::{
    AutomationStatus, CommandStatus, PortError, PortErrorKind, ReadKillSwitch, ReadPolicy,
    ReadRules, ReadSigningKey, RecordOpsItem, RunCommand, StartAutomation,
};

#[derive(Debug, Clone)]
pub struct KillSwitchParameter {
    client: Client,
    name: String,
}

impl KillSwitchParameter {
    pub fn new(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        KillSwitchParameter {
            client: Client::new(config),
            name: name.into(),
        }
    }
}

/// `off`/`false`/`0` disengage the switch; `on`/`true`/`1` engage it; anything else is refused.
pub fn parse_switch(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "off" | "false" | "0" | "disengaged" => Some(false),
        "on" | "true" | "1" | "engaged" => Some(true),
        _ => None,
    }
}

const GET: &str = "ssm:GetParameter";

/// A String parameter's value and version; `None` when it does not exist.
async fn get(client: &Client, name: &str) -> Result<Option<(String, i64)>, PortError> {
    match client.get_parameter().name(name).send().await {
        Ok(out) => Ok(out
            .parameter()
            .map(|p| (p.value().unwrap_or_default().to_owned(), p.version()))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(port_error(GET, e)),
    }
}

impl ReadKillSwitch for KillSwitchParameter {
    async fn engaged(&self) -> Result<bool, PortError> {
        // No parameter: the switch was never engaged.
        let Some((value, _)) = get(&self.client, &self.name).await? else {
            return Ok(false);
        };
        parse_switch(&value).ok_or_else(|| {
            PortError::new(
                GET,
                PortErrorKind::Rejected,
                format!("kill switch {} has an unrecognised value", self.name),
            )
        })
    }
}

/// The operators' policy override: a String parameter holding policy YAML.
#[derive(Debug, Clone)]
pub struct PolicyParameter {
    client: Client,
    name: String,
}

impl PolicyParameter {
    pub fn new(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        PolicyParameter {
            client: Client::new(config),
            name: name.into(),
        }
    }
}

impl ReadPolicy for PolicyParameter {
    async fn read(&self) -> Result<Option<(String, String)>, PortError> {
        read_override(&self.client, &self.name).await
    }
}

/// An operators' override parameter's text and version; an empty or placeholder (`none`)
/// parameter means "no override".
async fn read_override(client: &Client, name: &str) -> Result<Option<(String, String)>, PortError> {
    let Some((text, version)) = get(client, name).await? else {
        return Ok(None);
    };
    if text.trim().is_empty() || text.trim() == "none" {
        return Ok(None);
    }
    Ok(Some((text, version.to_string())))
}

/// The operators' detection rules override: a String parameter holding Sigma YAML.
#[derive(Debug, Clone)]
pub struct RulesParameter {
    client: Client,
    name: String,
}

impl RulesParameter {
    pub fn new(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        RulesParameter {
            client: Client::new(config),
            name: name.into(),
        }
    }
}

impl ReadRules for RulesParameter {
    async fn read_rules(&self) -> Result<Option<(String, String)>, PortError> {
        read_override(&self.client, &self.name).await
    }
}

/// Run Command and Automation.
#[derive(Debug, Clone)]
pub struct Commands {
    client: Client,
}

impl Commands {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Commands {
            client: Client::new(config),
        }
    }
}

fn parameter_map(parameters: &[(&str, &str)]) -> std::collections::HashMap<String, Vec<String>> {
    parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
        .collect()
}

impl RunCommand for Commands {
    async fn run(
        &self,
        instance: &InstanceId,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> Result<String, PortError> {
        const OP: &str = "ssm:SendCommand";
        let out = self
            .client
            .send_command()
            .document_name(document)
            .instance_ids(instance.as_str())
            .set_parameters(Some(parameter_map(parameters)))
            .comment("Vigil remediation")
            .timeout_seconds(600)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        out.command()
            .and_then(|c| c.command_id())
            .map(str::to_owned)
            .ok_or_else(|| PortError::new(OP, PortErrorKind::Rejected, "no command id returned"))
    }
}

impl CommandStatus for Commands {
    async fn command_status(
        &self,
        command_id: &str,
        instance: &InstanceId,
    ) -> Result<String, PortError> {
        let out = self
            .client
            .get_command_invocation()
            .command_id(command_id)
            .instance_id(instance.as_str())
            .send()
            .await
            .map_err(|e| port_error("ssm:GetCommandInvocation", e))?;
        Ok(out
            .status()
            .map_or_else(|| "Pending".to_owned(), |s| s.as_str().to_owned()))
    }
}

impl StartAutomation for Commands {
    async fn start_automation(
        &self,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> Result<String, PortError> {
        const OP: &str = "ssm:StartAutomationExecution";
        let out = self
            .client
            .start_automation_execution()
            .document_name(document)
            .set_parameters(Some(parameter_map(parameters)))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        out.automation_execution_id()
            .map(str::to_owned)
            .ok_or_else(|| PortError::new(OP, PortErrorKind::Rejected, "no execution id returned"))
    }
}

impl AutomationStatus for Commands {
    async fn automation_status(&self, execution_id: &str) -> Result<String, PortError> {
        let out = self
            .client
            .get_automation_execution()
            .automation_execution_id(execution_id)
            .send()
            .await
            .map_err(|e| port_error("ssm:GetAutomationExecution", e))?;
        Ok(out
            .automation_execution()
            .and_then(|a| a.automation_execution_status())
            .map_or_else(|| "Pending".to_owned(), |s| s.as_str().to_owned()))
    }
}

/// The approval links' signing key: a SecureString parameter.
#[derive(Debug, Clone)]
pub struct SigningKeyParameter {
    client: Client,
    name: String,
}

impl SigningKeyParameter {
    pub fn new(config: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        SigningKeyParameter {
            client: Client::new(config),
            name: name.into(),
        }
    }
}

impl ReadSigningKey for SigningKeyParameter {
    async fn signing_key(&self) -> Result<Vec<u8>, PortError> {
        const OP: &str = "ssm:GetParameter";
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let p = out
            .parameter()
            .ok_or_else(|| PortError::new(OP, PortErrorKind::NotFound, "no parameter"))?;
        if p.r#type() != Some(&aws_sdk_ssm::types::ParameterType::SecureString) {
            return Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                format!("{} must be a SecureString", self.name),
            ));
        }
        Ok(p.value().unwrap_or_default().as_bytes().to_vec())
    }
}

/// OpsCenter: one OpsItem per operations incident. A create OpsCenter deduplicates (the
/// incident's OpsItem is open) answers with the existing OpsItem's id, which is then updated;
/// so is a new one that is already resolved.
#[derive(Debug, Clone)]
pub struct OpsCenter {
    client: Client,
}

impl OpsCenter {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        OpsCenter {
            client: Client::new(config),
        }
    }
}

impl RecordOpsItem for OpsCenter {
    async fn record(&self, item: &vigil_core::opscenter::OpsItem) -> Result<String, PortError> {
        use aws_sdk_ssm::operation::create_ops_item::CreateOpsItemError;
        use aws_sdk_ssm::types::{OpsItemDataType, OpsItemDataValue, OpsItemStatus};
        use vigil_core::opscenter::Status;
        const CREATE: &str = "ssm:CreateOpsItem";
        const UPDATE: &str = "ssm:UpdateOpsItem";
        let data = item
            .operational_data()
            .into_iter()
            .map(|(key, kind, value)| {
                (
                    key.to_owned(),
                    OpsItemDataValue::builder()
                        .r#type(OpsItemDataType::from(kind))
                        .value(value)
                        .build(),
                )
            })
            .collect();
        let created = self
            .client
            .create_ops_item()
            .title(&item.title)
            .description(&item.description)
            .source(vigil_core::opscenter::SOURCE)
            .severity(item.severity)
            .category(item.category)
            .set_operational_data(Some(data))
            .send()
            .await;
        let id = match created {
            Ok(out) if item.status == Status::Open => {
                return Ok(out.ops_item_id().unwrap_or_default().to_owned());
            }
            Ok(out) => out.ops_item_id().map(str::to_owned),
            Err(e) => match e.as_service_error() {
                Some(CreateOpsItemError::OpsItemAlreadyExistsException(found)) => {
                    found.ops_item_id().map(str::to_owned)
                }
                _ => return Err(port_error(CREATE, e)),
            },
        };
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return Err(PortError::new(
                CREATE,
                PortErrorKind::Rejected,
                "OpsCenter named no OpsItem",
            ));
        };
        self.client
            .update_ops_item()
            .ops_item_id(&id)
            .description(&item.description)
            .severity(item.severity)
            .status(OpsItemStatus::from(item.status.as_str()))
            .send()
            .await
            .map_err(|e| port_error(UPDATE, e))?;
        Ok(id)
    }
}
