//! The compat report: one verdict per import of one component against one catalog, an
//! overall verdict, and a human rendering that says which side is ahead and what to do.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every import is satisfied.
    Accepted,
    /// Accepted, but some optional imports are missing functions, which trap if called.
    Degraded,
    /// At least one required import cannot be satisfied; the job must not run here.
    Rejected,
}

impl Verdict {
    /// Its name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Degraded => "degraded",
            Verdict::Rejected => "rejected",
        }
    }
}

/// The verdict on one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Linked to a host module that has every function the job uses.
    Satisfied,
    /// Optional, and the host lacks some (or all) of its functions: those trap if called.
    Degraded,
    /// Cannot be satisfied.
    Rejected,
}

/// Which rule decided an import (DESIGN.md, Versioning rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Rule 2: the host provides a version at least as new in the same class.
    HostSameOrNewer,
    /// Rule 3: the host is older in the same class, and has every function the job uses.
    FunctionsMatch,
    /// Rule 3: the host module lacks functions the job uses (the job is ahead), or has them
    /// with other types (the job was built from WIT that differs from the published package).
    MissingFunctions,
    /// Rule 1: no provided version in the import's compatibility class.
    MajorMismatch,
    /// Rule 4: the host provides no version of the package at all.
    UnknownPackage,
    /// An import that is not a versioned interface of a package (a bare root function).
    Unsupported,
}

/// Which side of the drift must move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ahead {
    /// The job was built against something newer than the host has: upgrade the runtime.
    Job,
    /// The host moved past what the job was built against: rebuild the job.
    Host,
}

/// The verdict on one import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportVerdict {
    /// `driftless:kv/store@1.1.0`.
    pub import: String,
    /// `driftless:kv`.
    pub package: String,
    /// The version the job was built against.
    pub version: Option<String>,
    /// Whether the job declared the import optional.
    pub optional: bool,
    /// The functions the job uses from it.
    pub functions: Vec<String>,
    /// The versions of the package this host provides.
    pub provided: Vec<String>,
    /// The host module version the import links to, if any.
    pub resolved: Option<String>,
    /// Satisfied, degraded or rejected.
    pub status: Status,
    /// The rule that decided.
    pub rule: Rule,
    /// Functions the job uses that the resolved host module lacks (or has with another type).
    pub missing_functions: Vec<String>,
    /// Functions the host module has with another type than the job's, with both signatures.
    #[serde(default)]
    pub retyped: Vec<Retyped>,
    /// Which side is ahead, when versions disagree.
    pub ahead: Option<Ahead>,
    /// One sentence: what the host found and what to do.
    pub message: String,
}

/// A function the job and the host module type differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retyped {
    /// The function's name (`get`, `[method]output-stream.write`).
    pub function: String,
    /// Its signature as the job imports it.
    pub job: String,
    /// Its signature in the host's (published) package.
    pub host: String,
}

/// The verdict on every import of one component against one catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompatReport {
    /// Accepted, degraded or rejected.
    pub verdict: Verdict,
    /// The modules the host provides (`driftless:kv@1.1.0`, ...).
    pub catalog: Vec<String>,
    /// One entry per import, in the component's order.
    pub imports: Vec<ImportVerdict>,
    /// One sentence summing up.
    pub summary: String,
}

impl CompatReport {
    /// Whether the job may run on this host.
    pub fn accepted(&self) -> bool {
        self.verdict != Verdict::Rejected
    }

    /// The rejected imports.
    pub fn rejected(&self) -> impl Iterator<Item = &ImportVerdict> {
        self.imports.iter().filter(|i| i.status == Status::Rejected)
    }
}

impl fmt::Display for CompatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = match self.verdict {
            Verdict::Accepted => "ACCEPTED",
            Verdict::Degraded => "ACCEPTED (degraded)",
            Verdict::Rejected => "REJECTED",
        };
        writeln!(f, "{head}: {}", self.summary)?;
        let is_quiet_wasi =
            |i: &&ImportVerdict| i.package.starts_with("wasi:") && i.status == Status::Satisfied;
        for i in self.imports.iter().filter(|i| !is_quiet_wasi(i)) {
            let mark = match i.status {
                Status::Satisfied => "ok  ",
                Status::Degraded => "warn",
                Status::Rejected => "FAIL",
            };
            let optional = if i.optional { " (optional)" } else { "" };
            writeln!(f, "  [{mark}] {}{optional}", i.import)?;
            writeln!(f, "         {}", i.message)?;
        }
        let wasi: Vec<&ImportVerdict> = self.imports.iter().filter(is_quiet_wasi).collect();
        if !wasi.is_empty() {
            let mut packages: Vec<&str> = wasi.iter().map(|i| i.package.as_str()).collect();
            packages.dedup();
            writeln!(
                f,
                "  [ok  ] {} WASI imports ({})",
                wasi.len(),
                packages.join(", ")
            )?;
            writeln!(f, "         provided by wasmtime-wasi")?;
        }
        let driftless: Vec<&str> = self
            .catalog
            .iter()
            .map(String::as_str)
            .filter(|m| !m.starts_with("wasi:"))
            .collect();
        write!(f, "host provides: {}", driftless.join(", "))
    }
}
