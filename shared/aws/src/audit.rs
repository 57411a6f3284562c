//! The audit trail in S3 (one object per record, in a bucket with Object Lock and versioning)
//! with its chain head in DynamoDB.
//!
//! S3 decides who appends record `n`: the object is written with `If-None-Match: *`, so of two
//! concurrent appenders exactly one creates it and the other reads it and tries `n + 1`. The
//! head item is a hint that saves listing the bucket, and only a hint: it is believed only when
//! the record it names is in the bucket with the hash it claims, and an appender that finds it
//! wrong (reset, deleted, pointed ahead or far behind by anyone able to write the table) or
//! behind (a crash between the two writes) finds the tail from the bucket itself. Whoever
//! writes the head can slow an append down, never stop it or fork the chain.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use super::port_error;
use vigil_core::audit::{self, AuditRecord};
use vigil_handlers::ports::{AppendAudit, PortError, PortErrorKind};

/// The head item's key in the state table.
pub const HEAD_KEY: &str = "audit#head";
/// Appends give up after this many lost races (each loss means someone else appended).
const MAX_RACES: usize = 16;
/// After this many records found ahead of the hint, the tail is looked up in the bucket
/// instead of walked to one record at a time.
const WALK: usize = 2;

#[derive(Debug, Clone)]
pub struct AuditTrail {
    s3: aws_sdk_s3::Client,
    dynamo: aws_sdk_dynamodb::Client,
    bucket: String,
    prefix: String,
    table: String,
}

impl AuditTrail {
    pub fn new(
        config: &aws_config::SdkConfig,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        AuditTrail {
            s3: aws_sdk_s3::Client::new(config),
            dynamo: aws_sdk_dynamodb::Client::new(config),
            bucket: bucket.into(),
            prefix: prefix.into(),
            table: table.into(),
        }
    }

    /// The last record the head knows of: (seq, hash).
    async fn head(&self) -> Result<Option<(u64, String)>, PortError> {
        const OP: &str = "dynamodb:GetItem";
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(HEAD_KEY.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let seq = item
            .get("seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok());
        let hash = item.get("hash").and_then(|v| v.as_s().ok()).cloned();
        match (seq, hash) {
            (Some(seq), Some(hash)) => Ok(Some((seq, hash))),
            _ => Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                "the audit head item is malformed",
            )),
        }
    }

    /// Moves the head forward to `record` (never back).
    async fn advance(&self, record: &AuditRecord) -> Result<(), PortError> {
        let res = self
            .dynamo
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(HEAD_KEY.to_owned()))
            .update_expression("SET #seq = :seq, #hash = :hash")
            .condition_expression("attribute_not_exists(#seq) OR #seq < :seq")
            .expression_attribute_names("#seq", "seq")
            .expression_attribute_names("#hash", "hash")
            .expression_attribute_values(":seq", AttributeValue::N(record.seq.to_string()))
            .expression_attribute_values(":hash", AttributeValue::S(record.hash.clone()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // Someone moved it further already.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(port_error("dynamodb:UpdateItem", e)),
        }
    }

