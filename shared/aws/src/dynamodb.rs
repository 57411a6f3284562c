//! DynamoDB: the state table. Expiring claims (de-duplication, cooldowns) and deployment freezes.
//!
//! One table, partition key `pk` (string), TTL attribute `expires_at` (epoch seconds). DynamoDB
//! deletes expired items lazily, so every read also compares `expires_at` with the clock.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::port_error;
use vigil_core::domain::Attempt;
use vigil_core::features::identity::{MAX_AGE_DAYS, PrincipalProfile};
use vigil_core::keys;
use vigil_handlers::ports::{
    ActionHistory, Claim, ClaimOnce, Conversations, KeepUndoable, LoadPendingApproval,
    LoadUndoable, PortError, PortErrorKind, PrincipalHistory, ReadDeploymentFreeze, RecordIncident,
    SavePendingApproval, TakeQuota,
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
        keys::principal(principal)
    }

    /// The key of a pipeline's deployment freeze item.
    pub fn freeze_key(pipeline: &str) -> String {
        keys::freeze(pipeline)
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

/// The state table's index of incidents by deployment target (`target`, `opened`).
pub const POSTURE_INDEX: &str = "posture";

impl vigil_handlers::ports::ReadPosture for StateTable {
    async fn incidents(
        &self,
        target: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<vigil_core::gate::PostureMark>, PortError> {
        const OP: &str = "dynamodb:Query";
        let mut marks = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(POSTURE_INDEX)
            .key_condition_expression("#t = :t AND #o >= :since")
            .expression_attribute_names("#t", "target")
            .expression_attribute_names("#o", "opened")
            .expression_attribute_values(":t", AttributeValue::S(target.to_owned()))
            .expression_attribute_values(":since", epoch(since))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| port_error(OP, e))?;
            // A mark that does not decode is skipped, not fatal: the others still count.
            match item
                .get("mark")
                .map(|m| serde_dynamo::from_attribute_value(m.clone()))
            {
                Some(Ok(mark)) => marks.push(mark),
                Some(Err(e)) => tracing::warn!(error = %e, "posture mark unreadable"),
                None => {}
            }
            if marks.len() >= 1000 {
                break;
            }
        }
        Ok(marks)
    }
}

impl vigil_handlers::ports::Sightings for StateTable {
    async fn sighted(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<u32, PortError> {
        const OP: &str = "dynamodb:UpdateItem";
        // One map of delivery -> epoch per finding; the item expires a day after the last.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::sighting(key)))
            .update_expression("SET seen = if_not_exists(seen, :empty), expires_at = :ttl")
            .expression_attribute_values(":empty", AttributeValue::M(Default::default()))
            .expression_attribute_values(":ttl", epoch(now + chrono::Duration::days(1)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let earlier: Vec<i64> = out
            .attributes()
            .and_then(|a| a.get("seen"))
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter(|(o, _)| o.as_str() != owner)
                    .filter_map(|(_, t)| t.as_n().ok()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::sighting(key)))
            .update_expression("SET seen.#o = :now")
            .expression_attribute_names("#o", owner)
            .expression_attribute_values(":now", epoch(now))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let (from, to) = ((now - window).timestamp(), now.timestamp());
        Ok(
            u32::try_from(earlier.iter().filter(|t| **t >= from && **t < to).count())
                .unwrap_or(u32::MAX),
        )
    }
}

impl vigil_handlers::ports::SetDeploymentFreeze for StateTable {
    async fn set_freeze(
        &self,
        target: &str,
        reason: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::freeze_key(target)))
            .item(
                "reason",
                AttributeValue::S(vigil_core::names::display_text(reason, 1000)),
            )
            .item("expires_at", epoch(until))
            .send()
            .await
            .map_err(|e| port_error("dynamodb:PutItem", e))?;
        Ok(())
    }
}

impl StateTable {
    /// The key of a target's last deploy.
    pub fn deploy_key(target: &str) -> String {
        keys::deploy(target)
    }
}

