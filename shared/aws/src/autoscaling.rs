//! Auto Scaling: group membership and capacity; marking an instance Unhealthy, raising the
//! desired capacity, detaching an instance for forensics.

use aws_sdk_autoscaling::Client;

use super::port_error;
use vigil_core::domain::{GroupCapacity, Membership};
use vigil_core::metrics::WatchedInstance;
use vigil_core::names::{GroupName, InstanceId};
use vigil_handlers::ports::{
    DescribeGroup, DescribeInstance, DetachFromGroup, ListWatchedInstances, PortError,
    PortErrorKind, ScalingProcesses, SetDesiredCapacity, SetInstanceHealth,
};

#[derive(Debug, Clone)]
pub struct AutoScaling {
    client: Client,
}

impl AutoScaling {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AutoScaling {
            client: Client::new(config),
        }
    }
}

fn non_negative(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

impl DescribeInstance for AutoScaling {
    async fn membership(&self, instance: &InstanceId) -> Result<Option<Membership>, PortError> {
        const OP: &str = "autoscaling:DescribeAutoScalingInstances";
        let out = self
            .client
            .describe_auto_scaling_instances()
            .instance_ids(instance.as_str())
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let Some(details) = out
            .auto_scaling_instances()
            .iter()
            .find(|d| d.instance_id() == Some(instance.as_str()))
        else {
            return Ok(None);
        };
        let group = GroupName::parse(details.auto_scaling_group_name().unwrap_or_default())
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        // The group's tags name the application and environment.
        let tags = self
            .client
            .describe_tags()
            .filters(
                aws_sdk_autoscaling::types::Filter::builder()
                    .name("auto-scaling-group")
                    .values(group.as_str())
                    .build(),
            )
            .send()
            .await
            .map_err(|e| port_error("autoscaling:DescribeTags", e))?;
        Ok(Some(Membership {
            tags: tag_map(tags.tags()),
            application: tag_value(tags.tags(), &APPLICATION_TAGS),
            environment: tag_value(tags.tags(), &ENVIRONMENT_TAGS),
            group,
            health: details.health_status().unwrap_or_default().to_uppercase(),
            lifecycle: details.lifecycle_state().unwrap_or_default().to_owned(),
        }))
    }
}

impl DescribeGroup for AutoScaling {
    async fn capacity(&self, group: &GroupName) -> Result<GroupCapacity, PortError> {
        const OP: &str = "autoscaling:DescribeAutoScalingGroups";
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group.as_str())
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        let g = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group.as_str()))
            .ok_or_else(|| {
                PortError::new(
                    OP,
                    PortErrorKind::NotFound,
                    format!("group {group} not found"),
                )
            })?;
        let in_service = g
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state().map(|s| s.as_str()) == Some("InService")
                    && i.health_status()
                        .is_some_and(|h| h.eq_ignore_ascii_case("healthy"))
            })
            .count();
        Ok(GroupCapacity {
            min_size: non_negative(g.min_size()),
            max_size: non_negative(g.max_size()),
            desired: non_negative(g.desired_capacity()),
            in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
        })
    }
}

impl SetInstanceHealth for AutoScaling {
    async fn set_unhealthy(&self, instance: &InstanceId) -> Result<(), PortError> {
        self.client
            .set_instance_health()
            .instance_id(instance.as_str())
            .health_status("Unhealthy")
            // An instance still in its health-check grace period is left alone: replacing a
            // freshly launched instance for a boot-time spike would start a replacement loop.
            .should_respect_grace_period(true)
            .send()
            .await
            .map_err(|e| port_error("autoscaling:SetInstanceHealth", e))?;
        Ok(())
    }
}

