//! The operations arm: the fleet's telemetry, the static alarms (the baseline's pages; with
//! Vigil on, events to Vigil), and faults injected into instances and groups.

use super::*;

// --- Telemetry ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    Cpu,
    NetIn,
    NetOut,
    Status,
    Mem,
    Disk,
}

pub(super) const METRICS: [(Metric, &str, &str); 6] = [
    (Metric::Cpu, "AWS/EC2", "CPUUtilization"),
    (Metric::NetIn, "AWS/EC2", "NetworkIn"),
    (Metric::NetOut, "AWS/EC2", "NetworkOut"),
    (Metric::Status, "AWS/EC2", "StatusCheckFailed"),
    (Metric::Mem, "CWAgent", "mem_used_percent"),
    (Metric::Disk, "CWAgent", "disk_used_percent"),
];

pub(super) fn series(s: &telemetry::InstanceSample, m: Metric) -> &[Option<f64>] {
    match m {
        Metric::Cpu => &s.cpu,
        Metric::NetIn => &s.net_in,
        Metric::NetOut => &s.net_out,
        Metric::Status => &s.status_failed,
        Metric::Mem => &s.mem,
        Metric::Disk => &s.disk,
    }
}

#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub(super) id: InstanceId,
    pub(super) group: usize,
    pub(super) healthy: telemetry::InstanceSample,
    /// The fault this instance carries and its series.
    pub(super) faulty: Option<(usize, telemetry::InstanceSample)>,
    pub(super) gone_at: Option<u32>,
    /// Points of its series before minute 0.
    pub(super) history: usize,
}

/// Whether a fault shows in a minute: `[onset, cleared)`.
pub(super) fn active(faults: &[Fault], cleared: &[Option<u32>], f: usize, minute: u32) -> bool {
    faults[f].onset <= minute && cleared[f].is_none_or(|c| minute < c)
}

impl Instance {
    pub(super) fn value(
        &self,
        m: Metric,
        minute: u32,
        faults: &[Fault],
        cleared: &[Option<u32>],
    ) -> Option<f64> {
        let i = self.history + minute as usize;
        let s = match &self.faulty {
            Some((f, s)) if active(faults, cleared, *f, minute) => s,
            _ => &self.healthy,
        };
        series(s, m).get(i).copied().flatten()
    }

    /// Whether users feel the fault in this minute.
    pub(super) fn impaired(&self, kind: FailureMode, minute: u32) -> bool {
        let Some((_, s)) = &self.faulty else {
            return false;
        };
        let v = |m| {
            series(s, m)
                .get(self.history + minute as usize)
                .copied()
                .flatten()
        };
        match kind {
            FailureMode::CpuRunaway => v(Metric::Cpu).is_some_and(|c| c >= 90.0),
            FailureMode::TrafficSurge => v(Metric::Cpu).is_some_and(|c| c >= 85.0),
            FailureMode::MemoryLeak => v(Metric::Mem).is_some_and(|c| c >= 95.0),
            FailureMode::DiskFilling => v(Metric::Disk).is_some_and(|c| c >= 95.0),
            _ => true,
        }
    }
}

// --- Static alarms (the baseline's pages; with Vigil on, events to Vigil) ---------------------

/// CloudWatch-style static alarms: (metric, threshold, datapoints that must breach).
pub(super) const ALARMS: [(Metric, f64, usize, &str); 4] = [
    (Metric::Cpu, 80.0, 3, "cpu-high"),
    (Metric::Status, 1.0, 2, "status-check-failed"),
    (Metric::Mem, 90.0, 3, "memory-high"),
    (Metric::Disk, 90.0, 3, "disk-high"),
];

/// Which alarms are in ALARM, per instance, updated as each datapoint arrives.
pub(super) struct Alarms {
    pub(super) state: HashMap<(String, usize), bool>,
    /// Minutes per EC2 datapoint (the agent's are one minute).
    ec2_period: u32,
    /// Without the agent there are no memory or disk series to alarm on.
    agent: bool,
}

/// Minutes per datapoint of a metric: EC2's by its monitoring, the agent's one, and EC2's
/// status checks one whatever the monitoring (EC2 publishes them every minute, free).
pub(super) fn period_of(m: Metric, ec2_period: u32) -> u32 {
    match m {
        Metric::Mem | Metric::Disk | Metric::Status => 1,
        _ => ec2_period.max(1),
    }
}