    /// Writes the record's object unless one exists; `false` when it already existed.
    async fn create(&self, record: &AuditRecord) -> Result<bool, PortError> {
        const OP: &str = "s3:PutObject";
        let body = serde_json::to_vec(record)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        let res = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(audit::key(&self.prefix, record.seq))
            .body(ByteStream::from(body))
            .content_type("application/json")
            .if_none_match("*")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
            Err(e) => Err(port_error(OP, e)),
        }
    }

    /// The head, when the bucket agrees with it: the record it names exists with its hash.
    /// Otherwise (missing, malformed, or naming a record that is not there as it says) the tail
    /// found in the bucket, and a warning.
    async fn believed_head(&self) -> Result<Option<(u64, String)>, PortError> {
        let hint = match self.head().await {
            Ok(hint) => hint,
            Err(e) if e.kind == PortErrorKind::Rejected => None,
            Err(e) => return Err(e),
        };
        if let Some((seq, hash)) = &hint
            && self.get(*seq).await?.is_some_and(|r| r.hash == *hash)
        {
            return Ok(hint);
        }
        let tail = self.tail(None).await?;
        if hint.is_some() || tail.is_some() {
            tracing::warn!(
                vigil_audit_head_wrong = 1,
                head = ?hint.as_ref().map(|(seq, _)| seq),
                tail = ?tail.as_ref().map(|(seq, _)| seq),
                "the audit head does not match the trail; appending after the trail's own tail"
            );
        }
        Ok(tail)
    }

    /// Every key of the trail (paged), after record `after` when given.
    async fn keys(&self, after: Option<u64>) -> Result<Vec<String>, PortError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_start_after(after.map(|seq| audit::key(&self.prefix, seq)))
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| port_error("s3:ListObjectsV2", e))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// The trail's last record in the bucket (keys sort by sequence), listing after record
    /// `after` when given and before everything otherwise.
    async fn tail(&self, after: Option<u64>) -> Result<Option<(u64, String)>, PortError> {
        const OP: &str = "s3:ListObjectsV2";
        let last = self.keys(after).await?.into_iter().max();
        let seq = match last {
            Some(key) => audit::seq_of(&self.prefix, &key).ok_or_else(|| {
                PortError::new(
                    OP,
                    PortErrorKind::Rejected,
                    format!("{key} is not a record's key"),
                )
            })?,
            None => match after {
                // Nothing after `after`: it is the tail.
                Some(seq) => seq,
                None => return Ok(None),
            },
        };
        Ok(self.get(seq).await?.map(|r| (r.seq, r.hash)))
    }

    /// Reads record `seq`, if its object exists.
    async fn get(&self, seq: u64) -> Result<Option<AuditRecord>, PortError> {
        const OP: &str = "s3:GetObject";
        let res = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(audit::key(&self.prefix, seq))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(port_error(OP, e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::new(OP, PortErrorKind::Transient, e))?
            .into_bytes();
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))
    }

    /// Every key of the trail with its versions and whether it was deleted (for verification:
    /// a record is written once).
    pub async fn versions(&self) -> Result<Vec<vigil_core::audit::StoredVersions>, PortError> {
        use std::collections::BTreeMap;
        const OP: &str = "s3:ListObjectVersions";
        // key -> (versions, newest is a delete marker)
        let mut seen: BTreeMap<String, (usize, bool)> = BTreeMap::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let out = self
                .s3
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
            for v in out.versions() {
                if let Some(k) = v.key() {
                    seen.entry(k.to_owned()).or_default().0 += 1;
                }
            }
            for m in out.delete_markers() {
                if let (Some(k), Some(true)) = (m.key(), m.is_latest()) {
                    seen.entry(k.to_owned()).or_default().1 = true;
                }
            }
            if out.is_truncated() != Some(true) {
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            version_marker = out.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(seen
            .into_iter()
            .map(
                |(key, (versions, deleted))| vigil_core::audit::StoredVersions {
                    key,
                    versions,
                    deleted,
                },
            )
            .collect())
    }

    /// Every object of the trail, in key order, with its bytes (for verification).
    pub async fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, PortError> {
        let mut keys = self.keys(None).await?;
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let out = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| port_error("s3:GetObject", e))?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| PortError::new("s3:GetObject", PortErrorKind::Transient, e))?
                .into_bytes()
                .to_vec();
            objects.push((key, bytes));
        }
        Ok(objects)
    }
}

impl AppendAudit for AuditTrail {
    async fn append(
        &self,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<AuditRecord, PortError> {
        let mut last = self.believed_head().await?;
        for race in 0..MAX_RACES {
            if race == WALK {
                last = self.tail(last.as_ref().map(|(seq, _)| *seq)).await?;
            }
            let record = match &last {
                Some((seq, hash)) => {
                    AuditRecord::after(*seq, hash, at, kind, subject, payload.clone())
                }
                None => AuditRecord::next(None, at, kind, subject, payload.clone()),
            };
            if self.create(&record).await? {
                self.advance(&record).await?;
                return Ok(record);
            }
            // Record `seq` exists: someone appended it (or crashed before moving the head).
            let Some(existing) = self.get(record.seq).await? else {
                continue;
            };
            self.advance(&existing).await?;
            last = Some((existing.seq, existing.hash));
        }
        Err(PortError::new(
            "audit:append",
            PortErrorKind::Transient,
            format!("lost {MAX_RACES} races for the next audit record"),
        ))
    }
}
