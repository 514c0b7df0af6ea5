//! Reading a component: its versioned imports (with the functions it uses from each), its
//! optional-import declaration, and whether it exports a driftless `run`.

use super::signature;
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmtime::component::wit_parser::{Resolve, WorldItem, WorldKey, decoding};
use wasmtime::wasmparser::{Parser, Payload};

/// The custom section in which a job lists its optional imports (one per line); written by
/// the SDK's `optional_imports!`.
pub const OPTIONAL_IMPORTS_SECTION: &str = "driftless:optional-imports";

/// The signature a driftless job's `run` export must have (world `driftless:job/task@1.0.0`).
pub const RUN_SIGNATURE: &str = "func(input: list<u8>) -> result<list<u8>, record { code: string, message: string, retryable: bool }>";

/// One interface a component imports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Import {
    /// The full name as imported: `driftless:kv/store@1.1.0`.
    pub name: String,
    /// Package without version: `driftless:kv` (empty for an unversioned root import).
    pub package: String,
    /// Interface name: `store`.
    pub interface: String,
    /// The version the job was built against.
    pub version: Option<Version>,
    /// The functions the job uses, name → canonical signature.
    pub functions: BTreeMap<String, String>,
}

/// What the host needs to know about a component before admitting it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inspection {
    /// Every interface imported.
    pub imports: Vec<Import>,
    /// The optional-import patterns the job declared.
    pub optional: Vec<String>,
}

/// Why bytes are not an acceptable driftless job. Every message says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InspectError {
    /// Empty or not WebAssembly at all.
    #[error(
        "the upload is not WebAssembly: it does not start with the `\\0asm` magic bytes. Send the component file itself (for a Rust job: target/wasm32-wasip2/release/<name>.wasm), not a path, archive or text"
    )]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component. Build the job with `cargo build --release --target wasm32-wasip2`, which produces a component, or wrap a core module with `wasm-tools component new module.wasm -o job.wasm`"
    )]
    CoreModule,
    /// Truncated or corrupt.
    #[error(
        "the component is truncated or corrupt ({detail}). Upload the whole file again; `wasm-tools validate job.wasm` shows where it breaks"
    )]
    Malformed {
        /// What the decoder said.
        detail: String,
    },
    /// No `run` export.
    #[error("{0}")]
    MissingRun(String),
    /// A `run` export of the wrong type.
    #[error(
        "the component exports `run` as `{found}`, but a driftless task's `run` is `{expected}`. Build the job against driftless:job/task@1.0.0 (the driftless-sdk crate's `export_task!` does this)"
    )]
    WrongRun {
        /// The signature found.
        found: String,
        /// The signature required.
        expected: String,
    },
}

/// Inspect `bytes` as a driftless job component.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(InspectError::NotWasm);
    }
    if Parser::is_core_wasm(bytes) {
        return Err(InspectError::CoreModule);
    }
    let (resolve, world) = match decoding::decode(bytes) {
        Ok(decoding::DecodedWasm::Component(resolve, world)) => (resolve, world),
        Ok(decoding::DecodedWasm::WitPackage(..)) => {
            return Err(InspectError::Malformed {
                detail: "it is a binary WIT package (interface definitions), not a job component"
                    .into(),
            });
        }
        Err(e) => {
            return Err(InspectError::Malformed {
                detail: format!("{e:#}"),
            });
        }
    };
    let world = &resolve.worlds[world];

    let mut run = None;
    let mut export_names = Vec::new();
    for (key, item) in &world.exports {
        let name = resolve.name_world_key(key);
        if let (WorldKey::Name(n), WorldItem::Function(f)) = (key, item)
            && n == "run"
        {
            run = Some(signature::function(&resolve, f));
        }
        export_names.push(name);
    }
    match run {
        None => return Err(InspectError::MissingRun(missing_run_message(&export_names))),
        Some(found) if found != RUN_SIGNATURE => {
            return Err(InspectError::WrongRun {
                found,
                expected: RUN_SIGNATURE.into(),
            });
        }
        Some(_) => {}
    }

    let mut imports = Vec::new();
    for (key, item) in &world.imports {
        match item {
            WorldItem::Interface { id, .. } => imports.push(interface_import(&resolve, key, *id)),
            WorldItem::Function(f) => imports.push(Import {
                name: resolve.name_world_key(key),
                package: String::new(),
                interface: String::new(),
                version: None,
                functions: BTreeMap::from([(f.name.clone(), signature::function(&resolve, f))]),
            }),
            WorldItem::Type { .. } => {}
        }
    }
    Ok(Inspection {
        imports,
        optional: optional_imports(bytes),
    })
}

