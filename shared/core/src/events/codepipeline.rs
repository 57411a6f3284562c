//! CodePipeline execution, stage and action state changes: deployments.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct PipelineDetail {
    pipeline: String,
    #[serde(rename = "execution-id")]
    execution_id: String,
    state: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// CodePipeline names: letters, digits and `.@-_`, at most 100 characters.
pub(super) fn pipeline_name(
    ctx: &Ctx<'_>,
    what: &'static str,
    s: &str,
) -> Result<String, EventError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ctx.unusable(format!(
            "{what} {:?} is not a CodePipeline name",
            display_text(s, 64)
        )))
    }
}

pub(super) fn deployment(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: PipelineDetail = ctx.detail()?;
    let pipeline = pipeline_name(&ctx, "pipeline", &d.pipeline)?;
    let execution_id = api_name(&ctx, "execution-id", &d.execution_id)?;
    let state = word(&ctx, "state", &d.state)?;
    let stage = d
        .stage
        .as_deref()
        .map(|s| pipeline_name(&ctx, "stage", s))
        .transpose()?;
    let action = d
        .action
        .as_deref()
        .map(|s| pipeline_name(&ctx, "action", s))
        .transpose()?;
    let at = ctx.time(None)?;
    Ok(vec![ctx.signal(
        Source::CodePipeline,
        Resource::new(ResourceKind::Pipeline, pipeline.clone()).with_arn(ctx.first_resource_arn()),
        at,
        SignalKind::Deployment {
            pipeline,
            execution_id,
            stage,
            action,
            state,
        },
    )])
}