impl Alarms {
    pub(super) fn new(config: &SimConfig) -> Self {
        Alarms {
            state: HashMap::new(),
            ec2_period: config.monitoring.period_minutes(),
            agent: config.agent_metrics(),
        }
    }

    /// The alarms that went into ALARM this minute. A datapoint covers the minutes
    /// `[end - period, end)` and arrives at `end`; an alarm evaluates the last `n` of them
    /// (minutes before the run are not evaluated).
    pub(super) fn step(
        &mut self,
        inst: &Instance,
        minute: u32,
        faults: &[Fault],
        cleared: &[Option<u32>],
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        let end = minute + 1;
        for (k, (metric, threshold, n, _)) in ALARMS.iter().enumerate() {
            if !self.agent && matches!(metric, Metric::Mem | Metric::Disk) {
                continue;
            }
            let period = period_of(*metric, self.ec2_period);
            if !end.is_multiple_of(period) {
                continue;
            }
            let breaching = (0..*n as u32).all(|back| {
                let to = end.checked_sub(back * period);
                to.and_then(|to| to.checked_sub(period))
                    .and_then(|from| inst.mean(*metric, from, from + period, faults, cleared))
                    .is_some_and(|v| v >= *threshold)
            });
            let key = (inst.id.to_string(), k);
            let was = self.state.get(&key).copied().unwrap_or(false);
            if breaching && !was {
                fired.push(k);
            }
            self.state.insert(key, breaching);
        }
        fired
    }
}

