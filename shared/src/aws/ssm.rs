//! SSM Parameter Store: the operators' kill switch.

use aws_sdk_ssm::Client;

use super::port_error;
use crate::ports::{PortError, PortErrorKind, ReadKillSwitch, ReadPolicy};

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
        let Some((text, version)) = get(&self.client, &self.name).await? else {
            return Ok(None);
        };
        // An empty or placeholder parameter means "no override".
        if text.trim().is_empty() || text.trim() == "none" {
            return Ok(None);
        }
        Ok(Some((text, version.to_string())))
    }
}
