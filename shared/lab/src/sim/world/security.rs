//! The security arm: the account's CloudTrail, its CIS alarms (the baseline), Stratus
//! detonations replayed, and attacks injected on principals.

use super::*;

// --- Security ----------------------------------------------------------------------------------

/// CIS-style CloudTrail metric filter alarms, the baseline's security pages: the event names
/// and error codes they count in a five-minute period, and the count that pages.
pub(super) fn cis_alarm(s: &Signal) -> Option<&'static str> {
    use vigil_core::domain::SignalKind;
    match &s.kind {
        SignalKind::ConsoleSignIn { success: false, .. } => Some("console-sign-in-failures"),
        SignalKind::ApiCall(c) => {
            if c.error_code
                .as_deref()
                .is_some_and(|e| e.contains("AccessDenied") || e.contains("Unauthorized"))
            {
                return Some("unauthorized-api-calls");
            }
            match c.event_name.as_str() {
                "StopLogging" | "DeleteTrail" | "UpdateTrail" | "PutEventSelectors" => {
                    Some("cloudtrail-changes")
                }
                "CreateUser"
                | "CreateAccessKey"
                | "CreateLoginProfile"
                | "AttachUserPolicy"
                | "AttachRolePolicy"
                | "PutUserPolicy"
                | "PutRolePolicy"
                | "CreatePolicy"
                | "CreatePolicyVersion"
                | "DeleteRolePolicy"
                | "DeleteUserPolicy"
                | "DetachUserPolicy"
                | "DetachRolePolicy"
                | "UpdateAssumeRolePolicy"
                | "AddUserToGroup" => Some("iam-policy-changes"),
                "AuthorizeSecurityGroupIngress" | "CreateSecurityGroup" | "DeleteSecurityGroup" => {
                    Some("security-group-changes")
                }
                "PutBucketPolicy" | "PutBucketAcl" | "DeleteBucketPolicy" => {
                    Some("s3-bucket-policy-changes")
                }
                "DisableKey" | "ScheduleKeyDeletion" => Some("kms-key-deletion"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// How many events of a filter in five minutes page (CIS: one; failures and denials: more).
pub(super) fn cis_threshold(alarm: &str) -> usize {
    match alarm {
        "console-sign-in-failures" => 3,
        "unauthorized-api-calls" => 5,
        _ => 1,
    }
}

/// Days of benign activity before minute 0: the principals' histories a deployed Vigil
/// would hold after running for a week.
pub(super) const HISTORY_DAYS: u32 = 7;

pub(super) struct SecurityWorld {
    /// Benign activity before the run.
    pub(super) history: Vec<Signal>,
    pub(super) events: Vec<(u32, Signal, Option<usize>)>,
    pub(super) faults: Vec<Fault>,
    pub(super) findings: Vec<(u32, usize)>,
    /// Per principal, the gaps in the account's posture it stands for (CIS controls).
    pub(super) gaps: HashMap<String, Vec<&'static str>>,
}

/// The account's CloudTrail with the scenario's attacks injected: generated attacks of one
/// class, password guessing at humans' console sign-ins, or (`Kind::Replay`) every Stratus
/// detonation of the config replayed as a victim's stolen credentials.
pub(super) fn security_world(
    config: &SimConfig,
    scenario: Scenario,
    kind: Kind,
) -> Result<SecurityWorld, SimError> {
    let seed = seed_of(config, scenario, 2);
    let mut rng = generator::rng(seed);
    let personas = cloudtrail::personas(&mut rng, ACCOUNT);
    let gaps: HashMap<String, Vec<&'static str>> = personas
        .iter()
        .map(|p| (p.principal.id.clone(), p.posture_gaps()))
        .filter(|(_, g)| !g.is_empty())
        .collect();
    let days = config.duration_minutes.div_ceil(1440).max(1);
    let start = epoch() - Duration::days(i64::from(HISTORY_DAYS));
    let mut history = Vec::new();
    let mut events: Vec<(u32, Signal, Option<usize>)> = Vec::new();
    for l in cloudtrail::benign(&mut rng, &personas, start, days + HISTORY_DAYS) {
        let m = (l.signal.observed_at - epoch()).num_minutes();
        if m < 0 {
            history.push(l.signal);
        } else if m < i64::from(config.duration_minutes) {
            events.push((m as u32, l.signal, None));
        }
    }
    let mut faults = Vec::new();
    let mut findings = Vec::new();
    let class = match kind {
        Kind::Security(class) => class,
        // The guessing is aimed at a sign-in, not at keys: no key and no GuardDuty finding.
        Kind::BruteForce => vigil_core::domain::ThreatClass::CredentialCompromise,
        Kind::Replay => {
            replay_stratus(config, &mut rng, &personas, &mut events, &mut faults)?;
            events.sort_by_key(|(m, s, _)| (*m, s.observed_at));
            return Ok(SecurityWorld {
                history,
                events,
                faults,
                findings,
                gaps,
            });
        }
        Kind::Ops(_) => {
            return Err(SimError::Stage(
                "an operations scenario has no attacks to inject".into(),
            ));
        }
    };
    let brute = kind == Kind::BruteForce;
    let victims: Vec<usize> = (0..personas.len())
        .filter(|&i| {
            if brute {
                // Only people sign in to the console.
                return personas[i].human;
            }
            personas[i].principal.access_key_id.is_some()
                || class != vigil_core::domain::ThreatClass::CredentialCompromise
        })
        .collect();
    let count = config.faults.min(victims.len());
    for (k, onset) in onsets(&mut rng, count, config.duration_minutes)
        .into_iter()
        .enumerate()
    {
        let (ack, fix, user_report) = humans_for(&mut rng, &config.humans);
        let victim = &personas[victims[(k * 3 + 1) % victims.len()]];
        let attack = if brute {
            cloudtrail::brute_force(&mut rng, victim, at(onset), 9000 + k as u64)
        } else {
            cloudtrail::attack(&mut rng, victim, class, at(onset), 9000 + k as u64)
        };
        let last = attack
            .iter()
            .map(|l| (l.signal.observed_at - epoch()).num_minutes().max(0) as u32)
            .max()
            .unwrap_or(onset);
        for l in attack {
            let m = (l.signal.observed_at - epoch()).num_minutes().max(0) as u32;
            if m < config.duration_minutes {
                events.push((m, l.signal, Some(faults.len())));
            }
        }
        if class == vigil_core::domain::ThreatClass::CredentialCompromise && !brute {
            // GuardDuty's own latency before the finding.
            let delay = draw(&mut rng, (12.0, 0.4));
            findings.push((onset + delay, faults.len()));
        }
        faults.push(Fault {
            target: victim.principal.id.clone(),
            group: None,
            // A password guesser holds no key: deactivating one does not stop them.
            alias: if brute {
                None
            } else {
                victim.principal.access_key_id.clone()
            },
            instances: Vec::new(),
            technique: None,
            onset,
            // The intruder works until stopped or done.
            impact_from: None,
            ack,
            fix,
            user_report,
        });
        let _ = last;
    }
    events.sort_by_key(|(m, s, _)| (*m, s.observed_at));
    Ok(SecurityWorld {
        history,
        events,
        faults,
        findings,
        gaps,
    })
}

/// Every Stratus detonation of the config, spread over the run, each by another principal
/// (a human's for the techniques run by a user, else a role's).
pub(super) fn replay_stratus(
    config: &SimConfig,
    rng: &mut Rng,
    personas: &[cloudtrail::Persona],
    events: &mut Vec<(u32, Signal, Option<usize>)>,
    faults: &mut Vec<Fault>,
) -> Result<(), SimError> {
    let humans: Vec<&cloudtrail::Persona> = personas.iter().filter(|p| p.human).collect();
    let roles: Vec<&cloudtrail::Persona> = personas.iter().filter(|p| !p.human).collect();
    let n = config.stratus.len();
    for (k, onset) in onsets(rng, n, config.duration_minutes)
        .into_iter()
        .enumerate()
    {
        let (ack, fix, user_report) = humans_for(rng, &config.humans);
        let t = &config.stratus[k];
        let signals = crate::eval::threats::technique_signals(t).map_err(SimError::Replay)?;
        let pool = if crate::eval::threats::by_user(&signals) {
            &humans
        } else {
            &roles
        };
        if pool.is_empty() {
            continue;
        }
        let victim = pool[rng.random_range(0..pool.len())];
        for l in crate::eval::threats::replant(signals, victim, at(onset)) {
            let m = (l.signal.observed_at - epoch()).num_minutes().max(0) as u32;
            if m < config.duration_minutes {
                events.push((m, l.signal, Some(faults.len())));
            }
        }
        faults.push(Fault {
            target: victim.principal.id.clone(),
            group: None,
            alias: victim.principal.access_key_id.clone(),
            instances: Vec::new(),
            technique: Some(t.name.clone()),
            onset,
            impact_from: None,
            ack,
            fix,
            user_report,
        });
    }
    Ok(())
}

pub(super) fn finding_event(key: &str, user: &str, minute: u32, n: usize) -> serde_json::Value {
    let time = at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "version": "0",
        "id": format!("finding-{n}-{minute}"),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": ACCOUNT, "region": "us-east-1", "partition": "aws",
            "id": format!("{:032x}", 0xf1d0_0000_u64 + n as u64),
            "arn": format!("arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/0123456789abcdef0123456789abcdef/finding/{n}"),
            "type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {"accessKeyId": key, "principalId": "AIDAEXAMPLE", "userName": user, "userType": "IAMUser"}
            },
            "service": {"serviceName": "guardduty", "archived": false, "count": 1,
                "eventFirstSeen": time, "eventLastSeen": time,
                "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP", "remoteIpDetails": {"ipAddressV4": "198.51.100.7"}}}},
            "severity": 8.0,
            "createdAt": time, "updatedAt": time,
            "title": format!("API ListBuckets was invoked from a known malicious IP address by {user}."),
            "description": "An API was invoked from an IP address on a threat list."
        }
    })
}

