//! The state table and the SSM parameters: claims, counters, histories, the kill switch, the policy override, freezes, approvals.

use super::*;

/// Expiring claims, deployment freezes, the kill switch and answered jobs.
#[derive(Debug, Default)]
pub struct MemoryState {
    claims: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    freezes: Mutex<HashMap<String, String>>,
    kill_switch: Mutex<bool>,
    jobs: Mutex<Vec<(String, JobResult)>>,
    principals: Mutex<HashMap<String, PrincipalProfile>>,
    attempts: Mutex<HashMap<String, Vec<Attempt>>>,
    quotas: Mutex<HashMap<String, u32>>,
    policy: Mutex<Option<(String, String)>>,
    incidents: Mutex<BTreeMap<String, (vigil_core::domain::Tier, vigil_core::domain::Incident)>>,
    deploys: Mutex<HashMap<String, vigil_core::gate::Deploy>>,
    sightings: Mutex<HashMap<String, BTreeMap<String, DateTime<Utc>>>>,
    approvals: Mutex<Vec<(vigil_handlers::ports::ApprovalAction, bool, String)>>,
    pending: Mutex<HashMap<String, (vigil_core::domain::Decision, DateTime<Utc>)>>,
    undoable: Mutex<HashMap<String, (vigil_core::domain::Decision, DateTime<Utc>)>>,
    conversations: Mutex<HashMap<String, (vigil_core::conversation::Conversation, DateTime<Utc>)>>,
    sent: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    /// The daily digests' lines, by day and rule.
    digests: Mutex<BTreeMap<chrono::NaiveDate, BTreeMap<String, vigil_core::digest::Line>>>,
    /// CodePipeline's manual approval actions by `pipeline/stage/action`: the definition and
    /// the token of the approval waiting, if one is.
    approval_actions: Mutex<HashMap<String, (ApprovalDefinition, Option<String>)>>,
}

fn action_key(pipeline: &str, stage: &str, action: &str) -> String {
    format!("{pipeline}/{stage}/{action}")
}

impl MemoryState {
    pub fn set_kill_switch(&self, engaged: bool) {
        *lock(&self.kill_switch) = engaged;
    }

    pub fn freeze(&self, target: &str, reason: &str) {
        lock(&self.freezes).insert(target.to_owned(), reason.to_owned());
    }

    /// Sets the policy override (text, version).
    pub fn set_policy(&self, text: &str, version: &str) {
        *lock(&self.policy) = Some((text.to_owned(), version.to_owned()));
    }

    /// The recorded incidents' ids.
    pub fn incidents(&self) -> Vec<String> {
        lock(&self.incidents).keys().cloned().collect()
    }

    pub fn jobs(&self) -> Vec<(String, JobResult)> {
        lock(&self.jobs).clone()
    }

    /// Defines a manual approval action in a pipeline, as CodePipeline would hold it.
    pub fn define_approval(
        &self,
        pipeline: &str,
        stage: &str,
        action: &str,
        definition: ApprovalDefinition,
    ) {
        lock(&self.approval_actions)
            .entry(action_key(pipeline, stage, action))
            .or_insert((ApprovalDefinition::default(), None))
            .0 = definition;
    }

    /// Makes a defined approval action wait for an approval with `token` (a pipeline run
    /// reached it); an answer ends the wait.
    pub fn await_approval(&self, pipeline: &str, stage: &str, action: &str, token: &str) {
        if let Some(a) = lock(&self.approval_actions).get_mut(&action_key(pipeline, stage, action))
        {
            a.1 = Some(token.to_owned());
        }
    }

    /// The manual approval actions answered: (action, approved, summary).
    pub fn approvals(&self) -> Vec<(vigil_handlers::ports::ApprovalAction, bool, String)> {
        lock(&self.approvals).clone()
    }
}

impl ClaimOnce for MemoryState {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let mut claims = lock(&self.claims);
        match claims.get(key) {
            Some((held_by, expires)) if held_by != owner && *expires >= now => Ok(Claim::Held),
            _ => {
                claims.insert(key.to_owned(), (owner.to_owned(), until));
                Ok(Claim::Won)
            }
        }
    }
}

