//! Matching an incident against the policy's rules: the first rule that covers it (by failure
//! mode, threat, detection rule or level) proposes, and the ladder's rung is picked from the
//! earlier attempts on the resource.

use chrono::{DateTime, Utc};

use super::{Policy, Proposal, Rule, actions, detections, outsiders};
use crate::domain::{
    Attempt, Code, FailureMode, Incident, Mode, OutcomeStatus, Reason, RuleHit, Tier,
};

/// How a rule's `accounts` names the stack's own account.
pub const OWN_ACCOUNT: &str = "own";

impl Policy {
    /// Matches the incident against the rules (first match wins) and picks the ladder's rung
    /// from the earlier attempts on the resource.
    pub(super) fn match_rules(
        &self,
        incident: &Incident,
        hits: &[RuleHit],
        attempts: &[Attempt],
        now: DateTime<Utc>,
        mut reasons: Vec<Reason>,
    ) -> Proposal {
        // A policy rule covers a detection rule it names (or its level) with certainty; the
        // model's finding with the model's confidence.
        let covered = |r: &Rule| -> Option<f64> {
            let detected = hits
                .iter()
                .any(|h| r.detections.contains(&h.name) || r.levels.contains(&h.level));
            let modelled = match incident.threat {
                Some(t) => r.threats.contains(&t),
                None => r.failure_modes.contains(&incident.failure_mode),
            };
            let confidence = if detected { 1.0 } else { incident.confidence };
            let account = incident.resource.account.as_deref().unwrap_or(OWN_ACCOUNT);
            let in_scope = r.accounts.is_empty() || r.accounts.iter().any(|a| a == account);
            (in_scope
                && (detected || modelled)
                && confidence >= r.min_confidence
                && incident.severity >= r.min_severity)
                .then_some(confidence)
        };
        let (rule, confidence) = match self.rules.iter().find_map(|r| covered(r).map(|c| (r, c))) {
            Some((r, c)) => (Some(r), c),
            None => (None, incident.confidence),
        };
        if rule.is_none() && !hits.is_empty() && incident.threat.is_none() {
            // What a detection rule's level means when no policy rule names it.
            let (tier, why) = detections::default_tier(hits);
            // A low match beside a failure the model named: the failure is weighed as ever.
            if tier != Tier::Observe || incident.failure_mode == FailureMode::Normal {
                reasons.push(why);
                return self.no_action(tier, reasons);
            }
        }
        if let (Some(threat), None) = (incident.threat, rule) {
            reasons.push(Reason::new(
                Code::Threat,
                format!(
                    "{threat} suspected at confidence {:.2}: no rule contains it, people are told, nothing is changed",
                    incident.confidence
                ),
            ));
            return self.no_action(Tier::Escalate, reasons);
        }
        let Some(rule) = rule else {
            reasons.push(Reason::new(
                Code::NoRule,
                format!(
                    "no rule acts on {} at confidence {:.2}, severity {}: people are told, nothing is changed",
                    incident.failure_mode, incident.confidence, incident.severity
                ),
            ));
            return self.no_action(Tier::Escalate, reasons);
        };
        let mode = if rule.dry_run {
            Mode::DryRun
        } else {
            self.mode
        };
        let code = Code::rule(&rule.name);
        let escalate = |mut reasons: Vec<Reason>, why: String| {
            reasons.push(Reason::new(code.clone(), why));
            Proposal {
                tier: Tier::Escalate,
                action: None,
                mode,
                reasons,
            }
        };
        if rule.ladder.is_empty() {
            reasons.push(Reason::new(
                code.clone(),
                format!("{} matched: tier {}", incident.what(), rule.tier),
            ));
            return Proposal {
                tier: rule.tier,
                action: None,
                mode,
                reasons,
            };
        }
        // The rung: one past each rung that was tried in the window and did not verify.
        let since = now - self.loop_window();
        let failed = attempts
            .iter()
            .filter(|a| {
                a.at >= since
                    && a.status != OutcomeStatus::Verified
                    && a.status != OutcomeStatus::NotActed
            })
            .count();
        // Rungs that cannot apply to this resource (no service tag, not an access key, ...)
        // are skipped, with their reason; the ladder climbs the applicable ones.
        let mut applicable = Vec::with_capacity(rule.ladder.len());
        for kind in &rule.ladder {
            match actions::action_for(*kind, incident, &self.deployments) {
                Ok(action) => applicable.push((*kind, action)),
                Err(why) => reasons.push(Reason::new(
                    code.clone(),
                    format!("rung {kind:?} skipped: {why}"),
                )),
            }
        }
        if applicable.is_empty() {
            return escalate(
                reasons,
                "no rung of the ladder applies to this resource: escalating".to_owned(),
            );
        }
        let total = applicable.len();
        let Some((kind, action)) = applicable.into_iter().nth(failed) else {
            return escalate(
                reasons,
                format!(
                    "every applicable rung of the ladder ({total}) was tried and none verified: escalating"
                ),
            );
        };
        // The tier follows from the rule's ceiling, the confidence and reversibility.
        let t = &self.tiers;
        let tier = if confidence < t.approval_min_confidence {
            return escalate(
                reasons,
                format!(
                    "confidence {:.2} is below {:.2}: too unsure to propose {action}",
                    confidence, t.approval_min_confidence
                ),
            );
        } else if let Some(why) = outsiders::could_cause(incident)
            .or_else(|| detections::outsider_only(hits))
            .filter(|_| matches!(rule.tier, Tier::AutoHeal | Tier::Block))
        {
            reasons.push(Reason::new(
                Code::Outsider,
                format!("{why}: a person approves"),
            ));
            Tier::Approval
        } else if matches!(rule.tier, Tier::AutoHeal | Tier::Block)
            && (confidence < t.auto_heal_min_confidence
                || (rule.tier == Tier::AutoHeal && !kind.reversible()))
        {
            reasons.push(Reason::new(
                Code::Tier,
                format!(
                    "confidence {:.2} < {:.2} or the action cannot be undone: a person approves",
                    confidence, t.auto_heal_min_confidence
                ),
            ));
            Tier::Approval
        } else {
            rule.tier
        };
        reasons.push(Reason::new(
            code,
            format!(
                "{} with confidence {:.2} >= {:.2}: rung {} of {}: {action}",
                incident.what(),
                confidence,
                rule.min_confidence,
                failed + 1,
                total
            ),
        ));
        Proposal {
            tier,
            action: Some(action),
            mode,
            reasons,
        }
    }
}
