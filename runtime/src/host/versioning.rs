//! `driftless:versioning@1.0.0`: the WORKFLOW_VERSIONING capability.

use super::bindings::driftless::versioning::versioning::{self, DeclaredImport, Module};
use super::state::HostState;
use semver::{Version, VersionReq};
use wasmtime::component::{HasSelf, Linker};

/// The environment variable every job sees, and its value.
pub const ENV: (&str, &str) = ("WORKFLOW_VERSIONING", "1");

/// The capability level this host implements.
pub const LEVEL: u32 = 1;

fn parse_req(requirement: &str) -> Result<VersionReq, String> {
    VersionReq::parse(requirement)
        .map_err(|e| format!("`{requirement}` is not a semver requirement ({e}); write it as Cargo does, e.g. ^1.1 or >=1.0, <3"))
}

impl versioning::Host for HostState {
    async fn level(&mut self) -> wasmtime::Result<u32> {
        Ok(LEVEL)
    }

    async fn catalog(&mut self) -> wasmtime::Result<Vec<Module>> {
        Ok(self
            .catalog
            .modules()
            .iter()
            .map(|m| Module {
                name: m.name.clone(),
                version: m.version.to_string(),
            })
            .collect())
    }

    async fn provided(&mut self, name: String) -> wasmtime::Result<Vec<String>> {
        Ok(self
            .catalog
            .versions_of(&name)
            .rev()
            .map(|m| m.version.to_string())
            .collect())
    }

    async fn declared(&mut self) -> wasmtime::Result<Vec<DeclaredImport>> {
        Ok(self
            .declared
            .iter()
            .map(|d| DeclaredImport {
                name: d.name.clone(),
                version: d.version.clone(),
                optional: d.optional,
                missing_functions: d.missing_functions.clone(),
            })
            .collect())
    }

    async fn satisfies(
        &mut self,
        version: String,
        requirement: String,
    ) -> wasmtime::Result<Result<bool, String>> {
        let req = match parse_req(&requirement) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Version::parse(&version)
            .map(|v| req.matches(&v))
            .map_err(|e| {
                format!("`{version}` is not a semver version ({e}); write it as MAJOR.MINOR.PATCH")
            }))
    }

    async fn find(
        &mut self,
        name: String,
        requirement: String,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        let req = match parse_req(&requirement) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self
            .catalog
            .versions_of(&name)
            .rev()
            .find(|m| req.matches(&m.version))
            .map(|m| m.version.to_string())))
    }
}

/// Link `driftless:versioning/versioning@1.0.0`.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut HostState,
) -> wasmtime::Result<()> {
    versioning::add_to_linker::<T, HasSelf<HostState>>(linker, get)
}
