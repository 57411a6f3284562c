//! The Resource Groups Tagging API: EC2 instances tagged for watching on their own, outside
//! any Auto Scaling group (GetResources by tag, paginated). An instance in a group is watched
//! by its group's tag and listed with its group ([`crate::autoscaling`]), never here.

use aws_sdk_resourcegroupstagging::Client;
use aws_sdk_resourcegroupstagging::types::{Tag, TagFilter};

use super::port_error;
use crate::autoscaling::{APPLICATION_TAGS, ENVIRONMENT_TAGS, first_of, kept};
use vigil_core::metrics::WatchedInstance;
use vigil_core::names::InstanceId;
use vigil_handlers::ports::PortError;

/// The tag EC2 puts on an instance an Auto Scaling group launched.
pub const GROUP_TAG: &str = "aws:autoscaling:groupName";

/// Pages followed at most (100 resources each): a runaway token loop must end.
const MAX_PAGES: usize = 1_000;

#[derive(Debug, Clone)]
pub struct TaggedInstances {
    client: Client,
}

impl TaggedInstances {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        TaggedInstances {
            client: Client::new(config),
        }
    }

    /// The instances tagged `<tag_key>=true` that are in no Auto Scaling group, each with its
    /// own tags (printable, capped) and no group.
    pub async fn watched(&self, tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        const OP: &str = "tag:GetResources";
        let filter = TagFilter::builder().key(tag_key).values("true").build();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .get_resources()
                .tag_filters(filter.clone())
                .resource_type_filters("ec2:instance")
                .set_pagination_token(token.take())
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
            for r in page.resource_tag_mapping_list() {
                let tags = r.tags();
                if tags.iter().any(|t| t.key() == GROUP_TAG) {
                    continue;
                }
                // arn:<partition>:ec2:<region>:<account>:instance/<id>; anything else is not
                // an instance Vigil could act on.
                let Some(instance) = r
                    .resource_arn()
                    .and_then(|arn| arn.rsplit_once(":instance/"))
                    .and_then(|(_, id)| InstanceId::parse(id).ok())
                else {
                    continue;
                };
                out.push(WatchedInstance {
                    instance,
                    group: None,
                    application: first_of(pairs(tags), &APPLICATION_TAGS),
                    environment: first_of(pairs(tags), &ENVIRONMENT_TAGS),
                    tags: kept(pairs(tags)),
                    account: None,
                });
            }
            match page.pagination_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// An instance's tags as (key, value) pairs.
fn pairs(tags: &[Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().map(|t| (t.key(), t.value()))
}
