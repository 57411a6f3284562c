//! Matching one CloudTrail record against the whole bundled pack (figures in
//! docs/performance.md): `cargo bench -p vigil-rules`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use vigil_rules::Pack;

fn record(source: &str, name: &str) -> serde_json::Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "eventTime": "2026-11-02T10:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"bucketName": "reports", "policy": "{}"},
        "responseElements": null,
        "eventID": "3b1f6a4e-0000-4000-8000-000000000001",
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333"
    })
}

fn bench(c: &mut Criterion) {
    let pack = Pack::bundled().expect("the bundled pack loads");
    let mut g = c.benchmark_group(format!("rules/{}", pack.len()));
    // A call no rule names (most of an account's traffic), one a rule names, and a sign-in.
    let quiet = record("ec2.amazonaws.com", "CreateTags");
    let named = record("s3.amazonaws.com", "PutBucketPolicy");
    let mut sign_in = record("signin.amazonaws.com", "ConsoleLogin");
    sign_in["responseElements"] = json!({"ConsoleLogin": "Success"});
    sign_in["additionalEventData"] = json!({"MFAUsed": "No"});
    for (label, r) in [
        ("unnamed_call", &quiet),
        ("named_call", &named),
        ("sign_in", &sign_in),
    ] {
        g.bench_function(label, |b| b.iter(|| pack.check(std::hint::black_box(r))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