impl ReadKillSwitch for MemoryState {
    async fn engaged(&self) -> Result<bool, PortError> {
        Ok(*lock(&self.kill_switch))
    }
}

impl ReadDeploymentFreeze for MemoryState {
    async fn freeze(&self, target: &str, _now: DateTime<Utc>) -> Result<Option<String>, PortError> {
        Ok(lock(&self.freezes).get(target).cloned())
    }
}

impl vigil_handlers::ports::SetDeploymentFreeze for MemoryState {
    async fn set_freeze(
        &self,
        target: &str,
        reason: &str,
        _until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.freeze(target, reason);
        Ok(())
    }
}

impl ReportJobResult for MemoryState {
    async fn report(&self, job_id: &str, result: &JobResult) -> Result<(), PortError> {
        lock(&self.jobs).push((job_id.to_owned(), result.clone()));
        Ok(())
    }
}

impl PrincipalHistory for MemoryState {
    async fn load(&self, principal: &str) -> Result<Option<PrincipalProfile>, PortError> {
        Ok(lock(&self.principals).get(principal).cloned())
    }

    async fn save(
        &self,
        principal: &str,
        profile: &PrincipalProfile,
        _now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.principals).insert(principal.to_owned(), profile.clone());
        Ok(())
    }
}

impl ActionHistory for MemoryState {
    async fn recent(
        &self,
        resource: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Attempt>, PortError> {
        Ok(lock(&self.attempts)
            .get(resource)
            .map(|a| a.iter().filter(|a| a.at >= since).cloned().collect())
            .unwrap_or_default())
    }

    async fn record(
        &self,
        resource: &str,
        attempt: &Attempt,
        _keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.attempts)
            .entry(resource.to_owned())
            .or_default()
            .push(attempt.clone());
        Ok(())
    }
}

impl vigil_handlers::ports::DigestBook for MemoryState {
    async fn note(
        &self,
        day: chrono::NaiveDate,
        entry: &vigil_core::digest::Entry,
        _keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        let mut digests = lock(&self.digests);
        let line = digests
            .entry(day)
            .or_default()
            .entry(entry.rule.clone())
            .or_insert_with(|| vigil_core::digest::Line {
                rule: entry.rule.clone(),
                level: Some(entry.level),
                count: 0,
                example: String::new(),
            });
        line.count += 1;
        line.example.clone_from(&entry.example);
        Ok(())
    }

    async fn lines(
        &self,
        day: chrono::NaiveDate,
    ) -> Result<Vec<vigil_core::digest::Line>, PortError> {
        Ok(lock(&self.digests)
            .get(&day)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default())
    }
}

impl TakeQuota for MemoryState {
    async fn take(
        &self,
        key: &str,
        limit: u32,
        _until: DateTime<Utc>,
    ) -> Result<Option<u32>, PortError> {
        let mut quotas = lock(&self.quotas);
        let n = quotas.entry(key.to_owned()).or_default();
        if *n >= limit {
            return Ok(None);
        }
        *n += 1;
        Ok(Some(*n))
    }
}

impl ReadPolicy for MemoryState {
    async fn read(&self) -> Result<Option<(String, String)>, PortError> {
        Ok(lock(&self.policy).clone())
    }
}

impl RecordIncident for MemoryState {
    async fn record_incident(
        &self,
        incident: &vigil_core::domain::Incident,
        tier: vigil_core::domain::Tier,
        _keep_until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut all = lock(&self.incidents);
        if all.contains_key(&incident.id) {
            return Ok(false);
        }
        all.insert(incident.id.clone(), (tier, incident.clone()));
        Ok(true)
    }
}