impl vigil_handlers::ports::RecordDeploy for StateTable {
    async fn record_deploy(
        &self,
        deploy: &vigil_core::gate::Deploy,
        keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        let value = serde_dynamo::to_attribute_value(deploy)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::deploy_key(&deploy.target)))
            .item("deploy", value)
            .item("expires_at", epoch(keep_until))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl vigil_handlers::ports::LastDeploy for StateTable {
    async fn last_deploy(
        &self,
        target: &str,
    ) -> Result<Option<vigil_core::gate::Deploy>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(Self::deploy_key(target)))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(value) = out.item().and_then(|i| i.get("deploy")) else {
            return Ok(None);
        };
        serde_dynamo::from_attribute_value(value.clone())
            .map(Some)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))
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
        let Some(value) = out.item().and_then(|i| i.get("profile")) else {
            return Ok(None);
        };
        // A profile that no longer reads (an older format) is started afresh, not fatal.
        Ok(serde_dynamo::from_attribute_value(value.clone()).ok())
    }

    async fn save(
        &self,
        principal: &str,
        profile: &PrincipalProfile,
        now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        // The profile is bounded by construction; its JSON size stands for the item's size.
        let size = serde_json::to_vec(profile).map_or(usize::MAX, |v| v.len());
        if size > MAX_PROFILE_BYTES {
            return Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                format!("profile of {principal} is {size} bytes, above {MAX_PROFILE_BYTES}"),
            ));
        }
        let value: AttributeValue = serde_dynamo::to_attribute_value(profile)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(Self::principal_key(principal)))
            .item("profile", value)
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

/// Attempts kept per resource; older ones are trimmed after each append.
const MAX_ATTEMPTS: usize = 32;

impl ActionHistory for StateTable {
    async fn recent(
        &self,
        resource: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Attempt>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::attempts(resource)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("dynamodb:GetItem", e))?;
        let list = out
            .item()
            .and_then(|i| i.get("attempts"))
            .and_then(|v| v.as_l().ok())
            .map(|l| l.as_slice())
            .unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|v| v.as_s().ok())
            .filter_map(|s| serde_json::from_str::<Attempt>(s).ok())
            .filter(|a| a.at >= since)
            .collect())
    }

    async fn record(
        &self,
        resource: &str,
        attempt: &Attempt,
        keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:UpdateItem";
        let text = serde_json::to_string(attempt)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        let key = AttributeValue::S(keys::attempts(resource));
        // An atomic append, so concurrent deliveries never lose each other's attempts.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key.clone())
            .update_expression("SET attempts = list_append(if_not_exists(attempts, :empty), :new), expires_at = :until")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", AttributeValue::L(vec![AttributeValue::S(text)]))
            .expression_attribute_values(":until", epoch(keep_until))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let len = out
            .attributes()
            .and_then(|a| a.get("attempts"))
            .and_then(|v| v.as_l().ok())
            .map_or(0, Vec::len);
        if len > MAX_ATTEMPTS {
            let drop: Vec<String> = (0..len - MAX_ATTEMPTS)
                .map(|i| format!("attempts[{i}]"))
                .collect();
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", key)
                .update_expression(format!("REMOVE {}", drop.join(", ")))
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
        }
        Ok(())
    }
}

impl TakeQuota for StateTable {
    async fn take(
        &self,
        key: &str,
        limit: u32,
        until: DateTime<Utc>,
    ) -> Result<Option<u32>, PortError> {
        const OP: &str = "dynamodb:UpdateItem";
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_owned()))
            .update_expression("ADD #n :one SET expires_at = :until")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "count")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":until", epoch(until))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(
                out.attributes()
                    .and_then(|a| a.get("count"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(limit),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(port_error(OP, e)),
        }
    }
}

impl RecordIncident for StateTable {
    async fn record_incident(
        &self,
        incident: &vigil_core::domain::Incident,
        tier: vigil_core::domain::Tier,
        keep_until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let summary: AttributeValue = serde_dynamo::to_attribute_value(serde_json::json!({
            "resource": incident.resource,
            "failure_mode": incident.failure_mode,
            "threat": incident.threat,
            "severity": incident.severity,
            "confidence": incident.confidence,
            "opened_at": incident.opened_at,
            "tier": tier,
            "evidence": incident.evidence.len(),
        }))
        .map_err(|e| PortError::new("dynamodb:PutItem", PortErrorKind::Rejected, e))?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(keys::incident(&incident.id)))
            .item("incident", summary)
            .item("expires_at", epoch(keep_until));
        // Incidents on a deployment target are indexed for the gate (POSTURE_INDEX).
        if let Some((target, mark)) = vigil_core::gate::PostureMark::of(incident, tier) {
            let mark = serde_dynamo::to_attribute_value(&mark)
                .map_err(|e| PortError::new("dynamodb:PutItem", PortErrorKind::Rejected, e))?;
            put = put
                .item("target", AttributeValue::S(target))
                .item("opened", epoch(incident.opened_at))
                .item("mark", mark);
        }
        let res = put
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("dynamodb:PutItem", e)),
        }
    }
}

/// The key of a pending approval's item.
fn pending_key(decision_id: &str) -> String {
    keys::pending_approval(decision_id)
}

fn sent_key(key: &str) -> String {
    keys::sent(key)
}

