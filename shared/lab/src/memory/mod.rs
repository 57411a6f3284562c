//! In-memory implementations of the ports: the local world behind `vigil replay`, the handler
//! unit tests and the simulator. They change their state the way AWS would, so a test can
//! assert the world afterwards (an instance marked Unhealthy, a message published).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use vigil_core::alert::Alert;
use vigil_core::domain::{Attempt, GroupCapacity, Membership};
use vigil_core::features::identity::PrincipalProfile;
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::names::{GroupName, InstanceId, PipelineName};
use vigil_handlers::ports::{
    ActionHistory, ApprovalDefinition, AutomationStatus, Claim, ClaimOnce, CommandStatus,
    DescribeGroup, DescribeInstance, DetachFromGroup, DisableTransition, FetchMetrics, JobResult,
    ListDiskMetrics, ListWatchedInstances, PortError, PortErrorKind, PrincipalHistory,
    PublishAlert, ReadDeploymentFreeze, ReadKillSwitch, ReadPolicy, RecordIncident,
    ReportJobResult, RunCommand, SetDesiredCapacity, SetInstanceHealth, StartAutomation, TakeQuota,
    TransitionEnabled,
};

mod fleet;
mod inputs;
mod ops;
mod records;
mod state;

pub use fleet::MemoryFleet;
pub use inputs::{
    MemoryArtifacts, MemoryDetectors, MemoryFindings, MemoryKey, MemoryMetrics, MetricCalls,
};
pub use ops::{MemoryOps, Parameters, SentCommand};
pub use records::{MemoryAudit, MemoryOutbox};
pub use state::MemoryState;

/// A mutex that shrugs off poisoning: a panicking test thread must not hide the world.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
