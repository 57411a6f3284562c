//! DynamoDB: the state table. Expiring claims (de-duplication, cooldowns) and deployment freezes.
//!
//! One table, partition key `pk` (string), TTL attribute `expires_at` (epoch seconds). DynamoDB
//! deletes expired items lazily, so every read also compares `expires_at` with the clock.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::port_error;
use crate::features::identity::{MAX_AGE_DAYS, PrincipalProfile};
use crate::ports::{
    Claim, ClaimOnce, PortError, PortErrorKind, PrincipalHistory, ReadDeploymentFreeze,
};

#[derive(Debug, Clone)]
pub struct StateTable {
    client: Client,
    table: String,
}

impl StateTable {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        StateTable {
            client: Client::new(config),
            table: table.into(),
        }
    }

    /// The key of a principal's history item.
    pub fn principal_key(principal: &str) -> String {
        format!("principal#{principal}")
    }

    /// The key of a pipeline's deployment freeze item.
    pub fn freeze_key(pipeline: &str) -> String {
        format!("freeze#{pipeline}")
    }
}

fn epoch(t: DateTime<Utc>) -> AttributeValue {
    AttributeValue::N(t.timestamp().to_string())
}

impl ClaimOnce for StateTable {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key.to_owned()))
            .item("owner", AttributeValue::S(owner.to_owned()))
            .item("claimed_at", epoch(now))
            .item("expires_at", epoch(until))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR #owner = :owner",
            )
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":now", epoch(now))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(Claim::Won),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Claim::Held)
            }
            Err(e) => Err(port_error("dynamodb:PutItem", e)),
        }
    }
}

impl ReadDeploymentFreeze for StateTable {
    async fn freeze(
        &self,
        pipeline: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::freeze_key(pipeline)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("dynamodb:GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let expires = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok());
        if expires.is_some_and(|e| e <= now.timestamp()) {
            return Ok(None);
        }
        let reason = item
            .get("reason")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_else(|| "deployments are frozen".to_owned());
        Ok(Some(reason))
    }
}

/// A profile is capped well under DynamoDB's 400 KB item limit.
const MAX_PROFILE_BYTES: usize = 64 * 1024;

impl PrincipalHistory for StateTable {
    async fn load(&self, principal: &str) -> Result<Option<PrincipalProfile>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::principal_key(principal)))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(text) = out
            .item()
            .and_then(|i| i.get("profile"))
            .and_then(|v| v.as_s().ok())
        else {
            return Ok(None);
        };
        // A profile that no longer parses (an older format) is started afresh, not fatal.
        Ok(serde_json::from_str(text).ok())
    }

    async fn save(
        &self,
        principal: &str,
        profile: &PrincipalProfile,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        let text = serde_json::to_string(profile)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        if text.len() > MAX_PROFILE_BYTES {
            return Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                format!(
                    "profile of {principal} is {} bytes, above {MAX_PROFILE_BYTES}",
                    text.len()
                ),
            ));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::principal_key(principal)))
            .item("profile", AttributeValue::S(text))
            .item(
                "expires_at",
                epoch(now + chrono::Duration::days(MAX_AGE_DAYS)),
            )
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}
