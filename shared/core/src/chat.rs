//! What chat channels are told: Amazon Q Developer in chat applications' custom notification
//! (version 1.0: `version`, `source: custom`, `content` with a title, a description, next
//! steps and keywords, `metadata` with a thread id, a summary, an event type and related
//! resources), rendered from an [`Alert`]. Pure.
//!
//! The SNS topic carries it beside the email text: an HTTPS subscriber (the chat service)
//! receives this JSON, email receives the text. What an event's sender controls is shown as
//! text only: the description is a code block, and nothing in it can mention a channel, open
//! a link or end the block. Approval links are never posted in a channel (whoever holds one
//! may use it): a chat message says where to approve instead.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::alert::Alert;

/// The schema version and source the service requires.
pub const VERSION: &str = "1.0";
pub const SOURCE: &str = "custom";
/// Bounds on what is posted (the channel shows a summary and truncates long messages).
pub const MAX_TITLE: usize = 250;
pub const MAX_DESCRIPTION: usize = 3_500;
pub const MAX_NEXT_STEPS: usize = 5;
pub const MAX_KEYWORDS: usize = 10;
pub const MAX_LINE: usize = 250;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatNotification {
    pub version: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub content: Content,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    pub text_type: String,
    pub title: String,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Notifications with the same thread id are one thread in the channel: one incident,
    /// one conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    pub summary: String,
    pub event_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related_resources: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_context: BTreeMap<String, String>,
}

/// Text safe to show in a chat line: no control characters, nothing that mentions a channel
/// or a person (`<!channel>`, `<at>`), links (`[text](url)`) or code spans; capped.
pub fn line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '<' => '‹',
            '>' => '›',
            '`' => '\'',
            '@' => '＠',
            c => c,
        })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    // A markdown link needs `](`: break it.
    out.replace("](", "] (")
}

/// Text shown as a code block: kept as written (lines and all), without what could end the
/// block, capped at [`MAX_DESCRIPTION`].
pub fn block(text: &str) -> String {
    let mut inner: String = text
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '\n' => '\n',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(MAX_DESCRIPTION - 9)
        .collect();
    if text.chars().count() > MAX_DESCRIPTION - 9 {
        inner.push('…');
    }
    format!("```\n{}\n```", inner.trim_end())
}

/// The notification for an alert that has no chat rendering of its own: its subject, its
/// text as a block, its attributes as keywords.
pub fn of_alert(alert: &Alert) -> ChatNotification {
    notification(alert, block(&alert.body), Vec::new(), None)
}

/// A notification from an alert with the given description, next steps and thread.
pub fn notification(
    alert: &Alert,
    description: String,
    next_steps: Vec<String>,
    thread: Option<&str>,
) -> ChatNotification {
    let attribute = |k: &str| alert.attributes.get(k).map(|v| line(v, 64));
    let keywords: Vec<String> = ["severity", "tier", "threat", "kind", "application"]
        .iter()
        .filter_map(|k| attribute(k))
        .take(MAX_KEYWORDS)
        .collect();
    let event_type = attribute("kind")
        .or_else(|| attribute("tier"))
        .unwrap_or_else(|| "notice".to_owned());
    ChatNotification {
        version: VERSION.to_owned(),
        source: SOURCE.to_owned(),
        id: None,
        content: Content {
            text_type: "client-markdown".to_owned(),
            title: line(&alert.subject, MAX_TITLE),
            description,
            next_steps: next_steps
                .iter()
                .map(|s| line(s, MAX_LINE))
                .take(MAX_NEXT_STEPS)
                .collect(),
            keywords,
        },
        metadata: Metadata {
            thread_id: thread.map(|t| line(t, 128)),
            summary: line(&alert.subject, MAX_TITLE),
            event_type,
            related_resources: attribute("resource").into_iter().collect(),
            additional_context: BTreeMap::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(body: &str) -> Alert {
        Alert {
            subject: "[Vigil HIGH] threat on <!channel>: ATTENTION".into(),
            body: body.into(),
            attributes: [
                ("severity".to_owned(), "HIGH".to_owned()),
                ("tier".to_owned(), "escalate".to_owned()),
                (
                    "resource".to_owned(),
                    "arn:aws:iam::1:user/[x](https://evil)".to_owned(),
                ),
            ]
            .into_iter()
            .collect(),
            chat: None,
        }
    }

    #[test]
    fn the_notification_has_the_documented_shape() {
        let n = serde_json::to_value(of_alert(&alert("What happened\n  something"))).unwrap();
        assert_eq!(n["version"], "1.0");
        assert_eq!(n["source"], "custom");
        assert_eq!(n["content"]["textType"], "client-markdown");
        assert!(
            n["content"]["title"]
                .as_str()
                .unwrap()
                .starts_with("[Vigil HIGH]")
        );
        assert!(
            n["content"]["description"]
                .as_str()
                .unwrap()
                .starts_with("```\n")
        );
        assert_eq!(n["content"]["keywords"][0], "HIGH");
        assert_eq!(n["metadata"]["eventType"], "escalate");
        for k in n.as_object().unwrap().keys() {
            assert!(["version", "source", "id", "content", "metadata"].contains(&k.as_str()));
        }
    }

    #[test]
    fn what_a_sender_controls_cannot_mention_link_or_break_out() {
        let n = of_alert(&alert("```\n@here <!channel> [approve](https://evil)\n```"));
        assert!(!n.content.title.contains("<!channel>"));
        assert!(!n.metadata.related_resources[0].contains("]("));
        let d = &n.content.description;
        assert_eq!(d.matches("```").count(), 2, "{d}");
        assert!(d.starts_with("```\n") && d.ends_with("\n```"));
        let long = of_alert(&alert(&"x".repeat(10_000)));
        assert!(long.content.description.chars().count() <= MAX_DESCRIPTION);
    }
}
