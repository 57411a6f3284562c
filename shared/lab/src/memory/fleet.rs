//! Auto Scaling groups and their instances: membership, health, capacity, processes.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Group {
    min: u32,
    max: u32,
    desired: u32,
    suspended: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Instance {
    group: GroupName,
    health: String,
    lifecycle: String,
    tags: BTreeMap<String, String>,
}

impl Instance {
    /// The first of `keys` among the group's tags, as the Auto Scaling adapter reads the
    /// application and environment.
    fn tag(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.tags.get(*k).cloned())
    }
}

/// Auto Scaling groups and their instances.
#[derive(Debug, Default)]
pub struct MemoryFleet {
    groups: Mutex<BTreeMap<GroupName, Group>>,
    instances: Mutex<BTreeMap<InstanceId, Instance>>,
}

impl MemoryFleet {
    /// Adds a group whose instances are all InService and healthy.
    pub fn add_group(&self, name: &GroupName, min: u32, max: u32, instances: &[InstanceId]) {
        let desired = u32::try_from(instances.len()).unwrap_or(u32::MAX);
        lock(&self.groups).insert(
            name.clone(),
            Group {
                min,
                max,
                desired,
                suspended: Vec::new(),
            },
        );
        let mut all = lock(&self.instances);
        for i in instances {
            all.insert(
                i.clone(),
                Instance {
                    group: name.clone(),
                    health: "HEALTHY".into(),
                    lifecycle: "InService".into(),
                    tags: BTreeMap::new(),
                },
            );
        }
    }

    /// Tags an instance's group (in memory, on the instance itself).
    pub fn tag(&self, instance: &InstanceId, key: &str, value: &str) {
        if let Some(i) = lock(&self.instances).get_mut(instance) {
            i.tags.insert(key.to_owned(), value.to_owned());
        }
    }

    /// Adds an InService, healthy instance to an existing group (a launch), with tags. The
    /// desired capacity is the caller's to keep.
    pub fn launch(
        &self,
        group: &GroupName,
        instance: &InstanceId,
        tags: &BTreeMap<String, String>,
    ) {
        lock(&self.instances).insert(
            instance.clone(),
            Instance {
                group: group.clone(),
                health: "HEALTHY".into(),
                lifecycle: "InService".into(),
                tags: tags.clone(),
            },
        );
    }

    /// Takes an instance out of its group for good (a termination).
    pub fn terminate(&self, instance: &InstanceId) {
        lock(&self.instances).remove(instance);
    }

    /// A group's desired capacity.
    pub fn desired(&self, group: &GroupName) -> Option<u32> {
        lock(&self.groups).get(group).map(|g| g.desired)
    }

    /// The instance's health as Auto Scaling reports it.
    pub fn health(&self, instance: &InstanceId) -> Option<String> {
        lock(&self.instances)
            .get(instance)
            .map(|i| i.health.clone())
    }
}

impl DescribeInstance for MemoryFleet {
    async fn membership(&self, instance: &InstanceId) -> Result<Option<Membership>, PortError> {
        Ok(lock(&self.instances).get(instance).map(|i| Membership {
            group: i.group.clone(),
            health: i.health.clone(),
            lifecycle: i.lifecycle.clone(),
            application: i.tag(&["application", "app"]),
            environment: i.tag(&["environment", "env", "stage"]),
            tags: i.tags.clone(),
        }))
    }
}

impl DescribeGroup for MemoryFleet {
    async fn capacity(&self, group: &GroupName) -> Result<GroupCapacity, PortError> {
        let g = lock(&self.groups).get(group).cloned().ok_or_else(|| {
            PortError::new(
                "DescribeGroup",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        let in_service = lock(&self.instances)
            .values()
            .filter(|i| &i.group == group && i.lifecycle == "InService" && i.health == "HEALTHY")
            .count();
        Ok(GroupCapacity {
            min_size: g.min,
            max_size: g.max,
            desired: g.desired,
            in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
        })
    }
}

impl SetInstanceHealth for MemoryFleet {
    async fn set_unhealthy(&self, instance: &InstanceId) -> Result<(), PortError> {
        match lock(&self.instances).get_mut(instance) {
            Some(i) => {
                i.health = "UNHEALTHY".into();
                Ok(())
            }
            None => Err(PortError::new(
                "SetInstanceHealth",
                PortErrorKind::NotFound,
                format!("no instance {instance}"),
            )),
        }
    }
}

impl SetDesiredCapacity for MemoryFleet {
    async fn set_desired(&self, group: &GroupName, desired: u32) -> Result<(), PortError> {
        let mut groups = lock(&self.groups);
        let g = groups.get_mut(group).ok_or_else(|| {
            PortError::new(
                "SetDesiredCapacity",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        if desired < g.min || desired > g.max {
            return Err(PortError::new(
                "SetDesiredCapacity",
                PortErrorKind::Rejected,
                format!("{desired} is outside [{}, {}]", g.min, g.max),
            ));
        }
        g.desired = desired;
        Ok(())
    }
}

impl DetachFromGroup for MemoryFleet {
    async fn detach(&self, group: &GroupName, instance: &InstanceId) -> Result<(), PortError> {
        let mut all = lock(&self.instances);
        match all.get(instance) {
            Some(i) if &i.group == group => {
                all.remove(instance);
                Ok(())
            }
            _ => Err(PortError::new(
                "DetachInstances",
                PortErrorKind::NotFound,
                format!("{instance} is not in {group}"),
            )),
        }
    }
}

impl vigil_handlers::ports::ScalingProcesses for MemoryFleet {
    async fn set_processes(
        &self,
        group: &GroupName,
        processes: &[&str],
        suspend: bool,
    ) -> Result<(), PortError> {
        let mut groups = lock(&self.groups);
        let g = groups.get_mut(group).ok_or_else(|| {
            PortError::new(
                "SuspendProcesses",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        for p in processes {
            g.suspended.retain(|s| s != p);
            if suspend {
                g.suspended.push((*p).to_owned());
            }
        }
        Ok(())
    }

    async fn suspended(&self, group: &GroupName) -> Result<Vec<String>, PortError> {
        Ok(lock(&self.groups)
            .get(group)
            .map(|g| g.suspended.clone())
            .unwrap_or_default())
    }
}

impl ListWatchedInstances for MemoryFleet {
    /// Every group of the in-memory fleet is watched.
    async fn watched(&self, _tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        Ok(lock(&self.instances)
            .iter()
            .map(|(id, i)| WatchedInstance {
                instance: id.clone(),
                group: Some(i.group.clone()),
                application: i.tag(&["application", "app"]),
                environment: i.tag(&["environment", "env", "stage"]),
                tags: i.tags.clone(),
                account: None,
            })
            .collect())
    }
}
