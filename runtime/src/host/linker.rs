//! Wiring the catalog into a wasmtime linker: each provided module version is linked by its
//! own file's `add_to_linker`; optional imports the catalog lacks get trapping stubs.

use super::error::MissingImport;
use super::state::HostState;
use super::{context, kv, versioning};
use crate::compat::{Catalog, CompatReport, Status};
use wasmtime::component::Linker;

type AddFn<T> = fn(&mut Linker<T>, fn(&mut T) -> &mut HostState) -> wasmtime::Result<()>;

/// Every driftless module version this build implements, with the function that links it.
/// A test checks it agrees with the WIT-derived [`Catalog::full`].
pub fn implementations<T: Send + 'static>() -> Vec<(&'static str, AddFn<T>)> {
    vec![
        ("driftless:job@1.0.0", context::add_to_linker::<T>),
        ("driftless:versioning@1.0.0", versioning::add_to_linker::<T>),
        ("driftless:kv@1.0.0", kv::add_v1_0::<T>),
        ("driftless:kv@1.1.0", kv::add_v1_1::<T>),
        ("driftless:kv@2.0.0", kv::add_v2_0::<T>),
    ]
}

/// Link every driftless module `catalog` provides (WASI is the engine's business).
pub fn add_catalog<T: Send + 'static>(
    linker: &mut Linker<T>,
    catalog: &Catalog,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    let table = implementations::<T>();
    for id in catalog.driftless_ids() {
        let (_, add) = table
            .iter()
            .find(|(known, _)| *known == id)
            .ok_or_else(|| {
                wasmtime::format_err!("the catalog lists {id}, which this build does not implement")
            })?;
        add(linker, get)?;
    }
    Ok(())
}

/// Link stubs for the functions of optional imports this host lacks (from a degraded
/// report), into the instance the linker's semver lookup resolves the import to, so the real
/// functions next to them keep working. Each stub traps with [`MissingImport`].
pub fn add_optional_stubs<T: Send + 'static>(
    linker: &mut Linker<T>,
    report: &CompatReport,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for import in report
        .imports
        .iter()
        .filter(|i| i.status == Status::Degraded)
    {
        let host = if import.provided.is_empty() {
            format!("it provides no version of {}", import.package)
        } else {
            format!(
                "it provides {} {}",
                import.package,
                import.provided.join(", ")
            )
        };
        // `driftless:kv/store@1.1.0` → interface part `driftless:kv/store`.
        let unversioned = import.import.split('@').next().unwrap_or(&import.import);
        let instance_name = match &import.resolved {
            Some(version) => format!("{unversioned}@{version}"),
            None => import.import.clone(),
        };
        let mut instance = linker.instance(&instance_name)?;
        for function in &import.missing_functions {
            let missing = MissingImport {
                function: format!("{}#{function}", import.import),
                host: host.clone(),
            };
            instance.func_new(function, move |_store, _ty, _params, _results| {
                Err(wasmtime::Error::new(missing.clone()))
            })?;
        }
    }
    Ok(())
}
