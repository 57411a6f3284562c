//! SNS: publishing alerts.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use super::port_error;
use vigil_core::alert::Alert;
use vigil_handlers::ports::{PortError, PortErrorKind, PublishAlert};

#[derive(Debug, Clone)]
pub struct Sns {
    client: Client,
    topic_arn: String,
}

impl Sns {
    pub fn new(config: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Sns {
            client: Client::new(config),
            topic_arn: topic_arn.into(),
        }
    }
}

/// One message per kind of subscriber (SNS's `MessageStructure: json`): the text for email and
/// every other protocol, the chat notification for HTTPS (the chat service's subscription).
pub fn message(alert: &Alert) -> Result<String, PortError> {
    let chat = serde_json::to_string(&alert.chat_notification())
        .map_err(|e| PortError::new("sns:Publish", PortErrorKind::Rejected, e))?;
    serde_json::to_string(&serde_json::json!({
        "default": alert.body,
        "email": alert.body,
        "https": chat,
    }))
    .map_err(|e| PortError::new("sns:Publish", PortErrorKind::Rejected, e))
}

impl PublishAlert for Sns {
    async fn publish(&self, alert: &Alert) -> Result<String, PortError> {
        const OP: &str = "sns:Publish";
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&alert.subject)
            .message_structure("json")
            .message(message(alert)?);
        for (name, value) in &alert.attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
            req = req.message_attributes(name, attr);
        }
        let out = req.send().await.map_err(|e| port_error(OP, e))?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }
}