fn interface_import(
    resolve: &Resolve,
    key: &WorldKey,
    id: wasmtime::component::wit_parser::InterfaceId,
) -> Import {
    let iface = &resolve.interfaces[id];
    let name = resolve.name_world_key(key);
    let (package, version) = match iface.package {
        Some(p) => {
            let p = &resolve.packages[p].name;
            (format!("{}:{}", p.namespace, p.name), p.version.clone())
        }
        None => (String::new(), None),
    };
    let functions = iface
        .functions
        .iter()
        .map(|(n, f)| (n.clone(), signature::function(resolve, f)))
        .collect();
    Import {
        name,
        package,
        interface: iface.name.clone().unwrap_or_default(),
        version,
        functions,
    }
}

fn missing_run_message(exports: &[String]) -> String {
    let listed = if exports.is_empty() {
        "nothing".to_string()
    } else {
        exports.join(", ")
    };
    if exports.iter().any(|e| e.starts_with("wasi:cli/run")) {
        format!(
            "the component is a WASI command (it exports {listed}), not a driftless task: a task exports `run`. Make the job a library crate (crate-type = [\"cdylib\"]) and export its function with `driftless_sdk::export_task!`"
        )
    } else {
        format!(
            "the component does not export `run` (it exports {listed}). A driftless task exports `run: func(input: list<u8>) -> result<list<u8>, job-error>`; with the driftless-sdk crate, add `driftless_sdk::export_task!(your_fn);`"
        )
    }
}

/// The optional-import patterns a component declares, from its custom section (in the
/// component itself or any module nested in it).
fn optional_imports(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::CustomSection(section)) = payload else {
            continue;
        };
        if section.name() != OPTIONAL_IMPORTS_SECTION {
            continue;
        }
        for line in String::from_utf8_lossy(section.data()).lines() {
            let line = line.trim();
            if !line.is_empty() && !out.iter().any(|o| o == line) {
                out.push(line.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_signature_matches_the_job_world() {
        let mut resolve = Resolve::new();
        let pkg = resolve
            .push_str("job.wit", include_str!("../../../wit/job@1.0.0/job.wit"))
            .unwrap();
        let world = resolve.select_world(&[pkg], Some("task")).unwrap();
        let run = resolve.worlds[world]
            .exports
            .values()
            .find_map(|item| match item {
                WorldItem::Function(f) if f.name == "run" => Some(signature::function(&resolve, f)),
                _ => None,
            })
            .unwrap();
        assert_eq!(run, RUN_SIGNATURE);
    }

    #[test]
    fn refuses_what_is_not_a_component() {
        assert_eq!(inspect(b"").unwrap_err(), InspectError::NotWasm);
        assert_eq!(
            inspect(b"{\"hello\": 1}").unwrap_err(),
            InspectError::NotWasm
        );
        assert_eq!(
            inspect(b"\0asm\x01\0\0\0").unwrap_err(),
            InspectError::CoreModule
        );
        assert!(
            InspectError::CoreModule
                .to_string()
                .contains("--target wasm32-wasip2")
        );
        let err = inspect(b"\0asm\x0d\0\x01\0\x07\x05").unwrap_err();
        assert!(matches!(err, InspectError::Malformed { .. }), "{err:?}");
    }
}
