//! compat: a component's imports + a catalog → a [`CompatReport`]. Pure; no I/O, no engine.
//!
//! [`check`] is what admission, the CLI and the engine call. It reads the component
//! ([`inspect`]), then applies the versioning rules ([`rules::judge`]) with the linker's own
//! compatibility classes ([`class`]). The engine confirms an accepted verdict with the real
//! linker before anything runs.

pub mod class;
pub mod inspect;
pub mod report;
pub mod rules;
pub mod signature;

pub use inspect::{Import, InspectError, Inspection, inspect};
pub use report::{Ahead, CompatReport, ImportVerdict, Rule, Status, Verdict};

use crate::host::catalog::Catalog;

/// What a job needs from a host, as canonical JSON: the inspection (imports with the functions
/// used, and every optional-import pattern). Equal requirements give equal text, so its hash
/// names the job's compatibility class.
pub fn requirements_spec(inspection: &Inspection) -> String {
    serde_json::to_string(inspection).expect("an inspection serializes")
}

/// Judge stored requirements ([`requirements_spec`]) against `catalog`: the same verdict the
/// component itself would get.
pub fn judge_spec(spec: &str, catalog: &Catalog) -> Result<CompatReport, serde_json::Error> {
    let inspection: Inspection = serde_json::from_str(spec)?;
    Ok(rules::judge(
        &inspection.imports,
        &inspection.optional,
        catalog,
    ))
}

/// Inspect `bytes` and judge its imports against `catalog`.
pub fn check(bytes: &[u8], catalog: &Catalog) -> Result<(Inspection, CompatReport), InspectError> {
    let inspection = inspect(bytes)?;
    let report = rules::judge(&inspection.imports, &inspection.optional, catalog);
    Ok((inspection, report))
}

#[cfg(test)]
mod tests;