impl vigil_handlers::ports::MarkAlertSent for StateTable {
    async fn mark_sent(
        &self,
        key: &str,
        message_id: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(sent_key(key)))
            .item("message_id", AttributeValue::S(message_id.to_owned()))
            .item("expires_at", epoch(until))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl vigil_handlers::ports::FindAlertSent for StateTable {
    async fn find_sent(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, PortError> {
        let item = self.live_item(&sent_key(key), now).await?;
        Ok(item.and_then(|i| i.get("message_id").and_then(|v| v.as_s().ok()).cloned()))
    }
}

/// A digest item's attributes per rule: its count, latest example and level.
const DIGEST_COUNT: &str = "n:";
const DIGEST_EXAMPLE: &str = "e:";
const DIGEST_LEVEL: &str = "l:";

impl vigil_handlers::ports::DigestBook for StateTable {
    async fn note(
        &self,
        day: chrono::NaiveDate,
        entry: &vigil_core::digest::Entry,
        keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:UpdateItem";
        let level = serde_json::to_value(entry.level)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        // One item per day; per rule three attributes, named through placeholders (a rule's
        // name is letters, digits, `_`, `-` and `.`).
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::digest(day)))
            .update_expression("ADD #n :one SET #e = :example, #l = :level, expires_at = :until")
            .expression_attribute_names("#n", format!("{DIGEST_COUNT}{}", entry.rule))
            .expression_attribute_names("#e", format!("{DIGEST_EXAMPLE}{}", entry.rule))
            .expression_attribute_names("#l", format!("{DIGEST_LEVEL}{}", entry.rule))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":example", AttributeValue::S(entry.example.clone()))
            .expression_attribute_values(":level", AttributeValue::S(level))
            .expression_attribute_values(":until", epoch(keep_until))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }

    async fn lines(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<Vec<vigil_core::digest::Line>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::digest(day)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(item) = out.item else {
            return Ok(Vec::new());
        };
        let text = |prefix: &str, rule: &str| {
            item.get(&format!("{prefix}{rule}"))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        Ok(item
            .iter()
            .filter_map(|(name, v)| {
                let rule = name.strip_prefix(DIGEST_COUNT)?;
                let count = v.as_n().ok()?.parse().ok()?;
                Some(vigil_core::digest::Line {
                    rule: rule.to_owned(),
                    level: text(DIGEST_LEVEL, rule)
                        .and_then(|l| serde_json::from_value(serde_json::Value::String(l)).ok()),
                    count,
                    example: text(DIGEST_EXAMPLE, rule).unwrap_or_default(),
                })
            })
            .collect())
    }
}

impl StateTable {
    /// The item under `pk`, read consistently, unless its `expires_at` has passed (TTL deletes
    /// late: an expired item counts as gone).
    async fn live_item(
        &self,
        pk: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<std::collections::HashMap<String, AttributeValue>>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let expires = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        Ok((now.timestamp() < expires).then_some(item))
    }
}

impl StateTable {
    /// Writes a decision under `pk` as JSON text (a decision carries its evidence's free-form
    /// values, which do not map onto DynamoDB types one to one), forgotten after `until`.
    async fn put_decision(
        &self,
        pk: String,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        let body = serde_json::to_string(decision)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .item("decision", AttributeValue::S(body))
            .item("expires_at", epoch(until))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }

    /// The decision written under `pk`, unless it expired.
    async fn get_decision(
        &self,
        pk: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let Some(item) = self.live_item(pk, now).await? else {
            return Ok(None);
        };
        let body = item
            .get("decision")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| {
                PortError::new(OP, PortErrorKind::Rejected, "no decision in the item")
            })?;
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))
    }
}

impl SavePendingApproval for StateTable {
    async fn save_pending(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.put_decision(pending_key(&decision.id), decision, until)
            .await
    }
}

impl LoadPendingApproval for StateTable {
    async fn load_pending(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        self.get_decision(&pending_key(decision_id), now).await
    }
}

impl Conversations for StateTable {
    async fn recall(
        &self,
        about: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::conversation::Conversation>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let Some(item) = self.live_item(&keys::conversation(about), now).await? else {
            return Ok(None);
        };
        let body = item
            .get("conversation")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| {
                PortError::new(OP, PortErrorKind::Rejected, "no conversation in the item")
            })?;
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))
    }

    async fn keep(
        &self,
        about: &str,
        conversation: &vigil_core::conversation::Conversation,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        const OP: &str = "dynamodb:PutItem";
        let body = serde_json::to_string(conversation)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(keys::conversation(about)))
            .item("conversation", AttributeValue::S(body))
            .item("expires_at", epoch(until))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl KeepUndoable for StateTable {
    async fn keep_undoable(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.put_decision(keys::undoable(&decision.id), decision, until)
            .await
    }
}

impl LoadUndoable for StateTable {
    async fn load_undoable(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        self.get_decision(&keys::undoable(decision_id), now).await
    }
}
