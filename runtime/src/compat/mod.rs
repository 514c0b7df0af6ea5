//! compat: a component's imports + a catalog → a [`CompatReport`]. A pure leaf: no I/O, no
//! engine, and nothing else of the runtime.
//!
//! A component is read once ([`inspect`]: its imports with the functions it uses), then judged
//! by the versioning rules ([`rules::judge`]) with the linker's own compatibility classes
//! ([`class`]) against a [`Catalog`] (every function of every module a host provides, WASI
//! included), into a [`CompatReport`]. [`check`] does both (the CLI's `check`); admission and
//! the engine do the same through `Sandbox::judge`, and the engine confirms an accepted
//! verdict with the real linker before anything runs. [`Requirements`] is what a job needs
//! from a host, stored with it so any node can judge it without the component.

pub mod catalog;
pub mod class;
pub mod inspect;
pub mod report;
pub mod requirements;
pub mod rules;
pub mod signature;

pub use catalog::{Catalog, CatalogError, Interface, Module};
pub use inspect::{Import, InspectError, Inspection, inspect};
pub use report::{Ahead, CompatReport, ImportVerdict, Retyped, Rule, Status, Verdict};
pub use requirements::{Requirements, judge_spec};

/// Inspect `bytes` and judge its imports against `catalog`.
pub fn check(bytes: &[u8], catalog: &Catalog) -> Result<(Inspection, CompatReport), InspectError> {
    let inspection = inspect(bytes)?;
    let report = rules::judge(&inspection.imports, &inspection.optional, catalog);
    Ok((inspection, report))
}

#[cfg(test)]
mod tests;
