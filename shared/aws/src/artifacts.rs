//! S3: a pipeline's input artifact, read with the short-lived credentials CodePipeline hands
//! the job (not the function's role), size-checked before the body is read.

use aws_sdk_s3::Client;

use super::port_error;
use vigil_handlers::ports::{
    ArtifactCredentials, ArtifactLocation, FetchArtifact, Fetched, PortError,
};

#[derive(Debug, Clone)]
pub struct Artifacts {
    /// Region, endpoint and HTTP client; the credentials are replaced per job.
    base: aws_config::SdkConfig,
}

impl Artifacts {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Artifacts {
            base: config.clone(),
        }
    }

    fn client(&self, creds: &ArtifactCredentials) -> Client {
        let credentials = aws_credential_types::Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "codepipeline-job",
        );
        let conf = aws_sdk_s3::config::Builder::from(&self.base)
            .credentials_provider(credentials)
            .build();
        Client::from_conf(conf)
    }
}

impl FetchArtifact for Artifacts {
    async fn fetch(
        &self,
        location: &ArtifactLocation,
        credentials: &ArtifactCredentials,
        max_bytes: u64,
    ) -> Result<Fetched, PortError> {
        const OP: &str = "s3:GetObject";
        let out = self
            .client(credentials)
            .get_object()
            .bucket(&location.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        if let Some(len) = out.content_length().filter(|l| *l as u64 > max_bytes) {
            return Ok(Fetched::TooLarge(len as u64));
        }
        // The length header is not trusted alone: the body is read up to the limit.
        let mut body = out.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| PortError::new(OP, vigil_handlers::ports::PortErrorKind::Transient, e))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > max_bytes {
                return Ok(Fetched::TooLarge(bytes.len() as u64));
            }
        }
        Ok(Fetched::Bytes(bytes))
    }
}
