//! The tamper-evident audit trail: a hash chain of records. Pure.
//!
//! Each record's hash covers its own content and the previous record's hash, so removing,
//! reordering or rewriting any record breaks every hash after it. [`verify`] finds the first
//! break.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// What the record is about: `decision`, `outcome`, ...
    pub kind: String,
    /// The id of the decision or outcome it records.
    pub subject: String,
    pub payload: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("record {index} has seq {found}, expected {expected}")]
    Sequence {
        index: usize,
        expected: u64,
        found: u64,
    },
    #[error("record {seq} does not link to the record before it")]
    Link { seq: u64 },
    #[error("record {seq} was altered: its content does not match its hash")]
    Altered { seq: u64 },
}

fn digest(
    seq: u64,
    at: &DateTime<Utc>,
    kind: &str,
    subject: &str,
    payload: &serde_json::Value,
    prev: &str,
) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different records serialise to the same bytes.
    for part in [
        seq.to_string().as_bytes(),
        at.to_rfc3339().as_bytes(),
        kind.as_bytes(),
        subject.as_bytes(),
        payload.to_string().as_bytes(),
        prev.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

impl AuditRecord {
    /// The record that follows the record `seq` whose hash is `prev_hash`.
    pub fn after(
        seq: u64,
        prev_hash: &str,
        at: DateTime<Utc>,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
    ) -> AuditRecord {
        let seq = seq + 1;
        let hash = digest(seq, &at, kind, subject, &payload, prev_hash);
        AuditRecord {
            seq,
            at,
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            payload,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }

    /// The record that follows `prev` (or starts a chain).
    pub fn next(
        prev: Option<&AuditRecord>,
        at: DateTime<Utc>,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
    ) -> AuditRecord {
        let (seq, prev_hash) = match prev {
            Some(p) => (p.seq + 1, p.hash.clone()),
            None => (0, GENESIS.to_owned()),
        };
        let hash = digest(seq, &at, kind, subject, &payload, &prev_hash);
        AuditRecord {
            seq,
            at,
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            payload,
            prev_hash,
            hash,
        }
    }
}

/// The object key of record `seq` under `prefix`: zero-padded, so keys sort in chain order.
pub fn key(prefix: &str, seq: u64) -> String {
    format!("{prefix}{seq:020}.json")
}

/// The sequence number a record's key names (the inverse of [`key`]).
pub fn seq_of(prefix: &str, key: &str) -> Option<u64> {
    let digits = key.strip_prefix(prefix)?.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What a stored trail looks like when read back: each object's key and its bytes.
#[derive(Debug, thiserror::Error)]
pub enum StoredTrailError {
    #[error("object {key} is not an audit record")]
    Unreadable {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("object {key} holds record {seq}: records were moved or reordered")]
    Misplaced { key: String, seq: u64 },
    #[error(transparent)]
    Chain(#[from] AuditError),
    #[error(
        "object {key} has {versions} versions: a record is written once, so it was overwritten"
    )]
    Overwritten { key: String, versions: usize },
    #[error("object {key} was deleted (its newest version is a delete marker)")]
    Deleted { key: String },
}

/// What the bucket holds under one key of the trail, every version counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersions {
    pub key: String,
    /// Versions of the object (delete markers not counted).
    pub versions: usize,
    /// The newest version is a delete marker.
    pub deleted: bool,
}

/// Each record was written once and is still there: one version, no delete marker. A
/// rewrite that keeps the chain consistent (every later record re-hashed) still leaves a
/// second version behind, which reading the current versions alone would not see.
pub fn written_once(stored: &[StoredVersions]) -> Result<(), StoredTrailError> {
    for s in stored {
        if s.deleted {
            return Err(StoredTrailError::Deleted { key: s.key.clone() });
        }
        if s.versions != 1 {
            return Err(StoredTrailError::Overwritten {
                key: s.key.clone(),
                versions: s.versions,
            });
        }
    }
    Ok(())
}

/// Verifies a trail stored one record per object (`key(prefix, seq)`), objects in key order:
/// a record removed, altered, or moved to another key is reported.
pub fn verify_stored(
    prefix: &str,
    objects: &[(String, Vec<u8>)],
) -> Result<usize, StoredTrailError> {
    let mut records = Vec::with_capacity(objects.len());
    for (k, bytes) in objects {
        let r: AuditRecord =
            serde_json::from_slice(bytes).map_err(|source| StoredTrailError::Unreadable {
                key: k.clone(),
                source,
            })?;
        if *k != key(prefix, r.seq) {
            return Err(StoredTrailError::Misplaced {
                key: k.clone(),
                seq: r.seq,
            });
        }
        records.push(r);
    }
    verify(&records)?;
    Ok(records.len())
}

/// Verifies a whole chain, from its first record.
pub fn verify(records: &[AuditRecord]) -> Result<(), AuditError> {
    let mut prev_hash = GENESIS;
    for (index, r) in records.iter().enumerate() {
        let expected = index as u64;
        if r.seq != expected {
            return Err(AuditError::Sequence {
                index,
                expected,
                found: r.seq,
            });
        }
        if r.prev_hash != prev_hash {
            return Err(AuditError::Link { seq: r.seq });
        }
        if digest(r.seq, &r.at, &r.kind, &r.subject, &r.payload, &r.prev_hash) != r.hash {
            return Err(AuditError::Altered { seq: r.seq });
        }
        prev_hash = &r.hash;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: usize) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, i as u32, 0).unwrap();
            let r = AuditRecord::next(
                out.last(),
                at,
                "decision",
                &format!("d{i}"),
                serde_json::json!({"i": i}),
            );
            out.push(r);
        }
        out
    }

    fn check(records: &[AuditRecord], expected: Result<(), AuditError>) {
        assert_eq!(verify(records), expected);
    }

    #[test]
    fn a_records_key_names_its_sequence_and_nothing_else_does() {
        assert_eq!(seq_of("audit/", &key("audit/", 42)), Some(42));
        assert_eq!(seq_of("audit/", &key("audit/", u64::MAX)), Some(u64::MAX));
        for other in [
            "audit/42.json",
            "audit/0000000000000000004x.json",
            "elsewhere/00000000000000000042.json",
            "audit/00000000000000000042.json.bak",
            "audit/99999999999999999999.json",
        ] {
            assert_eq!(seq_of("audit/", other), None, "{other}");
        }
    }

    #[test]
    fn intact_chain_verifies() {
        check(&chain(5), Ok(()));
        check(&[], Ok(()));
    }

    #[test]
    fn edits_removals_and_reorders_are_found() {
        let mut edited = chain(4);
        edited[2].payload = serde_json::json!({"i": 99});
        check(&edited, Err(AuditError::Altered { seq: 2 }));

        let mut removed = chain(4);
        removed.remove(1);
        check(
            &removed,
            Err(AuditError::Sequence {
                index: 1,
                expected: 1,
                found: 2,
            }),
        );

        let mut relinked = chain(3);
        relinked[1].prev_hash = GENESIS.to_owned();
        check(&relinked, Err(AuditError::Link { seq: 1 }));
    }

    #[test]
    fn a_record_read_back_from_its_json_still_verifies() {
        // Floats whose shortest text a fast parser reads back one ulp off (a decision's
        // features are full of them).
        let payload =
            serde_json::json!({"values": [1.9900320459386867, 0.1 + 0.2, 1e-7, 99.50160229693434]});
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let first = AuditRecord::next(None, at, "decision", "d-1", payload);
        let text = serde_json::to_string(&first).unwrap();
        let read: AuditRecord = serde_json::from_str(&text).unwrap();
        verify(&[read]).unwrap();
    }
}