impl SetDesiredCapacity for AutoScaling {
    async fn set_desired(&self, group: &GroupName, desired: u32) -> Result<(), PortError> {
        const OP: &str = "autoscaling:SetDesiredCapacity";
        let desired = i32::try_from(desired)
            .map_err(|_| PortError::new(OP, PortErrorKind::Rejected, "capacity out of range"))?;
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(group.as_str())
            .desired_capacity(desired)
            // Remediation is not ordinary scaling: the group's cooldown does not hold it back.
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl DetachFromGroup for AutoScaling {
    async fn detach(&self, group: &GroupName, instance: &InstanceId) -> Result<(), PortError> {
        self.client
            .detach_instances()
            .auto_scaling_group_name(group.as_str())
            .instance_ids(instance.as_str())
            // Keep the capacity: the group launches a replacement while people examine this one.
            .should_decrement_desired_capacity(false)
            .send()
            .await
            .map_err(|e| port_error("autoscaling:DetachInstances", e))?;
        Ok(())
    }
}

impl ScalingProcesses for AutoScaling {
    async fn set_processes(
        &self,
        group: &GroupName,
        processes: &[&str],
        suspend: bool,
    ) -> Result<(), PortError> {
        let names: Vec<String> = processes.iter().map(|p| (*p).to_owned()).collect();
        if suspend {
            self.client
                .suspend_processes()
                .auto_scaling_group_name(group.as_str())
                .set_scaling_processes(Some(names))
                .send()
                .await
                .map_err(|e| port_error("autoscaling:SuspendProcesses", e))?;
        } else {
            self.client
                .resume_processes()
                .auto_scaling_group_name(group.as_str())
                .set_scaling_processes(Some(names))
                .send()
                .await
                .map_err(|e| port_error("autoscaling:ResumeProcesses", e))?;
        }
        Ok(())
    }

    async fn suspended(&self, group: &GroupName) -> Result<Vec<String>, PortError> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(group.as_str())
            .send()
            .await
            .map_err(|e| port_error("autoscaling:DescribeAutoScalingGroups", e))?;
        Ok(out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(group.as_str()))
            .map(|g| {
                g.suspended_processes()
                    .iter()
                    .filter_map(|p| p.process_name().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A group's tags as (key, value) pairs.
fn pairs(
    tags: &[aws_sdk_autoscaling::types::TagDescription],
) -> impl Iterator<Item = (&str, &str)> {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
}

/// The first value of any of `keys` (case-insensitive) among a group's tags.
fn tag_value(tags: &[aws_sdk_autoscaling::types::TagDescription], keys: &[&str]) -> Option<String> {
    first_of(pairs(tags), keys)
}

/// A group's tags as Vigil keeps them.
fn tag_map(
    tags: &[aws_sdk_autoscaling::types::TagDescription],
) -> std::collections::BTreeMap<String, String> {
    kept(pairs(tags))
}

/// The first value of any of `keys` (case-insensitive) among a resource's tags, printable and
/// capped.
pub(crate) fn first_of<'a>(
    mut tags: impl Iterator<Item = (&'a str, &'a str)>,
    keys: &[&str],
) -> Option<String> {
    tags.find_map(|(k, v)| {
        keys.contains(&k.to_ascii_lowercase().as_str())
            .then(|| vigil_core::names::display_text(v, 128))
    })
}

/// A resource's tags as Vigil keeps them: printable, capped in length and number.
pub(crate) fn kept<'a>(
    tags: impl Iterator<Item = (&'a str, &'a str)>,
) -> std::collections::BTreeMap<String, String> {
    tags.map(|(k, v)| {
        (
            vigil_core::names::display_text(k, 128),
            vigil_core::names::display_text(v, 256),
        )
    })
    .take(vigil_core::domain::MAX_TAGS)
    .collect()
}

/// Tag keys read as the application and the environment of a group.
pub(crate) const APPLICATION_TAGS: [&str; 2] = ["application", "app"];
pub(crate) const ENVIRONMENT_TAGS: [&str; 3] = ["environment", "env", "stage"];

impl ListWatchedInstances for AutoScaling {
    async fn watched(&self, tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        const OP: &str = "autoscaling:DescribeAutoScalingGroups";
        let filter = aws_sdk_autoscaling::types::Filter::builder()
            .name(format!("tag:{tag_key}"))
            .values("true")
            .build();
        let mut pages = self
            .client
            .describe_auto_scaling_groups()
            .filters(filter)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| port_error(OP, e))?;
            for g in page.auto_scaling_groups() {
                // Groups whose names Vigil would refuse to act on are not watched either.
                let Some(group) = g
                    .auto_scaling_group_name()
                    .and_then(|n| GroupName::parse(n).ok())
                else {
                    continue;
                };
                let application = tag_value(g.tags(), &APPLICATION_TAGS);
                let environment = tag_value(g.tags(), &ENVIRONMENT_TAGS);
                let tags = tag_map(g.tags());
                for i in g.instances() {
                    let Some(instance) = i.instance_id().and_then(|id| InstanceId::parse(id).ok())
                    else {
                        continue;
                    };
                    out.push(WatchedInstance {
                        instance,
                        group: Some(group.clone()),
                        application: application.clone(),
                        environment: environment.clone(),
                        tags: tags.clone(),
                        account: None,
                    });
                }
            }
        }
        Ok(out)
    }
}
