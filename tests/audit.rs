//! The audit trail in S3 with Object Lock and its head in DynamoDB, against moto: appends
//! chain (also concurrently), a locked record cannot be deleted, and every kind of tampering
//! is caught by verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_s3::primitives::ByteStream;
use chrono::{Duration, TimeZone, Utc};
use vigil_aws::audit::AuditTrail;
use vigil_core::audit::{self, AuditRecord, StoredTrailError};
use vigil_handlers::ports::AppendAudit;
use vigil_tests as h;

struct Trail {
    stack: h::Stack,
    trail: AuditTrail,
    s3: aws_sdk_s3::Client,
}

async fn trail_of(n: usize) -> Trail {
    let stack = h::Stack::new().await;
    let trail = AuditTrail::new(&stack.config, &stack.audit_bucket, "audit/", &stack.table);
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
    for i in 0..n {
        trail
            .append(
                "decision",
                &format!("d-{i}"),
                serde_json::json!({"i": i}),
                t0 + Duration::seconds(i as i64),
            )
            .await
            .unwrap();
    }
    let s3 = aws_sdk_s3::Client::new(&stack.config);
    Trail { stack, trail, s3 }
}

impl Trail {
    async fn check(&self) -> Result<usize, StoredTrailError> {
        audit::verify_stored("audit/", &self.trail.read_all().await.unwrap())
    }

    /// What `vigil audit verify --bucket` checks: every record written once, then the chain.
    async fn check_all(&self) -> Result<usize, StoredTrailError> {
        audit::written_once(&self.trail.versions().await.unwrap())?;
        self.check().await
    }

