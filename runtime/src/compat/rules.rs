//! The versioning rules (DESIGN.md): imports + catalog → report. Pure.

use super::class::Class;
use super::inspect::Import;
use super::report::{Ahead, CompatReport, ImportVerdict, Rule, Status, Verdict};
use crate::host::catalog::{Catalog, Module};
use semver::Version;

/// Judge every import against `catalog`. `optional` holds the job's optional-import patterns
/// (`driftless:kv/store@1.1.0`, `driftless:kv/store`, or a whole package `driftless:kv`).
pub fn judge(imports: &[Import], optional: &[String], catalog: &Catalog) -> CompatReport {
    let verdicts: Vec<ImportVerdict> = imports
        .iter()
        .map(|i| judge_one(i, is_optional(i, optional), catalog))
        .collect();
    let rejected = verdicts
        .iter()
        .filter(|v| v.status == Status::Rejected)
        .count();
    let degraded = verdicts
        .iter()
        .filter(|v| v.status == Status::Degraded)
        .count();
    let (verdict, summary) = if rejected > 0 {
        let names: Vec<&str> = verdicts
            .iter()
            .filter(|v| v.status == Status::Rejected)
            .map(|v| v.import.as_str())
            .collect();
        (
            Verdict::Rejected,
            format!(
                "{rejected} of {} imports cannot be satisfied by this host: {}",
                verdicts.len(),
                names.join(", ")
            ),
        )
    } else if degraded > 0 {
        (
            Verdict::Degraded,
            format!(
                "every required import is satisfied; {degraded} optional import(s) lack functions on this host, which trap if called (the job should check driftless:versioning first)"
            ),
        )
    } else {
        (
            Verdict::Accepted,
            format!("all {} imports are satisfied by this host", verdicts.len()),
        )
    };
    CompatReport {
        verdict,
        catalog: catalog.ids(),
        imports: verdicts,
        summary,
    }
}

fn is_optional(import: &Import, patterns: &[String]) -> bool {
    let unversioned = format!("{}/{}", import.package, import.interface);
    patterns
        .iter()
        .any(|p| p == &import.name || p == &unversioned || p == &import.package)
}

/// `kv` from `driftless:kv`, for messages.
fn short(package: &str) -> &str {
    package.rsplit(':').next().unwrap_or(package)
}

