//! Scan reports inside a pipeline artifact: a zip (CodePipeline's artifact format) unpacked in
//! memory, or a bare SARIF file. Pure, and bounded: hostile archives are refused before they
//! cost more than the limits.

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::names::display_text;

/// How much of an artifact the gate is willing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactLimits {
    /// The artifact object itself (compressed).
    pub max_artifact_bytes: u64,
    /// Entries in the archive's directory.
    pub max_entries: usize,
    /// One report, uncompressed.
    pub max_report_bytes: u64,
    /// All reports together, uncompressed.
    pub max_total_bytes: u64,
    /// Uncompressed size over compressed size, per report.
    pub max_ratio: u64,
}

impl Default for ArtifactLimits {
    fn default() -> Self {
        ArtifactLimits {
            max_artifact_bytes: 64 * 1024 * 1024,
            max_entries: 10_000,
            max_report_bytes: 16 * 1024 * 1024,
            max_total_bytes: 32 * 1024 * 1024,
            max_ratio: 200,
        }
    }
}

/// Why an artifact's reports could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("the artifact is {size} bytes, over the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the artifact is neither a zip archive nor a SARIF file")]
    NotAnArchive(#[source] zip::result::ZipError),
    #[error("the archive has {entries} entries, over the limit of {limit}")]
    TooManyEntries { entries: usize, limit: usize },
    #[error("the archive entry {name:?} escapes the archive (absolute path or ..): refused")]
    PathTraversal { name: String },
    #[error(
        "the archive entry {name:?} inflates beyond the limits (a zip bomb?): {detail}; refused"
    )]
    Bomb { name: String, detail: String },
    #[error("the archive entry {name:?} could not be read")]
    Entry {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// A scan report found in an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Its path in the archive, or `artifact` for a bare file.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Whether an archive path names a SARIF report.
fn is_report(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".sarif") || lower.ends_with(".sarif.json")
}

/// Whether an archive path would leave the directory it is unpacked into.
fn escapes(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.contains('\0')
        || name.as_bytes().get(1) == Some(&b':')
        || name.split(['/', '\\']).any(|part| part == "..")
}

/// The SARIF reports in an artifact. A bare JSON file is taken as one report; a zip's entries
/// are checked first (count, names, declared sizes and ratios), then only the reports are
/// inflated, each through a reader that stops at the limit whatever the headers claim.
pub fn reports(bytes: &[u8], limits: &ArtifactLimits) -> Result<Vec<Report>, ArtifactError> {
    let size = bytes.len() as u64;
    if size > limits.max_artifact_bytes {
        return Err(ArtifactError::TooLarge {
            size,
            limit: limits.max_artifact_bytes,
        });
    }
    if bytes.trim_ascii_start().first() == Some(&b'{') {
        if size > limits.max_report_bytes {
            return Err(ArtifactError::TooLarge {
                size,
                limit: limits.max_report_bytes,
            });
        }
        return Ok(vec![Report {
            path: "artifact".into(),
            bytes: bytes.to_vec(),
        }]);
    }
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(ArtifactError::NotAnArchive)?;
    if archive.len() > limits.max_entries {
        return Err(ArtifactError::TooManyEntries {
            entries: archive.len(),
            limit: limits.max_entries,
        });
    }
    let mut wanted = Vec::new();
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(ArtifactError::NotAnArchive)?;
        let name =
            entry
                .name()
                .map(|n| n.into_owned())
                .map_err(|_| ArtifactError::PathTraversal {
                    name: "(a name that is not UTF-8)".into(),
                })?;
        if escapes(&name) || entry.enclosed_name().is_none() {
            return Err(ArtifactError::PathTraversal {
                name: display_text(&name, 200),
            });
        }
        if entry.is_file() && is_report(&name) {
            let (declared, packed) = (entry.size(), entry.compressed_size().max(1));
            if declared > limits.max_report_bytes || declared / packed > limits.max_ratio {
                return Err(ArtifactError::Bomb {
                    name: display_text(&name, 200),
                    detail: format!("declares {declared} bytes from {packed}"),
                });
            }
            wanted.push(i);
        }
    }
    let mut out = Vec::with_capacity(wanted.len());
    let mut total = 0u64;
    for i in wanted {
        let entry = archive.by_index(i).map_err(ArtifactError::NotAnArchive)?;
        let name = display_text(&entry.name().unwrap_or_default(), 200);
        let packed = entry.compressed_size().max(1);
        let cap = limits.max_report_bytes.min(limits.max_total_bytes - total);
        let mut buf = Vec::new();
        entry
            .take(cap + 1)
            .read_to_end(&mut buf)
            .map_err(|source| ArtifactError::Entry {
                name: name.clone(),
                source,
            })?;
        let read = buf.len() as u64;
        if read > cap || read / packed > limits.max_ratio {
            return Err(ArtifactError::Bomb {
                name,
                detail: format!("inflated past {} bytes", read.min(cap)),
            });
        }
        total += read;
        out.push(Report {
            path: name,
            bytes: buf,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_escape_are_recognised() {
        for bad in [
            "../x.sarif",
            "a/../../x.sarif",
            "/etc/passwd",
            "C:\\x",
            "a\\..\\b",
        ] {
            assert!(escapes(bad), "{bad}");
        }
        for ok in ["reports/checkov.sarif", "a..b/c.sarif", "x"] {
            assert!(!escapes(ok), "{ok}");
        }
    }

    #[test]
    fn a_bare_sarif_file_is_one_report_and_junk_is_refused() {
        let r = reports(br#"{"version":"2.1.0"}"#, &ArtifactLimits::default()).unwrap();
        assert_eq!(r.len(), 1);
        assert!(matches!(
            reports(b"not a zip", &ArtifactLimits::default()),
            Err(ArtifactError::NotAnArchive(_))
        ));
    }
}
