//! Where Vigil's words go: the audit trail and the alert topic.

use super::*;

/// The audit trail as a list of chained records.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<vigil_core::audit::AuditRecord>>,
    broken: Mutex<bool>,
}

impl MemoryAudit {
    pub fn records(&self) -> Vec<vigil_core::audit::AuditRecord> {
        lock(&self.records).clone()
    }

    /// Makes every later append fail (the store is unreachable).
    pub fn break_store(&self) {
        *lock(&self.broken) = true;
    }
}

impl vigil_handlers::ports::AppendAudit for MemoryAudit {
    async fn append(
        &self,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<vigil_core::audit::AuditRecord, PortError> {
        if *lock(&self.broken) {
            return Err(PortError::new(
                "audit:append",
                PortErrorKind::Transient,
                "the audit store is unreachable",
            ));
        }
        let mut all = lock(&self.records);
        let r = vigil_core::audit::AuditRecord::next(all.last(), at, kind, subject, payload);
        all.push(r.clone());
        Ok(r)
    }
}

/// Published alerts, kept in order, and the Security Hub findings imported, by id (an
/// import with a known id replaces the finding, as Security Hub updates it).
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    sent: Mutex<Vec<Alert>>,
    findings: Mutex<BTreeMap<String, vigil_core::securityhub::Finding>>,
    ops_items: Mutex<BTreeMap<String, vigil_core::opscenter::OpsItem>>,
    /// Publishes that fail before one succeeds again (an SNS outage).
    failing: Mutex<u32>,
}

impl MemoryOutbox {
    pub fn sent(&self) -> Vec<Alert> {
        lock(&self.sent).clone()
    }

    /// The OpsItems in OpsCenter, by deduplication string (the incident).
    pub fn ops_items(&self) -> BTreeMap<String, vigil_core::opscenter::OpsItem> {
        lock(&self.ops_items).clone()
    }

    /// The findings in Security Hub, by id.
    pub fn findings(&self) -> BTreeMap<String, vigil_core::securityhub::Finding> {
        lock(&self.findings).clone()
    }

    /// The next `n` publishes fail.
    pub fn fail_next(&self, n: u32) {
        *lock(&self.failing) = n;
    }
}

impl vigil_handlers::ports::ImportFinding for MemoryOutbox {
    async fn import(&self, finding: &vigil_core::securityhub::Finding) -> Result<(), PortError> {
        lock(&self.findings).insert(finding.id.clone(), finding.clone());
        Ok(())
    }
}

impl vigil_handlers::ports::RecordOpsItem for MemoryOutbox {
    /// As OpsCenter deduplicates: one OpsItem per open deduplication string, updated in place;
    /// a resolved one is replaced by a new one.
    async fn record(&self, item: &vigil_core::opscenter::OpsItem) -> Result<String, PortError> {
        let mut items = lock(&self.ops_items);
        items.insert(item.dedup.clone(), item.clone());
        Ok(format!("oi-memory-{}", items.len()))
    }
}

impl PublishAlert for MemoryOutbox {
    async fn publish(&self, alert: &Alert) -> Result<String, PortError> {
        {
            let mut failing = lock(&self.failing);
            if *failing > 0 {
                *failing -= 1;
                return Err(PortError::new(
                    "sns:Publish",
                    vigil_handlers::ports::PortErrorKind::Transient,
                    "the topic is unavailable",
                ));
            }
        }
        let mut sent = lock(&self.sent);
        sent.push(alert.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}