fn list(versions: &[&Module]) -> String {
    versions
        .iter()
        .map(|m| m.version.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn judge_one(import: &Import, optional: bool, catalog: &Catalog) -> ImportVerdict {
    let provided: Vec<&Module> = catalog.versions_of(&import.package).collect();
    let mut v = ImportVerdict {
        import: import.name.clone(),
        package: import.package.clone(),
        version: import.version.as_ref().map(Version::to_string),
        optional,
        functions: import.functions.keys().cloned().collect(),
        provided: provided.iter().map(|m| m.version.to_string()).collect(),
        resolved: None,
        status: Status::Satisfied,
        rule: Rule::HostSameOrNewer,
        missing_functions: Vec::new(),
        ahead: None,
        message: String::new(),
    };
    let fail = |mut v: ImportVerdict, rule: Rule, message: String| {
        v.rule = rule;
        v.status = if optional {
            Status::Degraded
        } else {
            Status::Rejected
        };
        v.missing_functions = if optional {
            v.functions.clone()
        } else {
            Vec::new()
        };
        v.message = if optional {
            format!(
                "{message}. Declared optional: the job runs, and its calls to {} trap",
                fn_list(&v.functions)
            )
        } else {
            message
        };
        v
    };

    if import.package.is_empty() {
        return fail(
            v,
            Rule::Unsupported,
            format!(
                "`{}` is not an interface of a versioned package; driftless jobs import host modules such as driftless:kv/store@1.1.0. Rebuild the job with driftless-sdk",
                import.name
            ),
        );
    }
    if provided.is_empty() {
        return fail(
            v,
            Rule::UnknownPackage,
            format!(
                "this host provides no version of {}: run the job on a node that provides it, or declare the import optional and check driftless:versioning before using it",
                import.package
            ),
        );
    }
    let Some(version) = &import.version else {
        return fail(
            v,
            Rule::Unsupported,
            format!(
                "the job imports {} without a version; host modules are versioned ({}). Rebuild the job with driftless-sdk, which imports versioned interfaces",
                import.name,
                list(&provided)
            ),
        );
    };

    let class = Class::of(version);
    // wasmtime's linker: the exact name first, else the highest version in the class.
    let in_class: Vec<&Module> = provided
        .iter()
        .copied()
        .filter(|m| class.contains(&m.version))
        .collect();
    let resolved = in_class
        .iter()
        .find(|m| &m.version == version)
        .or(in_class.last())
        .copied();
    let Some(resolved) = resolved else {
        let highest = &provided.last().expect("non-empty").version;
        let lowest = &provided.first().expect("non-empty").version;
        let pkg = short(&import.package);
        let (ahead, message) = if version > highest {
            (
                Ahead::Job,
                format!(
                    "job built against {pkg} {class}; this host provides {pkg} {}: the job is ahead, so upgrade the runtime (or run the job on a node that provides {} {class})",
                    list(&provided),
                    import.package
                ),
            )
        } else if version < lowest {
            (
                Ahead::Host,
                format!(
                    "job built against {pkg} {class}; this host dropped {class} (it provides {pkg} {}): the host is ahead, so rebuild the job against {pkg} {}",
                    list(&provided),
                    Class::of(highest)
                ),
            )
        } else {
            (
                Ahead::Host,
                format!(
                    "job built against {pkg} {class}; this host provides {pkg} {} but not {class}: rebuild the job against one of those, or run it on a node that provides {class}",
                    list(&provided)
                ),
            )
        };
        v.ahead = Some(ahead);
        return fail(v, Rule::MajorMismatch, message);
    };

    v.resolved = Some(resolved.version.to_string());
    let host_older = resolved.version < *version;
    if host_older {
        v.ahead = Some(Ahead::Job);
    }
    let Some(interfaces) = &resolved.interfaces else {
        // Interfaces the linker checks itself (WASI): the class rule is all the catalog knows.
        v.rule = if host_older {
            Rule::FunctionsMatch
        } else {
            Rule::HostSameOrNewer
        };
        v.message = if host_older {
            format!(
                "job built against {version}, host provides {}: the linker checks each function",
                resolved.version
            )
        } else {
            format!("provided by {}", resolved.id())
        };
        return v;
    };
    let Some(host_functions) = interfaces.get(&import.interface).map(|i| &i.functions) else {
        let pkg_v = resolved.id();
        v.missing_functions = v.functions.clone();
        return fail(
            v,
            Rule::MissingFunctions,
            format!(
                "{pkg_v} has no interface `{}`: {}",
                import.interface,
                if host_older {
                    "the job is ahead, so upgrade the runtime"
                } else {
                    "check the interface name the job was built against"
                }
            ),
        );
    };
    let missing: Vec<String> = import
        .functions
        .iter()
        .filter(|(name, sig)| host_functions.get(*name) != Some(*sig))
        .map(|(name, _)| name.clone())
        .collect();
    if missing.is_empty() {
        v.rule = if host_older {
            Rule::FunctionsMatch
        } else {
            Rule::HostSameOrNewer
        };
        v.message = if host_older {
            format!(
                "job built against {version}, host provides {}: older, but it has every function the job uses ({})",
                resolved.version,
                fn_list(&v.functions)
            )
        } else {
            format!("provided by {}", resolved.id())
        };
        return v;
    }

    let retyped: Vec<&String> = missing
        .iter()
        .filter(|m| host_functions.contains_key(*m))
        .collect();
    let detail = if retyped.is_empty() {
        format!("{} lacks {}", resolved.id(), fn_list(&missing))
    } else {
        format!(
            "{} lacks or has different types for {} (different: {})",
            resolved.id(),
            fn_list(&missing),
            retyped
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    v.rule = Rule::MissingFunctions;
    v.missing_functions = missing.clone();
    if optional {
        v.status = Status::Degraded;
        v.message = format!(
            "job built against {version}, host provides {}: {detail}. Declared optional: the job runs, and calls to {} trap, so it must check driftless:versioning first",
            resolved.version,
            fn_list(&missing)
        );
    } else {
        v.status = Status::Rejected;
        v.message = if host_older {
            format!(
                "job built against {version}, host provides {}: {detail}. The job is ahead: upgrade the runtime to {} {}+, or declare the import optional and check driftless:versioning before calling them",
                resolved.version, import.package, version
            )
        } else {
            format!(
                "{detail}, although it is not older than the job's {version}: this host's module breaks semver; report it to the runtime's operators"
            )
        };
    }
    v
}

fn fn_list(functions: &[String]) -> String {
    if functions.is_empty() {
        return "no functions".into();
    }
    functions
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
