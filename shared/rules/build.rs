//! Bundles every rule file under `infra/rules/` (the project's pack, and any rules an operator
//! adds there before building) into the crate: `bundled.rs` lists them with `include_str!`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // A file added to a folder changes the folder, not its parent.
            println!("cargo:rerun-if-changed={}", path.display());
            rule_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../../infra/rules");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    rule_files(&root, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Every rule file bundled at build time: (path under infra/rules, text).\npub const BUNDLED: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("bundled.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo:warning=cannot write {}: {e}", out.display());
        std::process::exit(1);
    }
}