/// The mean of some values (one CloudWatch datapoint's Average); none of none.
fn mean_of(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

impl Instance {
    /// The mean of a metric over the run's minutes `[from, to)`, as one datapoint of
    /// `to - from` minutes (CloudWatch's Average); none when no minute has a value.
    pub(super) fn mean(
        &self,
        m: Metric,
        from: u32,
        to: u32,
        faults: &[Fault],
        cleared: &[Option<u32>],
    ) -> Option<f64> {
        mean_of((from..to).filter_map(|t| self.value(m, t, faults, cleared)))
    }
}

/// What CloudWatch holds of an instance at `minute`: the pull's longest window of each metric,
/// reaching back into the history before minute 0. With basic monitoring EC2's metrics are
/// five-minute means, each there once its five minutes have passed; the agent's are one
/// minute; without the agent there are none of its series.
pub(super) fn publish(
    metrics: &MemoryMetrics,
    inst: &Instance,
    minute: u32,
    book: &Book,
    config: &SimConfig,
) {
    let ec2_period = config.monitoring.period_minutes();
    let value = |m: Metric, t: i64| match u32::try_from(t) {
        Ok(t) => inst.value(m, t, &book.faults, &book.cleared),
        Err(_) => {
            let i = usize::try_from(inst.history as i64 + t).ok()?;
            series(&inst.healthy, m).get(i).copied().flatten()
        }
    };
    if config.telemetry == super::super::Telemetry::Lines {
        write_lines(metrics, inst, minute, config, value);
    }
    for (m, ns, name) in METRICS {
        if !config.agent_metrics() && matches!(m, Metric::Mem | Metric::Disk) {
            continue;
        }
        // With lines, CloudWatch is read for the status check alone.
        let lines = config.telemetry == super::super::Telemetry::Lines;
        if lines && m != Metric::Status {
            continue;
        }
        let period = i64::from(period_of(m, ec2_period));
        let now = i64::from(minute);
        let first = (now - inst.history as i64).div_euclid(period) * period;
        let points: vigil_core::metrics::Series = (0..)
            .map(|k| first + k * period)
            .take_while(|t| t + period <= now)
            .filter_map(|t| {
                let mean = mean_of((t..t + period).filter_map(|x| value(m, x)))?;
                Some((epoch() + Duration::minutes(t), mean))
            })
            .collect();
        if !points.is_empty() || matches!(m, Metric::Cpu) {
            metrics.put(&inst.id, &format!("{ns}/{name}"), points);
        }
    }
}

/// The instance's lines for the minutes it has not written yet, each written once its minute
/// is over: none while its status check fails or its datapoints stop (it cannot write then),
/// memory and disk only where it reports them.
fn write_lines(
    metrics: &MemoryMetrics,
    inst: &Instance,
    minute: u32,
    config: &SimConfig,
    value: impl Fn(Metric, i64) -> Option<f64>,
) {
    use vigil_core::metrics::lines::{LINE_VERSION, Line};
    let now = i64::from(minute);
    let stamp = |t: i64| (epoch() + Duration::minutes(t)).timestamp();
    let first = metrics
        .last_line(&inst.id)
        .map(|last| (last - epoch().timestamp()).div_euclid(60) + 1)
        .unwrap_or(now - inst.history as i64)
        .max(now - inst.history as i64);
    for t in first..now {
        let cpu = value(Metric::Cpu, t);
        if cpu.is_none() || value(Metric::Status, t) == Some(1.0) {
            continue;
        }
        let agent = |m: Metric| if config.agent { value(m, t) } else { None };
        metrics.write_line(
            &inst.id,
            &Line {
                v: LINE_VERSION,
                t: stamp(t),
                cpu,
                net_in: value(Metric::NetIn, t),
                net_out: value(Metric::NetOut, t),
                mem: agent(Metric::Mem),
                disk: agent(Metric::Disk),
            },
        );
    }
}

/// The EventBridge event of an alarm going into ALARM, with its `reasonData` (the breaching
/// datapoints and the threshold) as CloudWatch sends it.
pub(super) fn alarm_event(
    instance: &Instance,
    alarm: usize,
    minute: u32,
    book: &Book,
    ec2_period: u32,
) -> serde_json::Value {
    let inst = &instance.id;
    let (metric, threshold, n, name) = ALARMS[alarm];
    let period = period_of(metric, ec2_period);
    let recent: Vec<f64> = (0..n as u32)
        .rev()
        .filter_map(|back| {
            let from = (minute + 1).checked_sub((back + 1) * period)?;
            instance.mean(metric, from, from + period, &book.faults, &book.cleared)
        })
        .collect();
    let reason_data = serde_json::json!({
        "version": "1.0",
        "queryDate": at(minute).to_rfc3339(),
        "statistic": "Average",
        "period": period * 60,
        "recentDatapoints": recent,
        "threshold": threshold,
        "evaluatedDatapoints": []
    })
    .to_string();
    let (namespace, metric_name) = METRICS
        .iter()
        .find(|(m, _, _)| *m == metric)
        .map(|(_, ns, name)| (*ns, *name))
        .unwrap_or(("AWS/EC2", "CPUUtilization"));
    let time = at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "version": "0",
        "id": format!("alarm-{inst}-{name}-{minute}"),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}-{inst}")],
        "detail": {
            "alarmName": format!("{name}-{inst}"),
            "configuration": {"metrics": [{
                "id": "m1",
                "metricStat": {
                    "metric": {"dimensions": {"InstanceId": inst.to_string()}, "name": metric_name, "namespace": namespace},
                    "period": period * 60, "stat": "Average"
                },
                "returnData": true
            }]},
            "previousState": {"reason": "Threshold Crossed", "timestamp": time, "value": "OK"},
            "state": {
                "reason": format!("Threshold Crossed: {n} out of the last {n} datapoints were greater than or equal to the threshold ({threshold})."),
                "reasonData": reason_data,
                "timestamp": time,
                "value": "ALARM"
            }
        }
    })
}

/// The generated world of an ops scenario, shared by both arms.
pub(super) struct OpsWorld {
    pub(super) instances: Vec<Instance>,
    pub(super) faults: Vec<Fault>,
    pub(super) kind: FailureMode,
    pub(super) next_id: usize,
    pub(super) seed: u64,
    pub(super) points: usize,
    /// Points of each series before minute 0.
    pub(super) history: usize,
}

impl OpsWorld {
    pub(super) fn healthy(&self, n: usize) -> telemetry::InstanceSample {
        self.drawn(n, telemetry::series)
    }

