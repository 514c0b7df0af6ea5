//! What a job needs from a host, as a compatibility class: the inspection (imports with the
//! functions used, and every optional-import pattern) as canonical JSON, named by its hash.
//! Jobs with equal needs share one class; a node judges each class against its catalog once.

use super::catalog::Catalog;
use super::inspect::Inspection;
use super::report::CompatReport;
use super::rules;
use std::sync::Arc;

/// What a job needs from a host, as a precomputed compatibility class: jobs with the same
/// imports and optional-import patterns share one class, and a node judges each class against
/// its catalog once, then claims only jobs of the classes it satisfies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// The class id: blake3 of `spec`, hex.
    pub class: String,
    /// The requirements as JSON (the imports with their functions, and the optional patterns).
    pub spec: Arc<str>,
}

impl Requirements {
    /// The requirements of an inspected component.
    pub fn of(inspection: &Inspection) -> Requirements {
        Requirements::from_spec(
            serde_json::to_string(inspection).expect("an inspection serializes"),
        )
    }

    /// The class of requirements written as `spec` (the JSON of an [`Inspection`]).
    pub fn from_spec(spec: String) -> Requirements {
        Requirements {
            class: blake3::hash(spec.as_bytes()).to_hex().to_string(),
            spec: spec.into(),
        }
    }
}

/// Judge stored requirements (a [`Requirements::spec`]) against `catalog`: the same verdict the
/// component itself would get.
pub fn judge_spec(spec: &str, catalog: &Catalog) -> Result<CompatReport, serde_json::Error> {
    let inspection: Inspection = serde_json::from_str(spec)?;
    Ok(rules::judge(
        &inspection.imports,
        &inspection.optional,
        catalog,
    ))
}
