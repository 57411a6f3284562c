//! The remediation actions through their AWS adapters, asserting the state each leaves in the
//! emulator. moto 5.2 implements Auto Scaling's capacity and detach calls and SSM Run Command;
//! it does not implement SSM Automation (StartAutomationExecution, GetAutomationExecution) or
//! CodePipeline's stage transitions and state (DisableStageTransition, GetPipelineState), so
//! for those the tests assert the exact request the adapter sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::Utc;
use vigil_aws::{autoscaling::AutoScaling, codepipeline::CodePipeline, ssm::Commands};
use vigil_core::domain::{
    Action, Decision, FailureMode, Incident, Mode, OutcomeStatus, Resource, ResourceKind, Severity,
    Tier,
};
use vigil_core::names::{GroupName, InstanceId, PipelineName};
use vigil_handlers::ports::{
    AutomationStatus, CommandStatus, DescribeInstance, DetachFromGroup, DisableTransition,
    RunCommand, SetDesiredCapacity, StartAutomation, TransitionEnabled,
};
use vigil_handlers::remediate::{self, RemediateConfig};
use vigil_tests as h;

async fn group_state(config: &aws_config::SdkConfig, group: &str) -> (i32, Vec<String>) {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .unwrap();
    let g = &out.auto_scaling_groups()[0];
    (
        g.desired_capacity().unwrap_or_default(),
        g.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect(),
    )
}

#[tokio::test]
async fn autoscaling_scale_out_and_detach_leave_the_group_as_asked() {
    let config = h::sdk_config();
    let (group, ids) = h::create_group(&config, 2).await;
    let name = GroupName::parse(&group).unwrap();
    let asg = AutoScaling::new(&config);

    asg.set_desired(&name, 3).await.unwrap();
    let (desired, instances) = group_state(&config, &group).await;
    assert_eq!((desired, instances.len()), (3, 3));
    // (Auto Scaling refuses a capacity beyond the group's maximum; moto does not, so the cap
    // the handler applies before calling is tested on the in-memory fleet.)

    // Suspend and resume what would disturb people examining the group.
    use vigil_handlers::ports::ScalingProcesses;
    let hold = vigil_core::domain::SUSPENDED_PROCESSES;
    asg.set_processes(&name, &hold, true).await.unwrap();
    let out = aws_sdk_autoscaling::Client::new(&config)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .unwrap();
    let mut suspended: Vec<String> = out.auto_scaling_groups()[0]
        .suspended_processes()
        .iter()
        .filter_map(|p| p.process_name().map(str::to_owned))
        .collect();
    suspended.sort();
    assert_eq!(
        suspended,
        ["AZRebalance", "AlarmNotification", "ScheduledActions"]
    );
    asg.set_processes(&name, &hold, false).await.unwrap();
    assert!(asg.suspended(&name).await.unwrap().is_empty());

    let first = InstanceId::parse(&ids[0]).unwrap();
    asg.detach(&name, &first).await.unwrap();
    let (desired, instances) = group_state(&config, &group).await;
    assert!(!instances.contains(&ids[0]), "{instances:?}");
    // The capacity is kept: the group replaces the detached instance.
    assert_eq!((desired, instances.len()), (3, 3));
    assert!(asg.membership(&first).await.unwrap().is_none());
}

fn restart_document() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/ssm/restart-service.yaml"
    ))
    .unwrap()
}

