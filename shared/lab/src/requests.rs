//! Requests to the approve function's URL as Lambda delivers them: a real function URL payload
//! (`fixtures/function-url/approve-get.json`) with its method, token, form and client changed.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;

const GET: &str = include_str!("../../../fixtures/function-url/approve-get.json");
const NAMED: &str = include_str!("../../../fixtures/function-url/approve-iam-post.json");

/// The token of an approval link (`...?t=<token>`), or the text itself when it has none.
pub fn token_of(link: &str) -> &str {
    link.split_once("?t=").map_or(link, |(_, t)| t)
}

fn base(method: &str) -> LambdaFunctionUrlRequest {
    // The fixture is part of the crate: it always parses (a test pins it).
    let mut r: LambdaFunctionUrlRequest = serde_json::from_str(GET).unwrap_or_default();
    r.request_context.http.method = Some(method.to_owned());
    r
}

/// A link followed with `method` (GET, HEAD, or anything else), the token in its query.
pub fn follow(method: &str, link: &str) -> LambdaFunctionUrlRequest {
    let token = token_of(link);
    let mut r = base(method);
    r.raw_query_string = Some(format!("t={token}"));
    r.query_string_parameters = [("t".to_owned(), token.to_owned())].into_iter().collect();
    r
}

/// A link followed by a mail scanner or a browser's prefetch: a GET with their headers.
pub fn prefetch(link: &str) -> LambdaFunctionUrlRequest {
    let mut r = follow("GET", link);
    for (k, v) in [("purpose", "prefetch"), ("sec-purpose", "prefetch")] {
        if let Ok(v) = v.parse() {
            r.headers.insert(k, v);
        }
    }
    r.request_context.http.user_agent = Some("Mozilla/5.0 (compatible; link scanner)".into());
    r
}

/// The confirming POST of the page's form, as Lambda passes it (base64 when `base64`).
pub fn confirm(token: &str, from: &str, base64: bool) -> LambdaFunctionUrlRequest {
    let mut r = base("POST");
    r.raw_query_string = Some(String::new());
    r.query_string_parameters.clear();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("t", token)
        .finish();
    r.body = Some(if base64 {
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body
    });
    r.is_base64_encoded = base64;
    r.request_context.http.source_ip = Some(from.to_owned());
    r
}

/// A named approver's verdict through the IAM-authenticated URL, as Lambda passes it: signed by
/// `caller` (an IAM ARN; Lambda fills `requestContext.authorizer.iam` from the signature).
pub fn named(caller: &str, decision: &str, approve: bool) -> LambdaFunctionUrlRequest {
    // The fixture is part of the crate: it always parses (a test pins it).
    let mut r: LambdaFunctionUrlRequest = serde_json::from_str(NAMED).unwrap_or_default();
    if let Some(iam) = r
        .request_context
        .authorizer
        .as_mut()
        .and_then(|a| a.iam.as_mut())
    {
        iam.user_arn = Some(caller.to_owned());
    }
    r.body = Some(
        serde_json::json!({
            "decision": decision,
            "verdict": if approve { "approve" } else { "deny" },
        })
        .to_string(),
    );
    r
}

/// A named approver's undo of `decision`'s action through the IAM-authenticated URL.
pub fn named_undo(caller: &str, decision: &str) -> LambdaFunctionUrlRequest {
    let mut r = named(caller, decision, true);
    r.body = Some(serde_json::json!({ "undo": decision }).to_string());
    r
}

/// A POST with a body of its own (malformed, oversized, hostile).
pub fn post_raw(body: &str) -> LambdaFunctionUrlRequest {
    let mut r = base("POST");
    r.body = Some(body.to_owned());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_fixture_is_an_iam_authenticated_function_url_request() {
        let r: LambdaFunctionUrlRequest = serde_json::from_str(NAMED).unwrap();
        let iam = r.request_context.authorizer.unwrap().iam.unwrap();
        assert_eq!(
            iam.user_arn.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/Approver/alice")
        );
        let n = named("arn:aws:iam::111122223333:user/bob", "d-1", false);
        assert_eq!(
            n.request_context
                .authorizer
                .unwrap()
                .iam
                .unwrap()
                .user_arn
                .as_deref(),
            Some("arn:aws:iam::111122223333:user/bob")
        );
        assert!(n.body.unwrap().contains(r#""verdict":"deny""#));
    }

    #[test]
    fn the_fixture_is_a_function_url_request() {
        let r: LambdaFunctionUrlRequest = serde_json::from_str(GET).unwrap();
        assert_eq!(r.request_context.http.method.as_deref(), Some("GET"));
        assert_eq!(
            r.query_string_parameters.get("t").map(String::as_str),
            Some("TOKEN")
        );
        assert_eq!(
            follow("HEAD", "https://x?t=abc").query_string_parameters["t"],
            "abc"
        );
    }
}