    async fn record(&self, seq: u64) -> AuditRecord {
        let out = self
            .s3
            .get_object()
            .bucket(&self.stack.audit_bucket)
            .key(audit::key("audit/", seq))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&out.body.collect().await.unwrap().into_bytes()).unwrap()
    }

    /// Writes a new version of record `seq`'s object, as someone with write access could.
    async fn overwrite(&self, seq: u64, record: &AuditRecord) {
        self.s3
            .put_object()
            .bucket(&self.stack.audit_bucket)
            .key(audit::key("audit/", seq))
            .body(ByteStream::from(serde_json::to_vec(record).unwrap()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn appends_chain_and_verify() {
    let t = trail_of(5).await;
    assert_eq!(t.check().await.unwrap(), 5);
    let third = t.record(2).await;
    assert_eq!(third.subject, "d-2");
    assert_eq!(third.prev_hash, t.record(1).await.hash);
}

#[tokio::test]
async fn concurrent_appenders_never_fork_the_chain() {
    let t = trail_of(1).await;
    let at = Utc::now();
    let appends = (0..8).map(|i| {
        let trail = t.trail.clone();
        async move {
            trail
                .append("outcome", &format!("c-{i}"), serde_json::json!({}), at)
                .await
        }
    });
    let results = futures_join(appends).await;
    let mut seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=8).collect::<Vec<u64>>());
    assert_eq!(t.check().await.unwrap(), 9);
}

/// Runs futures concurrently on the test's runtime.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_locked_record_cannot_be_deleted() {
    let t = trail_of(2).await;
    let key = audit::key("audit/", 0);
    let head =
        t.s3.head_object()
            .bucket(&t.stack.audit_bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("GOVERNANCE")
    );
    let version = head.version_id().unwrap().to_owned();
    let refused =
        t.s3.delete_object()
            .bucket(&t.stack.audit_bucket)
            .key(&key)
            .version_id(&version)
            .send()
            .await;
    assert!(
        refused.is_err(),
        "deleting a locked version must be refused"
    );
    // The version is still there.
    t.s3.get_object()
        .bucket(&t.stack.audit_bucket)
        .key(&key)
        .version_id(&version)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_removed_record_is_caught() {
    let t = trail_of(4).await;
    // A delete marker hides the current version (the locked version stays, unseen).
    t.s3.delete_object()
        .bucket(&t.stack.audit_bucket)
        .key(audit::key("audit/", 1))
        .send()
        .await
        .unwrap();
    let err = t.check().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoredTrailError::Chain(audit::AuditError::Sequence { expected: 1, .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_altered_record_is_caught() {
    let t = trail_of(4).await;
    let mut r = t.record(2).await;
    r.payload = serde_json::json!({"i": 999});
    t.overwrite(2, &r).await;
    let err = t.check().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoredTrailError::Chain(audit::AuditError::Altered { seq: 2 })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn reordered_records_are_caught() {
    let t = trail_of(4).await;
    let (a, b) = (t.record(1).await, t.record(2).await);
    t.overwrite(1, &b).await;
    t.overwrite(2, &a).await;
    let err = t.check().await.unwrap_err();
    assert!(
        matches!(err, StoredTrailError::Misplaced { seq: 2, .. }),
        "{err}"
    );
}

/// Someone with write access rewrites the tail of the trail consistently (each record
/// re-hashed after the one before), so the current versions verify; the versions left behind
/// give it away. (The bucket policy refuses such a write without If-None-Match, which the
/// permission check proves; moto does not apply bucket policies.)
#[tokio::test]
async fn a_consistent_rewrite_is_caught_by_its_versions() {
    let t = trail_of(4).await;
    assert_eq!(t.check_all().await.unwrap(), 4);
    let mut prev = t.record(1).await;
    for seq in 2..4 {
        let old = t.record(seq).await;
        let forged = AuditRecord::next(
            Some(&prev),
            old.at,
            &old.kind,
            &old.subject,
            serde_json::json!({"i": "rewritten"}),
        );
        t.overwrite(seq, &forged).await;
        prev = forged;
    }
    // The current versions alone verify...
    assert_eq!(t.check().await.unwrap(), 4);
    // ... the versions do not.
    let err = t.check_all().await.unwrap_err();
    assert!(
        matches!(&err, StoredTrailError::Overwritten { key, versions: 2 } if *key == audit::key("audit/", 2)),
        "{err}"
    );
    // A deleted record is named as such.
    let t = trail_of(3).await;
    t.s3.delete_object()
        .bucket(&t.stack.audit_bucket)
        .key(audit::key("audit/", 2))
        .send()
        .await
        .unwrap();
    let err = t.check_all().await.unwrap_err();
    assert!(matches!(err, StoredTrailError::Deleted { .. }), "{err}");
}

/// Anyone able to write the state table can write the head item. It is only a hint: reset,
/// deleted, pointed far ahead, far behind or at a record with another hash, appends still
/// follow the trail's own tail, and the chain still verifies whole.
#[tokio::test]
async fn a_tampered_head_neither_stops_appends_nor_forks_the_chain() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let t = trail_of(3).await;
    let dynamo = aws_sdk_dynamodb::Client::new(&t.stack.config);
    let set_head = |seq: Option<u64>, hash: &str| {
        let (dynamo, table, hash) = (dynamo.clone(), t.stack.table.clone(), hash.to_owned());
        async move {
            let key = AttributeValue::S(vigil_aws::audit::HEAD_KEY.into());
            match seq {
                Some(seq) => {
                    dynamo
                        .put_item()
                        .table_name(&table)
                        .item("pk", key)
                        .item("seq", AttributeValue::N(seq.to_string()))
                        .item("hash", AttributeValue::S(hash))
                        .send()
                        .await
                        .unwrap();
                }
                None => {
                    dynamo
                        .delete_item()
                        .table_name(&table)
                        .key("pk", key)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    };
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let record1 = t.record(1).await;
    let tampered: [(Option<u64>, &str, &str); 5] = [
        (None, "", "deleted"),
        (Some(0), "0000", "reset to the start with a wrong hash"),
        (Some(1_000_000_000_000), "ffff", "pointed far ahead"),
        (Some(1), record1.hash.as_str(), "a genuine but old record"),
        (
            Some(2),
            "not-the-hash-of-2",
            "the right record, another hash",
        ),
    ];
    let mut expected = 3;
    for (seq, hash, what) in tampered {
        set_head(seq, hash).await;
        let r = t
            .trail
            .append("decision", what, serde_json::json!({}), at)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.seq, expected, "{what}");
        expected += 1;
    }
    // A head far behind: more records after it than an appender walks one by one.
    for i in 0..20 {
        t.trail
            .append("decision", &format!("more-{i}"), serde_json::json!({}), at)
            .await
            .unwrap();
        expected += 1;
    }
    set_head(Some(0), &t.record(0).await.hash).await;
    let r = t
        .trail
        .append("decision", "far behind", serde_json::json!({}), at)
        .await
        .unwrap();
    assert_eq!(r.seq, expected);
    assert_eq!(t.check_all().await.unwrap(), expected as usize + 1);
}