pub(super) async fn security(
    config: &SimConfig,
    scenario: Scenario,
    kind: Kind,
) -> Result<ScenarioResult, SimError> {
    let world = security_world(config, scenario, kind)?;
    let (baseline, bl) = security_arm(config, &world, false).await?;
    let (vigil, vl) = security_arm(config, &world, true).await?;
    Ok(ScenarioResult {
        scenario,
        duration_minutes: config.duration_minutes,
        faults: world.faults.clone(),
        baseline,
        vigil,
        timeline: bl
            .into_iter()
            .zip(vl)
            .enumerate()
            .map(|(m, (b, v))| (m as u32, b, v))
            .collect(),
    })
}

pub(super) async fn security_arm(
    config: &SimConfig,
    world: &SecurityWorld,
    with_vigil: bool,
) -> Result<(ArmResult, Vec<Option<f64>>), SimError> {
    let mut book = Book::new(&world.faults);
    let stages = if with_vigil {
        Some(Stages::new(config)?)
    } else {
        None
    };
    if let Some(pack) = stages.as_ref().and_then(|st| st.ingest.rules.as_deref()) {
        // A rule tagged with a principal's gap (`cis.4.2`) reports that gap.
        book.posture_rules = world
            .gaps
            .iter()
            .map(|(principal, gaps)| {
                let rules = pack
                    .rules()
                    .iter()
                    .filter(|r| r.sigma().tags.iter().any(|t| gaps.contains(&t.as_str())))
                    .map(|r| r.name.clone())
                    .collect();
                (principal.clone(), rules)
            })
            .collect();
    }
    if let Some(st) = &stages {
        // A week of history in the principals' profiles, as a running Vigil has.
        ingest::observe(world.history.clone(), &st.state, &[])
            .await
            .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
    }
    let mut pending: Vec<(u32, Effect)> = Vec::new();
    let mut window: Vec<(u32, &'static str, String)> = Vec::new();
    let mut timeline = vec![Some(0.0); config.duration_minutes as usize];
    let mut e = 0usize;
    let no_instances: Vec<Instance> = Vec::new();
    for minute in 0..config.duration_minutes {
        let due: Vec<Effect> = pending
            .iter()
            .filter(|(m, _)| *m == minute)
            .map(|(_, e)| e.clone())
            .collect();
        pending.retain(|(m, _)| *m != minute);
        for eff in due {
            if let Effect::Clear(f, by) = eff {
                book.clear(f, minute, &by);
            }
        }
        // This minute's events; an intruder who has been stopped makes none.
        let mut batch: Vec<Signal> = Vec::new();
        while e < world.events.len() && world.events[e].0 == minute {
            let (_, s, f) = &world.events[e];
            e += 1;
            if let Some(f) = f {
                if book.cleared[*f].is_some_and(|c| c <= minute) {
                    continue;
                }
                book.result.impact_minutes +=
                    u32::from(batch.iter().all(|b| b.resource.id != s.resource.id));
                if let Some(t) = timeline.get_mut(minute as usize) {
                    *t = Some(t.unwrap_or(0.0) + 1.0);
                }
            }
            batch.push(s.clone());
        }
        match &stages {
            None => {
                // CIS metric filters over five minutes.
                for s in &batch {
                    if let Some(a) = cis_alarm(s) {
                        window.push((minute, a, s.resource.id.clone()));
                    }
                }
                window.retain(|(m, _, _)| minute < m + 5);
                let mut counts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for (_, a, who) in &window {
                    counts.entry(a).or_default().push(who.clone());
                }
                for (a, who) in counts {
                    if who.len() >= cis_threshold(a) {
                        // The page names the filter; people find the principal in the trail.
                        let principal = who.last().cloned().unwrap_or_default();
                        book.page(&principal, minute, a);
                        window.retain(|(_, x, _)| *x != a);
                    }
                }
                for (m, f) in &world.findings {
                    if *m == minute && book.cleared[*f].is_none_or(|c| c > minute) {
                        let target = world.faults[*f].target.clone();
                        book.page(&target, minute, "guardduty-finding");
                    }
                }
            }
            Some(st) => {
                if !batch.is_empty() {
                    // As ingest matches each call's raw record against the detection rules,
                    // the record a generated call stands for is matched here; the correlation
                    // windows live in the same histories.
                    if let Some(pack) = &st.ingest.rules {
                        for s in &mut batch {
                            if let Some(record) = crate::eval::threats::record_of(s) {
                                s.rules = pack.check(&record);
                            }
                        }
                    }
                    let mut observations =
                        ingest::observe(batch, &st.state, &st.ingest.correlations)
                            .await
                            .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
                    ingest::reported(st.ingest.rules.as_deref(), &mut observations);
                    let observed = Observed {
                        event_id: Some(format!("minute-{minute}")),
                        observations,
                        ignored: None,
                    };
                    let decisions = st
                        .run(observed, &format!("minute-{minute}"), at(minute))
                        .await?;
                    apply(
                        &decisions,
                        minute,
                        &no_instances,
                        &mut book,
                        &mut pending,
                        FailureMode::Normal,
                    );
                }
                for (m, f) in &world.findings {
                    if *m == minute && book.cleared[*f].is_none_or(|c| c > minute) {
                        let fault = &world.faults[*f];
                        let ev = finding_event(
                            fault.alias.as_deref().unwrap_or_default(),
                            fault.target.rsplit('/').next().unwrap_or("user"),
                            minute,
                            *f,
                        );
                        let decisions = st.event(&ev, &format!("finding-{f}"), minute).await?;
                        apply(
                            &decisions,
                            minute,
                            &no_instances,
                            &mut book,
                            &mut pending,
                            FailureMode::Normal,
                        );
                    }
                }
            }
        }
    }
    Ok((book.result, timeline))
}
