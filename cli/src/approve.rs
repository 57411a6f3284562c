//! `vigil approve`: a named approver's verdict on a decision, sent to the stack's `ApproverUrl`
//! signed with the caller's own AWS credentials (SigV4 for the service `lambda`), so Lambda can
//! tell the approve function who it is.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The request a verdict is: `POST` of `{"decision", "verdict"}` to the URL.
pub fn body(decision: &str, deny: bool) -> String {
    serde_json::json!({
        "decision": decision,
        "verdict": if deny { "deny" } else { "approve" },
    })
    .to_string()
}

/// The request an undo is: `POST` of `{"undo"}` to the URL.
pub fn undo_body(decision: &str) -> String {
    serde_json::json!({ "undo": decision }).to_string()
}

/// The region of a function URL (`https://<id>.lambda-url.<region>.on.aws/`).
pub fn region_of(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    let _id = parts.next()?;
    (parts.next()? == "lambda-url").then_some(())?;
    parts.next().filter(|r| !r.is_empty())
}

/// `body` as a request to `url`, signed for `region` with `credentials`.
pub fn signed(
    url: &str,
    body: String,
    region: &str,
    credentials: aws_credential_types::Credentials,
    now: SystemTime,
) -> Result<http::Request<Full<bytes::Bytes>>> {
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .context("signing parameters")?
        .into();
    let uri: http::Uri = url.parse().context("the URL")?;
    let host = uri.host().context("the URL has no host")?.to_owned();
    let headers = [
        ("content-type", "application/json"),
        ("host", host.as_str()),
    ];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .context("the request to sign")?;
    let (instructions, _) = sign(signable, &params)
        .context("signing the request")?
        .into_parts();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/json")
        .header("host", host)
        .body(Full::new(bytes::Bytes::from(body)))
        .context("building the request")?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request)
}

/// Sends `body` (a verdict or an undo) and returns the approve function's status and answer.
pub async fn send(url: &str, body: String) -> Result<(u16, String)> {
    let sdk = vigil_aws::load_config().await;
    let region = match region_of(url) {
        Some(r) => r.to_owned(),
        None => sdk
            .region()
            .map(ToString::to_string)
            .context("no region: give the stack's ApproverUrl or set AWS_REGION")?,
    };
    let credentials = sdk
        .credentials_provider()
        .context("no AWS credentials: a named approver signs with their own")?
        .provide_credentials()
        .await
        .context("reading your AWS credentials")?;
    let request = signed(url, body, &region, credentials, SystemTime::now())?;
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .context("the system's root certificates")?;
    // Plain HTTP only to this machine (a local endpoint in tests); the stack's URL is HTTPS.
    let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
    if !local && !url.starts_with("https://") {
        bail!("the ApproverUrl is an https:// address");
    }
    let connector = tls.https_or_http().enable_http1().build();
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let response = client
        .request(request)
        .await
        .context("sending the request")?;
    let status = response.status().as_u16();
    let text = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

/// The page's message, from the approve function's HTML answer.
pub fn message(html: &str) -> String {
    let between = |open: &str, close: &str| -> Option<String> {
        let start = html.find(open)? + open.len();
        let end = html[start..].find(close)? + start;
        Some(html[start..end].to_owned())
    };
    match (between("<h1>", "</h1>"), between("<p>", "</p>")) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        _ => html.chars().take(500).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_signed_for_lambda_in_the_urls_region() {
        let url = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/";
        assert_eq!(region_of(url), Some("eu-west-1"));
        assert_eq!(region_of("https://example.com/"), None);
        let credentials = aws_credential_types::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("session".into()),
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_126_400);
        let request = signed(url, body("d-1", false), "eu-west-1", credentials, at).unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261201/eu-west-1/lambda/aws4_request"
            ),
            "{auth}"
        );
        assert!(
            auth.contains("SignedHeaders=") && auth.contains("host"),
            "{auth}"
        );
        assert_eq!(request.headers()["x-amz-security-token"], "session");
        assert_eq!(request.method(), "POST");
        assert_eq!(body("d-1", true), r#"{"decision":"d-1","verdict":"deny"}"#);
    }

    #[test]
    fn the_answer_is_read_from_the_page() {
        assert_eq!(
            message("<html><h1>Approval counted</h1><p>1 of 2 named approvals</p></html>"),
            "Approval counted: 1 of 2 named approvals"
        );
    }
}