#[tokio::test]
async fn ssm_run_command_sends_the_stacks_restart_document_and_reads_its_status() {
    let config = h::sdk_config();
    let ssm = aws_sdk_ssm::Client::new(&config);
    let document = h::unique("Vigil-RestartService");
    ssm.create_document()
        .name(&document)
        .content(restart_document())
        .document_type(aws_sdk_ssm::types::DocumentType::Command)
        .document_format(aws_sdk_ssm::types::DocumentFormat::Yaml)
        .send()
        .await
        .expect("the stack's document is accepted");
    let (_, ids) = h::create_group(&config, 1).await;
    let instance = InstanceId::parse(&ids[0]).unwrap();
    let commands = Commands::new(&config);

    let id = commands
        .run(&instance, &document, &[("ServiceName", "api.service")])
        .await
        .unwrap();
    // What SSM recorded.
    let listed = ssm.list_commands().command_id(&id).send().await.unwrap();
    let c = listed
        .commands()
        .iter()
        .find(|c| c.command_id() == Some(id.as_str()))
        .expect("the command is recorded");
    assert_eq!(c.document_name(), Some(document.as_str()));
    // (moto lists every instance it knows under a command; AWS lists the targets.)
    assert!(c.instance_ids().contains(&ids[0]), "{:?}", c.instance_ids());
    assert_eq!(
        c.parameters().unwrap()["ServiceName"],
        vec!["api.service".to_owned()]
    );
    assert_eq!(
        commands.command_status(&id, &instance).await.unwrap(),
        "Success"
    );
}

#[tokio::test]
async fn the_remediate_handler_scales_out_and_detaches_through_the_real_adapters() {
    let stack = h::Stack::new().await;
    let adapters = h::Adapters::new(&stack);
    let (group, instances) = h::create_group(&stack.config, 3).await;
    let name = GroupName::parse(&group).unwrap();
    let decision = |action: Action| Decision {
        id: format!("d-{}", h::unique("x")),
        incident: Incident {
            id: "inc".into(),
            resource: Resource::new(ResourceKind::AutoScalingGroup, group.clone()),
            failure_mode: FailureMode::TrafficSurge,
            threat: None,
            severity: Severity::High,
            confidence: 0.95,
            opened_at: Utc::now(),
            evidence: Vec::new(),
        },
        tier: Tier::AutoHeal,
        action: Some(action),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: Utc::now(),
    };
    let settings = RemediateConfig {
        verify_attempts: 3,
        verify_interval: std::time::Duration::from_millis(100),
        ..RemediateConfig::default()
    };
    let ports = adapters.remediate_ports();

    let out = remediate::handle(
        &decision(Action::ScaleOut {
            group: name.clone(),
            by: 1,
        }),
        "attempt-1",
        &settings,
        ports,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    assert_eq!(group_state(&stack.config, &group).await.0, 4);

    let victim = InstanceId::parse(&instances[0]).unwrap();
    let out = remediate::handle(
        &decision(Action::DetachInstance {
            group: name.clone(),
            instance: victim.clone(),
        }),
        "attempt-1",
        &settings,
        ports,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, OutcomeStatus::Verified, "{}", out.detail);
    let (_, after) = group_state(&stack.config, &group).await;
    assert!(!after.contains(&instances[0]));
    // People were told about both.
    assert_eq!(h::sns_sent(&stack.topic).len(), 2);
}

#[tokio::test]
async fn ssm_automation_request_shapes() {
    let (config, rx) = h::capturing_config();
    let commands = Commands::new(&config);
    // The captured response carries no execution id: the adapter fails rather than invent one.
    let _err = commands
        .start_automation(
            "Vigil-ContainInstance",
            &[
                ("InstanceId", "i-0123456789abcdef0"),
                (
                    "AutomationAssumeRole",
                    "arn:aws:iam::123456789012:role/vigil",
                ),
            ],
        )
        .await
        .unwrap_err();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "AmazonSSM.StartAutomationExecution");
    assert_eq!(body["DocumentName"], "Vigil-ContainInstance");
    assert_eq!(
        body["Parameters"]["InstanceId"],
        serde_json::json!(["i-0123456789abcdef0"])
    );
    assert_eq!(
        body["Parameters"]["AutomationAssumeRole"],
        serde_json::json!(["arn:aws:iam::123456789012:role/vigil"])
    );

    let (config, rx) = h::capturing_config();
    let _ = Commands::new(&config).automation_status("exec-1").await;
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "AmazonSSM.GetAutomationExecution");
    assert_eq!(body["AutomationExecutionId"], "exec-1");
}