    /// The `n`th instance's healthy series when it is to carry this world's fault, if they
    /// differ. A leak or a filling disk shows only in the CloudWatch agent's series, so a
    /// faulty series of those always has them; the instance then runs the agent before the
    /// fault and after it is cleared too (its healthy series drawn again on the agent).
    /// Otherwise its memory would be published only while the fault lasts, and the pull would
    /// go on reading the fault's last points long after it was cleared.
    pub(super) fn healthy_carrying(&self, n: usize) -> Option<telemetry::InstanceSample> {
        matches!(
            self.kind,
            FailureMode::MemoryLeak | FailureMode::DiskFilling
        )
        .then(|| self.drawn(n, telemetry::series_with_agent))
    }

    /// The `n`th instance's healthy series, drawn by `series` from the instance's own seed.
    fn drawn(
        &self,
        n: usize,
        series: fn(
            &mut generator::Rng,
            FailureMode,
            telemetry::TelemetryConfig,
            usize,
        ) -> telemetry::InstanceSample,
    ) -> telemetry::InstanceSample {
        let mut rng = generator::rng(self.seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let config = telemetry::TelemetryConfig {
            period_secs: 60,
            points: self.points,
        };
        series(&mut rng, FailureMode::Normal, config, self.points)
    }

    /// A healthy instance of `group`, the `n`th the world has made.
    pub(super) fn instance(&self, n: usize, group: usize) -> Instance {
        Instance {
            id: instance_id(n),
            group,
            healthy: self.healthy(n),
            faulty: None,
            gone_at: None,
            history: self.history,
        }
    }
}

pub(super) fn ops_world(config: &SimConfig, scenario: Scenario, kind: FailureMode) -> OpsWorld {
    let seed = seed_of(config, scenario, 1);
    let mut rng = generator::rng(seed);
    let history = history(config);
    let points = history + config.duration_minutes as usize + 1;
    let tc = telemetry::TelemetryConfig {
        period_secs: 60,
        points,
    };
    let mut world = OpsWorld {
        instances: Vec::new(),
        faults: Vec::new(),
        kind,
        next_id: config.instances.max(GROUPS.len()),
        seed,
        points,
        history,
    };
    let n = config.instances.max(GROUPS.len());
    for i in 0..n {
        world.instances.push(world.instance(i, i % GROUPS.len()));
    }
    let group_level = matches!(kind, FailureMode::BadDeployment | FailureMode::TrafficSurge);
    let count = if group_level {
        config.faults.min(GROUPS.len())
    } else {
        config.faults.min(n)
    };
    let onsets = onsets(&mut rng, count, config.duration_minutes);
    for (k, onset) in onsets.into_iter().enumerate() {
        let (ack, fix, user_report) = humans_for(&mut rng, &config.humans);
        let members: Vec<usize> = if group_level {
            (0..n)
                .filter(|i| i % GROUPS.len() == k % GROUPS.len())
                .collect()
        } else {
            // A different instance each time, across the groups.
            vec![(k * 5 + 1) % n]
        };
        let f = world.faults.len();
        for &i in &members {
            let mut frng = generator::rng(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let s = telemetry::series(&mut frng, kind, tc, history + onset as usize);
            if let Some(h) = world.healthy_carrying(i) {
                world.instances[i].healthy = h;
            }
            world.instances[i].faulty = Some((f, s));
        }
        let impact_from = (onset..config.duration_minutes).find(|m| {
            members
                .iter()
                .any(|&i| world.instances[i].impaired(kind, *m))
        });
        world.faults.push(Fault {
            target: if group_level {
                group_name(k % GROUPS.len())
            } else {
                world.instances[members[0]].id.to_string()
            },
            group: Some(group_name(members[0] % GROUPS.len())),
            alias: None,
            instances: members
                .iter()
                .map(|&i| world.instances[i].id.to_string())
                .collect(),
            technique: None,
            onset,
            impact_from,
            ack,
            fix,
            user_report,
        });
    }
    world
}

/// The ops scenario: both arms on one generated world.
pub(super) async fn ops(
    config: &SimConfig,
    scenario: Scenario,
    kind: FailureMode,
) -> Result<ScenarioResult, SimError> {
    let world = ops_world(config, scenario, kind);
    let (baseline, base_line) = ops_arm(config, &world, false).await?;
    let (vigil, vigil_line) = ops_arm(config, &world, true).await?;
    let timeline = base_line
        .into_iter()
        .zip(vigil_line)
        .enumerate()
        .map(|(m, (b, v))| (m as u32, b, v))
        .collect();
    Ok(ScenarioResult {
        scenario,
        duration_minutes: config.duration_minutes,
        faults: world.faults.clone(),
        baseline,
        vigil,
        timeline,
    })
}

pub(super) fn key_metric(kind: FailureMode) -> Metric {
    match kind {
        FailureMode::MemoryLeak => Metric::Mem,
        FailureMode::DiskFilling => Metric::Disk,
        FailureMode::NetworkPartition => Metric::NetIn,
        FailureMode::InstanceFailure => Metric::Status,
        _ => Metric::Cpu,
    }
}

/// One arm of an ops scenario. Returns its result and the first fault's key metric per minute.
pub(super) async fn ops_arm(
    config: &SimConfig,
    world: &OpsWorld,
    with_vigil: bool,
) -> Result<(ArmResult, Vec<Option<f64>>), SimError> {
    let mut instances = world.instances.clone();
    let mut next_id = world.next_id;
    let mut book = Book::new(&world.faults);
    let mut alarms = Alarms::new(config);
    let ec2_period = config.monitoring.period_minutes();
    let mut calls = super::super::Calls::default();
    let stages = if with_vigil {
        Some(Stages::new(config)?)
    } else {
        None
    };
    if let Some(s) = &stages {
        for (g, app) in GROUPS.iter().enumerate() {
            let members: Vec<InstanceId> = instances
                .iter()
                .filter(|i| i.group == g)
                .map(|i| i.id.clone())
                .collect();
            let name =
                GroupName::parse(&group_name(g)).map_err(|e| SimError::Stage(e.to_string()))?;
            s.fleet
                .add_group(&name, 1, members.len() as u32 * 2, &members);
            for (k, v) in tags(g) {
                for m in &members {
                    s.fleet.tag(m, &k, &v);
                }
            }
            s.ops.add_stage(&format!("{app}-release"), "Prod");
        }
    }
    // Effects scheduled by actions: (minute, what).
    let mut pending: Vec<(u32, Effect)> = Vec::new();
    let mut timeline = Vec::with_capacity(config.duration_minutes as usize);
    let watch = world.faults.first().and_then(|f| {
        instances
            .iter()
            .position(|i| i.id.to_string() == f.instances[0])
    });
    let metric = key_metric(world.kind);
    for minute in 0..config.duration_minutes {
        // Effects due now.
        let due: Vec<Effect> = pending
            .iter()
            .filter(|(m, _)| *m == minute)
            .map(|(_, e)| e.clone())
            .collect();
        pending.retain(|(m, _)| *m != minute);
        for e in due {
            match e {
                Effect::Replace(idx) => {
                    let old = instances[idx].clone();
                    instances[idx].gone_at = Some(minute);
                    // A replacement clears a fault of the instance itself once it has begun.
                    // The code's faults (a bad deployment, a surge of traffic) and faults yet
                    // to begin go with the workload onto the new instance.
                    let group_level = matches!(
                        world.kind,
                        FailureMode::BadDeployment | FailureMode::TrafficSurge
                    );
                    let inherited = match &old.faulty {
                        Some((f, s)) if group_level || book.faults[*f].onset > minute => {
                            Some((*f, s.clone()))
                        }
                        Some((f, _)) => {
                            book.clear(*f, minute, "Vigil: replaced");
                            None
                        }
                        None => None,
                    };
                    let mut fresh = world.instance(next_id, old.group);
                    if inherited.is_some()
                        && let Some(h) = world.healthy_carrying(next_id)
                    {
                        fresh.healthy = h;
                    }
                    fresh.faulty = inherited;
                    next_id += 1;
                    if let Some((f, _)) = &fresh.faulty {
                        book.faults[*f].instances.push(fresh.id.to_string());
                    }
                    if let Some(s) = &stages {
                        s.fleet.terminate(&old.id);
                        let name = GroupName::parse(&group_name(old.group))
                            .map_err(|e| SimError::Stage(e.to_string()))?;
                        s.fleet.launch(&name, &fresh.id, &tags(old.group));
                    }
                    instances.push(fresh);
                }
                Effect::Clear(f, by) => book.clear(f, minute, &by),
            }
        }
        let live: Vec<usize> = (0..instances.len())
            .filter(|i| instances[*i].gone_at.is_none())
            .collect();

        // Static alarms.
        let mut fired = Vec::new();
        for &i in &live {
            for a in alarms.step(&instances[i], minute, &book.faults, &book.cleared) {
                fired.push((i, a));
            }
        }
        for (i, a) in fired {
            let id = instances[i].id.to_string();
            match &stages {
                None => {
                    book.page(&id, minute, ALARMS[a].3);
                }
                Some(s) => {
                    // CloudWatch has the instance's metrics up to now: the second look reads them.
                    publish(&s.metrics, &instances[i], minute, &book, config);
                    let event = alarm_event(&instances[i], a, minute, &book, ec2_period);
                    calls.events += 1;
                    let owner = format!("alarm-{id}-{a}-{minute}");
                    let decisions = s.event(&event, &owner, minute).await?;
                    apply(
                        &decisions,
                        minute,
                        &instances,
                        &mut book,
                        &mut pending,
                        world.kind,
                    );
                }
            }
        }

        // The scheduled pull.
        if let Some(s) = &stages
            && minute % config.pull_minutes.max(1) == 0
        {
            for &i in &live {
                publish(&s.metrics, &instances[i], minute, &book, config);
            }
            calls.pulls += 1;
            calls.instance_pulls += live.len() as u64;
            let tick = serde_json::json!({
                "version": "0",
                "id": format!("tick-{minute}"),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "region": "us-east-1",
                "resources": [format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/vigil-pull")],
                "detail": {}
            });
            let decisions = s.event(&tick, &format!("tick-{minute}"), minute).await?;
            apply(
                &decisions,
                minute,
                &instances,
                &mut book,
                &mut pending,
                world.kind,
            );
        }

        // A bad deployment is announced by its deploy (the gate's record), which Vigil reads.
        if let Some(s) = &stages
            && world.kind == FailureMode::BadDeployment
        {
            for f in book.faults.iter().filter(|f| f.onset == minute) {
                let app = f.target.trim_end_matches("-prod");
                let _ = s
                    .state
                    .record_deploy(
                        &vigil_core::gate::Deploy {
                            target: format!("{app}/prod"),
                            pipeline: Some(format!("{app}-release")),
                            job_id: format!("job-{minute}"),
                            revision: Some(format!("rev-{minute}")),
                            at: at(minute),
                        },
                        at(minute) + Duration::days(7),
                    )
                    .await;
            }
        }

        book.user_reports(minute);

        // Impact.
        for (f, fault) in book.faults.iter().enumerate() {
            if !active(&book.faults, &book.cleared, f, minute) {
                continue;
            }
            let hurt = instances.iter().any(|i| {
                i.gone_at.is_none_or(|g| minute < g)
                    && i.faulty.as_ref().is_some_and(|(ff, _)| *ff == f)
                    && i.impaired(world.kind, minute)
            });
            if hurt && fault.onset <= minute {
                book.result.impact_minutes += 1;
            }
        }
        timeline.push(watch.and_then(|w| {
            let i = &instances[w];
            if i.gone_at.is_some_and(|g| minute >= g) {
                // The replacement, when there is one.
                instances
                    .iter()
                    .rev()
                    .find(|x| x.group == i.group && x.gone_at.is_none())
                    .and_then(|x| x.value(metric, minute, &book.faults, &book.cleared))
            } else {
                i.value(metric, minute, &book.faults, &book.cleared)
            }
        }));
    }
    if let Some(s) = &stages {
        let metric_calls = s.metrics.calls();
        let (reads, writes) = s.detectors.requests();
        calls.get_metric_data = metric_calls.get_metric_data;
        calls.metrics_requested = metric_calls.metrics_requested;
        calls.list_metrics = metric_calls.list_metrics;
        calls.log_reads = metric_calls.log_reads;
        calls.log_bytes_read = metric_calls.log_bytes_read;
        calls.lines_written = metric_calls.lines_written;
        calls.log_bytes_written = metric_calls.log_bytes_written;
        calls.state_reads = reads;
        calls.state_writes = writes;
        book.result.calls = calls;
    }
    Ok((book.result, timeline))
}
