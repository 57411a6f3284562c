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

impl ReadKillSwitch for KillSwitchParameter {
    async fn engaged(&self) -> Result<bool, PortError> {
        const OP: &str = "ssm:GetParameter";
        let res = self.client.get_parameter().name(&self.name).send().await;
        let out = match res {
            Ok(out) => out,
            // No parameter: the switch was never engaged.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(port_error(OP, e)),
        };
        let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
        parse_switch(value).ok_or_else(|| {
            PortError::new(
                OP,
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
        let res = self.client.get_parameter().name(&self.name).send().await;
        let out = match res {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(port_error("ssm:GetParameter", e)),
        };
        let Some(p) = out.parameter() else {
            return Ok(None);
        };
        let text = p.value().unwrap_or_default();
        // An empty or placeholder parameter means "no override".
        if text.trim().is_empty() || text.trim() == "none" {
            return Ok(None);
        }
        Ok(Some((text.to_owned(), p.version().to_string())))
    }
}