#[tokio::test]
async fn codepipeline_freeze_request_shapes() {
    let (config, rx) = h::capturing_config();
    let pipeline = PipelineName::parse("web-release").unwrap();
    let stage = PipelineName::parse("Production").unwrap();
    CodePipeline::new(&config)
        .disable_transition(&pipeline, &stage, &"why ".repeat(100))
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.DisableStageTransition");
    assert_eq!(body["pipelineName"], "web-release");
    assert_eq!(body["stageName"], "Production");
    assert_eq!(body["transitionType"], "Inbound");
    assert_eq!(
        body["reason"].as_str().unwrap().chars().count(),
        300,
        "CodePipeline's limit"
    );

    let (config, rx) = h::capturing_config();
    let _ = CodePipeline::new(&config)
        .transition_enabled(&pipeline, &stage)
        .await;
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.GetPipelineState");
    assert_eq!(body["name"], "web-release");

    // Stopping a deployment, and lifting a freeze.
    use vigil_handlers::ports::StopAndResume;
    let (config, rx) = h::capturing_config();
    let execution = PipelineName::parse("3137f7cb-7cf7-4c5e-9b2a-d7eu3EXAMPLE").unwrap();
    CodePipeline::new(&config)
        .stop_execution(&pipeline, &execution, &"r".repeat(500))
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.StopPipelineExecution");
    assert_eq!(body["pipelineExecutionId"], execution.as_str());
    assert_eq!(body["abandon"], false);
    assert_eq!(body["reason"].as_str().unwrap().len(), 200);
    let (config, rx) = h::capturing_config();
    CodePipeline::new(&config)
        .enable_transition(&pipeline, &stage)
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.EnableStageTransition");
    assert_eq!(
        (body["stageName"].as_str(), body["transitionType"].as_str()),
        (Some("Production"), Some("Inbound"))
    );

    // A rollback first looks for the last good execution; with none, it refuses to guess.
    let (config, rx) = h::capturing_config();
    use vigil_handlers::ports::RollbackStage;
    let err = CodePipeline::new(&config)
        .rollback(&pipeline, &stage)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ListPipelineExecutions"), "{err}");
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.ListPipelineExecutions");
    assert_eq!(body["pipelineName"], "web-release");
}

