//! Member accounts: the role each member stack deploys (`infra/member.yaml`), assumed by the
//! central stack's functions to look up and act on that account's Auto Scaling groups. The
//! role is named alike in every member account; only the accounts the stack names
//! (`MemberAccounts`) are assumed into, and the role's trust policy admits only the central
//! stack's own roles of the same organisation.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

use crate::autoscaling::AutoScaling;
use crate::lines::TelemetrySource;
use crate::tagging::TaggedInstances;
use vigil_core::domain::{GroupCapacity, Membership};
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::names::{GroupName, InstanceId};
use vigil_handlers::config::{self, ConfigError};
use vigil_handlers::ports::{
    DescribeGroup, DescribeInstance, FetchMetrics, ListDiskMetrics, ListWatchedInstances,
    PortError, PortErrorKind,
};

/// The call the role's credentials come from (named for the permission check).
pub const ASSUME_ROLE: &str = "sts:AssumeRole";

/// The member accounts, and the SDK configuration that acts in each through its role.
#[derive(Debug)]
pub struct Members {
    base: SdkConfig,
    partition: String,
    role_name: String,
    accounts: Vec<String>,
    configs: tokio::sync::Mutex<HashMap<String, SdkConfig>>,
}

impl Members {
    /// From the function's environment: no member accounts unless the stack names them, and a
    /// stack that names them names the role too.
    pub fn from_env(
        base: &SdkConfig,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Members, ConfigError> {
        let accounts = config::member_accounts(lookup)?;
        let role_name = if accounts.is_empty() {
            String::new()
        } else {
            config::required(lookup, config::MEMBER_ROLE_NAME)?
        };
        Ok(Members {
            base: base.clone(),
            partition: config::optional(lookup, config::PARTITION).unwrap_or_else(|| "aws".into()),
            role_name,
            accounts,
            configs: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// The role's ARN in a member account.
    pub fn role_arn(&self, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:role/{}",
            self.partition, self.role_name
        )
    }

    /// The configuration acting in `account` through its member role (credentials fetched
    /// when first used, and renewed before they expire), or `None` for an account the stack
    /// does not name.
    pub async fn config(&self, account: &str) -> Option<SdkConfig> {
        if !self.accounts.iter().any(|a| a == account) {
            return None;
        }
        let mut configs = self.configs.lock().await;
        if let Some(c) = configs.get(account) {
            return Some(c.clone());
        }
        tracing::info!(
            account,
            operation = ASSUME_ROLE,
            "acting through the member role"
        );
        // The provider reads the clock for its credentials' expiry: a configuration built by
        // hand (not loaded from the environment) may have none.
        let base = match self.base.time_source() {
            Some(_) => self.base.clone(),
            None => self
                .base
                .to_builder()
                .time_source(aws_smithy_async::time::SystemTimeSource::new())
                .build(),
        };
        let provider = aws_config::sts::AssumeRoleProvider::builder(self.role_arn(account))
            .session_name("vigil")
            .configure(&base)
            .build()
            .await;
        let member = base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        configs.insert(account.to_owned(), member.clone());
        Some(member)
    }
}

/// Auto Scaling of the stack's account, and of each member account through its role: where an
/// instance of either belongs, and a group's capacity (the blast radius).
#[derive(Debug)]
pub struct Fleet {
    pub central: AutoScaling,
    pub members: Members,
}

impl DescribeInstance for Fleet {
    async fn membership(&self, instance: &InstanceId) -> Result<Option<Membership>, PortError> {
        self.central.membership(instance).await
    }

    async fn membership_in(
        &self,
        account: &str,
        instance: &InstanceId,
    ) -> Result<Option<Membership>, PortError> {
        match self.members.config(account).await {
            Some(member) => AutoScaling::new(&member).membership(instance).await,
            None => Ok(None),
        }
    }
}

impl DescribeGroup for Fleet {
    async fn capacity(&self, group: &GroupName) -> Result<GroupCapacity, PortError> {
        self.central.capacity(group).await
    }

    async fn capacity_in(
        &self,
        account: &str,
        group: &GroupName,
    ) -> Result<GroupCapacity, PortError> {
        match self.members.config(account).await {
            Some(member) => AutoScaling::new(&member).capacity(group).await,
            None => Err(PortError::new(
                "autoscaling:DescribeAutoScalingGroups",
                PortErrorKind::NotFound,
                format!("group {group} of account {account}, which the stack does not name"),
            )),
        }
    }
}

/// What a port answers for an account the stack does not name.
fn not_named(operation: &'static str, account: &str) -> PortError {
    PortError::new(
        operation,
        PortErrorKind::NotFound,
        format!("account {account}, which the stack does not name as a member"),
    )
}

/// The watched instances of the stack's account, and of each member account through its role:
/// those of the groups tagged for watching, and those tagged on their own outside any group.
#[derive(Debug)]
pub struct Watched<'a> {
    pub fleet: &'a Fleet,
    pub tagged: TaggedInstances,
}

impl ListWatchedInstances for Watched<'_> {
    async fn watched(&self, tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        let mut found = self.fleet.central.watched(tag_key).await?;
        found.extend(self.tagged.watched(tag_key).await?);
        Ok(found)
    }

    async fn watched_in(
        &self,
        account: &str,
        tag_key: &str,
    ) -> Result<Vec<WatchedInstance>, PortError> {
        const OP: &str = "autoscaling:DescribeAutoScalingGroups";
        let member = self
            .fleet
            .members
            .config(account)
            .await
            .ok_or_else(|| not_named(OP, account))?;
        let mut found = AutoScaling::new(&member).watched(tag_key).await?;
        found.extend(TaggedInstances::new(&member).watched(tag_key).await?);
        for w in &mut found {
            w.account = Some(account.to_owned());
        }
        Ok(found)
    }
}

/// The pull's telemetry (CloudWatch's metrics or the instances' lines, as the stack chose) of
/// the stack's account, and of each member account through its role; and the disk metrics
/// each instance has.
#[derive(Debug)]
pub struct FleetMetrics<'a> {
    /// This account's source; a member's is the same kind, through its role.
    pub central: TelemetrySource,
    pub members: &'a Members,
}

impl FleetMetrics<'_> {
    async fn member(
        &self,
        operation: &'static str,
        account: &str,
    ) -> Result<TelemetrySource, PortError> {
        match self.members.config(account).await {
            Some(member) => Ok(self.central.in_account(&member)),
            None => Err(not_named(operation, account)),
        }
    }
}

impl FetchMetrics for FleetMetrics<'_> {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        period: u32,
    ) -> Result<std::collections::BTreeMap<String, Series>, PortError> {
        self.central.fetch(queries, start, end, period).await
    }

    async fn fetch_in(
        &self,
        account: &str,
        queries: &[MetricQuery],
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        period: u32,
    ) -> Result<std::collections::BTreeMap<String, Series>, PortError> {
        self.member(self.central.fetch_operation(), account)
            .await?
            .fetch(queries, start, end, period)
            .await
    }
}

impl ListDiskMetrics for FleetMetrics<'_> {
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        self.central.disks(instances).await
    }

    async fn disks_in(
        &self,
        account: &str,
        instances: &[WatchedInstance],
    ) -> Result<Vec<DiskMetric>, PortError> {
        self.member("cloudwatch:ListMetrics", account)
            .await?
            .disks(instances)
            .await
    }
}