impl vigil_handlers::ports::ReadPosture for MemoryState {
    async fn incidents(
        &self,
        target: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<vigil_core::gate::PostureMark>, PortError> {
        Ok(lock(&self.incidents)
            .values()
            .filter_map(|(tier, i)| vigil_core::gate::PostureMark::of(i, *tier))
            .filter(|(t, m)| t == target && m.opened_at >= since)
            .map(|(_, m)| m)
            .collect())
    }
}

impl vigil_handlers::ports::Sightings for MemoryState {
    async fn sighted(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<u32, PortError> {
        let mut all = lock(&self.sightings);
        let seen = all.entry(key.to_owned()).or_default();
        seen.retain(|_, t| *t >= now - chrono::Duration::days(1));
        let before = seen
            .iter()
            .filter(|(o, t)| o.as_str() != owner && **t < now && **t >= now - window)
            .count();
        seen.insert(owner.to_owned(), now);
        Ok(u32::try_from(before).unwrap_or(u32::MAX))
    }
}

impl vigil_handlers::ports::RecordDeploy for MemoryState {
    async fn record_deploy(
        &self,
        deploy: &vigil_core::gate::Deploy,
        _keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.deploys).insert(deploy.target.clone(), deploy.clone());
        Ok(())
    }
}

impl vigil_handlers::ports::LastDeploy for MemoryState {
    async fn last_deploy(
        &self,
        target: &str,
    ) -> Result<Option<vigil_core::gate::Deploy>, PortError> {
        Ok(lock(&self.deploys).get(target).cloned())
    }
}

impl vigil_handlers::ports::ReportApproval for MemoryState {
    async fn answer(
        &self,
        action: &vigil_handlers::ports::ApprovalAction,
        approved: bool,
        summary: &str,
    ) -> Result<(), PortError> {
        let key = action_key(
            action.pipeline.as_str(),
            action.stage.as_str(),
            action.action.as_str(),
        );
        let mut actions = lock(&self.approval_actions);
        match actions.get_mut(&key) {
            Some((_, waiting)) if waiting.as_deref() == Some(action.token.as_str()) => {
                *waiting = None;
            }
            // CodePipeline refuses an answer to an approval that is not waiting.
            _ => {
                return Err(PortError::new(
                    "codepipeline:PutApprovalResult",
                    PortErrorKind::Rejected,
                    format!("InvalidApprovalTokenException: {key}"),
                ));
            }
        }
        lock(&self.approvals).push((action.clone(), approved, summary.to_owned()));
        Ok(())
    }
}

impl vigil_handlers::ports::ReadApproval for MemoryState {
    async fn approval_definition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> Result<Option<ApprovalDefinition>, PortError> {
        Ok(lock(&self.approval_actions)
            .get(&action_key(
                pipeline.as_str(),
                stage.as_str(),
                action.as_str(),
            ))
            .map(|(d, _)| d.clone()))
    }

    async fn waiting_token(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        Ok(lock(&self.approval_actions)
            .get(&action_key(
                pipeline.as_str(),
                stage.as_str(),
                action.as_str(),
            ))
            .and_then(|(_, t)| t.clone()))
    }
}

impl vigil_handlers::ports::MarkAlertSent for MemoryState {
    async fn mark_sent(
        &self,
        key: &str,
        message_id: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.sent).insert(key.to_owned(), (message_id.to_owned(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::FindAlertSent for MemoryState {
    async fn find_sent(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, PortError> {
        Ok(lock(&self.sent)
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(id, _)| id.clone()))
    }
}

impl vigil_handlers::ports::SavePendingApproval for MemoryState {
    async fn save_pending(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.pending).insert(decision.id.clone(), (decision.clone(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::Conversations for MemoryState {
    async fn recall(
        &self,
        about: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::conversation::Conversation>, PortError> {
        Ok(lock(&self.conversations)
            .get(about)
            .filter(|(_, until)| now < *until)
            .map(|(c, _)| c.clone()))
    }

    async fn keep(
        &self,
        about: &str,
        conversation: &vigil_core::conversation::Conversation,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.conversations).insert(about.to_owned(), (conversation.clone(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::KeepUndoable for MemoryState {
    async fn keep_undoable(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.undoable).insert(decision.id.clone(), (decision.clone(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::LoadUndoable for MemoryState {
    async fn load_undoable(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        Ok(lock(&self.undoable)
            .get(decision_id)
            .filter(|(_, until)| now < *until)
            .map(|(d, _)| d.clone()))
    }
}

impl vigil_handlers::ports::LoadPendingApproval for MemoryState {
    async fn load_pending(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        Ok(lock(&self.pending)
            .get(decision_id)
            .filter(|(_, until)| now < *until)
            .map(|(d, _)| d.clone()))
    }
}