#[tokio::test]
async fn an_approval_link_from_the_email_scales_out_once_through_the_real_adapters() {
    use vigil_handlers::approve;
    use vigil_handlers::ports::ReadSigningKey;
    let stack = h::Stack::new().await;
    let adapters = h::Adapters::new(&stack);
    let (group, _) = h::create_group(&stack.config, 2).await;
    // The signing key, as operators store it: a SecureString.
    let key_name = format!("/{}/approval-key", h::unique("vigil"));
    aws_sdk_ssm::Client::new(&stack.config)
        .put_parameter()
        .name(&key_name)
        .value("k".repeat(48))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let key = vigil_aws::ssm::SigningKeyParameter::new(&stack.config, &key_name)
        .signing_key()
        .await
        .unwrap();
    assert_eq!(key.len(), 48);
    // A plain String parameter is refused as a key.
    h::put_parameter(&stack.config, &format!("{key_name}-plain"), &"k".repeat(48)).await;
    assert!(
        vigil_aws::ssm::SigningKeyParameter::new(&stack.config, format!("{key_name}-plain"))
            .signing_key()
            .await
            .is_err()
    );
    let settings = RemediateConfig {
        verify_attempts: 3,
        verify_interval: std::time::Duration::from_millis(100),
        approval: Some(remediate::ApprovalLinks {
            base_url: "https://approve.example".into(),
            key: key.clone(),
        }),
        ..RemediateConfig::default()
    };
    let ports = adapters.remediate_ports();
    let decision = Decision {
        id: h::unique("d"),
        incident: Incident {
            id: "inc".into(),
            resource: Resource::new(ResourceKind::AutoScalingGroup, group.clone()),
            failure_mode: FailureMode::TrafficSurge,
            threat: None,
            severity: Severity::High,
            confidence: 0.75,
            opened_at: Utc::now(),
            evidence: Vec::new(),
        },
        tier: Tier::Approval,
        action: Some(Action::ScaleOut {
            group: GroupName::parse(&group).unwrap(),
            by: 1,
        }),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: Utc::now(),
    };
    let out = remediate::handle(&decision, "attempt-1", &settings, ports, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(out.status, OutcomeStatus::NotActed);
    assert_eq!(group_state(&stack.config, &group).await.0, 2);

    // The email, as SNS holds it, carries the links.
    let sent = h::sns_sent(&stack.topic);
    let body = &sent.last().unwrap().body;
    let approve_link = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Approve: "))
        .unwrap()
        .to_owned();
    // A chat channel is told too, in the incident's thread, never with the links (whoever
    // holds one may use it): it says where to approve.
    let chat = sent
        .last()
        .unwrap()
        .chat
        .clone()
        .expect("a chat notification");
    assert!(!chat.to_string().contains(&approve_link));
    assert!(!chat.to_string().contains("token="), "{chat}");
    assert_eq!(chat["metadata"]["threadId"], decision.incident.id.as_str());
    assert!(
        chat["content"]["nextSteps"][0]
            .as_str()
            .unwrap()
            .contains("waits for a person"),
        "{chat}"
    );
    // The link followed (as a mail scanner would, too) changes nothing; the page's button
    // posts the verdict back.
    let store = vigil_handlers::decide::PolicyStore::new(
        vigil_core::policy::Policy::bundled().unwrap(),
        Mode::Enforce,
        std::time::Duration::ZERO,
    );
    let setup = approve::Setup {
        key: Some(&key),
        remediate: &settings,
        store: &store,
        policy: &adapters.policy,
    };
    let follow = vigil_lab::requests::follow("GET", &approve_link);
    let shown = approve::respond(&follow, "get-1", &setup, ports, Utc::now()).await;
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(group_state(&stack.config, &group).await.0, 2);
    let token = shown.form.unwrap().token;
    let post = vigil_lab::requests::confirm(&token, "198.51.100.7", true);
    let page = approve::respond(&post, "click-1", &setup, ports, Utc::now()).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(group_state(&stack.config, &group).await.0, 3);
    // Posted again: refused, the group stays.
    let again = approve::respond(&post, "click-2", &setup, ports, Utc::now()).await;
    assert_eq!(again.status, 409);
    assert_eq!(group_state(&stack.config, &group).await.0, 3);
    // The verdict is in the trail.
    let objects = adapters.remediate.audit.read_all().await.unwrap();
    let kinds: Vec<String> = objects
        .iter()
        .map(|(_, b)| {
            serde_json::from_slice::<serde_json::Value>(b).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(kinds.contains(&"approval".to_owned()), "{kinds:?}");
    vigil_core::audit::verify_stored("audit/", &objects).unwrap();
}

#[tokio::test]
async fn named_approvers_two_of_them_scale_out_once_and_one_alone_does_nothing() {
    use vigil_core::policy::approvals::Approvals;
    use vigil_handlers::approve;
    use vigil_lab::requests::named;
    let stack = h::Stack::new().await;
    let adapters = h::Adapters::new(&stack);
    let (group, _) = h::create_group(&stack.config, 2).await;
    // No signing key: this stack takes approvals from named approvers only.
    let settings = RemediateConfig {
        verify_attempts: 3,
        verify_interval: std::time::Duration::from_millis(100),
        ..RemediateConfig::default()
    };
    let ports = adapters.remediate_ports();
    let decision = Decision {
        id: h::unique("d"),
        incident: Incident {
            id: h::unique("inc"),
            resource: Resource::new(ResourceKind::AutoScalingGroup, group.clone()),
            failure_mode: FailureMode::TrafficSurge,
            threat: None,
            severity: Severity::High,
            confidence: 0.75,
            opened_at: Utc::now(),
            evidence: Vec::new(),
        },
        tier: Tier::Approval,
        action: Some(Action::ScaleOut {
            group: GroupName::parse(&group).unwrap(),
            by: 1,
        }),
        mode: Mode::Enforce,
        reasons: Vec::new(),
        decided_at: Utc::now(),
    };
    let out = remediate::handle(&decision, "attempt-1", &settings, ports, Utc::now())
        .await
        .unwrap();
    assert_eq!(out.status, OutcomeStatus::NotActed);
    // The email says how a named approver approves.
    let body = h::sns_sent(&stack.topic).last().unwrap().body.clone();
    assert!(
        body.contains("named approver") && body.contains(&decision.id),
        "{body}"
    );

    // The policy names a role and a user, wants both, and takes no approval from links.
    let mut policy = vigil_core::policy::Policy::bundled().unwrap();
    policy.approvals = Approvals {
        approvers: vec![
            "arn:aws:iam::123456789012:role/Approver".into(),
            "arn:aws:iam::123456789012:user/carol".into(),
        ],
        required: 2,
        links: false,
    };
    let store =
        vigil_handlers::decide::PolicyStore::new(policy, Mode::Enforce, std::time::Duration::ZERO);
    let setup = approve::Setup {
        key: None,
        remediate: &settings,
        store: &store,
        policy: &adapters.policy,
    };
    let ask = |caller: &str, approve_it: bool, request: &str| {
        let http = named(caller, &decision.id, approve_it);
        let setup = &setup;
        let request = request.to_owned();
        async move { approve::respond(&http, &request, setup, ports, Utc::now()).await }
    };
    // A principal the policy does not name: refused, recorded, nothing done.
    let dan = ask(
        "arn:aws:sts::123456789012:assumed-role/Developer/dan",
        true,
        "r-0",
    )
    .await;
    assert_eq!(dan.status, 403, "{dan:?}");
    // The first approver: counted, nothing done.
    let alice = ask(
        "arn:aws:sts::123456789012:assumed-role/Approver/alice",
        true,
        "r-1",
    )
    .await;
    assert_eq!(alice.status, 202, "{alice:?}");
    assert!(alice.message.contains("1 of 2"), "{}", alice.message);
    assert_eq!(group_state(&stack.config, &group).await.0, 2);
    // Another session of the same role is the same approver: not counted twice.
    let again = ask(
        "arn:aws:sts::123456789012:assumed-role/Approver/alice-laptop",
        true,
        "r-2",
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(group_state(&stack.config, &group).await.0, 2);
    // The second, different approver: the action is carried out, once.
    let carol = ask("arn:aws:iam::123456789012:user/carol", true, "r-3").await;
    assert_eq!(carol.status, 200, "{carol:?}");
    assert_eq!(group_state(&stack.config, &group).await.0, 3);

    // Every verdict is in the trail with its principal, the refused one too.
    let objects = adapters.remediate.audit.read_all().await.unwrap();
    let records: Vec<serde_json::Value> = objects
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .filter(|r: &serde_json::Value| r["subject"] == decision.id.as_str())
        .collect();
    let votes: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["kind"] == "approval-vote")
        .collect();
    assert_eq!(votes.len(), 2, "{records:?}");
    let principals: Vec<&str> = votes
        .iter()
        .map(|r| r["payload"]["principal"].as_str().unwrap())
        .collect();
    assert_eq!(
        principals,
        [
            "arn:aws:iam::123456789012:role/Approver",
            "arn:aws:iam::123456789012:user/carol"
        ]
    );
    assert!(
        records.iter().any(|r| r["kind"] == "approval-refused"
            && r["payload"]["by"]["caller"]
                .as_str()
                .is_some_and(|c| c.contains("Developer/dan"))),
        "{records:?}"
    );
    vigil_core::audit::verify_stored("audit/", &objects).unwrap();
}
