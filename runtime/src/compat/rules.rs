//! The versioning rules (DESIGN.md): imports + catalog → report. Pure.
//!
//! Each import is first decided ([`decide`]: which rule applies, which host module it links
//! to, which functions are missing or typed differently), then put into words ([`word`]:
//! the verdict, and the sentence that says which side must move and how).

use super::catalog::{Catalog, Interface, Module};
use super::class::Class;
use super::inspect::Import;
use super::report::{Ahead, CompatReport, ImportVerdict, Retyped, Rule, Status, Verdict};
use semver::Version;
use std::collections::BTreeMap;

/// Judge every import against `catalog`. `optional` holds the job's optional-import patterns
/// (`driftless:kv/store@1.1.0`, `driftless:kv/store`, or a whole package `driftless:kv`).
pub fn judge(imports: &[Import], optional: &[String], catalog: &Catalog) -> CompatReport {
    let verdicts: Vec<ImportVerdict> = imports
        .iter()
        .map(|i| word(i, is_optional(i, optional), catalog, &decide(i, catalog)))
        .collect();
    let rejected: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.status == Status::Rejected)
        .map(|v| v.import.as_str())
        .collect();
    let degraded = verdicts
        .iter()
        .filter(|v| v.status == Status::Degraded)
        .count();
    let (verdict, summary) = if !rejected.is_empty() {
        (
            Verdict::Rejected,
            format!(
                "{} of {} imports cannot be satisfied by this host: {}",
                rejected.len(),
                verdicts.len(),
                rejected.join(", ")
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

/// What the rules found about one import, before it is put into words.
#[derive(Debug)]
enum Finding<'c> {
    /// Not an interface of a package (a bare root function).
    NotAnInterface,
    /// The catalog has no version of the package (rule 4).
    UnknownPackage,
    /// The import carries no version.
    Unversioned,
    /// No provided version in the import's class (rule 1).
    OutOfClass { class: Class, ahead: Ahead },
    /// It links to `resolved`, which has no such interface.
    NoInterface { resolved: &'c Module },
    /// It links to `resolved`, whose functions were not listed (a catalog registered by an
    /// older driftless, for WASI): the class rule is all that is known.
    ClassOnly { resolved: &'c Module },
    /// It links to `resolved`; `absent` functions are not there, `retyped` ones have another
    /// type (rules 2 and 3). Both empty: satisfied.
    Functions {
        resolved: &'c Module,
        absent: Vec<String>,
        retyped: Vec<Retyped>,
    },
}

/// Decide one import against `catalog`, the way wasmtime's linker resolves it: the exact
/// version first, else the highest provided version in its class; then function by function.
fn decide<'c>(import: &Import, catalog: &'c Catalog) -> Finding<'c> {
    if import.package.is_empty() {
        return Finding::NotAnInterface;
    }
    let provided: Vec<&'c Module> = catalog
        .modules()
        .iter()
        .filter(|m| m.name == import.package)
        .collect();
    let Some(highest) = provided.last() else {
        return Finding::UnknownPackage;
    };
    let Some(version) = &import.version else {
        return Finding::Unversioned;
    };
    let class = Class::of(version);
    let in_class: Vec<&Module> = provided
        .iter()
        .copied()
        .filter(|m| class.contains(&m.version))
        .collect();
    let Some(resolved) = in_class
        .iter()
        .find(|m| &m.version == version)
        .or(in_class.last())
        .copied()
    else {
        // Above everything the host has, or below it (dropped), or in a hole between.
        let ahead = if version > &highest.version {
            Ahead::Job
        } else {
            Ahead::Host
        };
        return Finding::OutOfClass { class, ahead };
    };
    let Some(interfaces) = &resolved.interfaces else {
        return Finding::ClassOnly { resolved };
    };
    let Some(Interface { functions: host }) = interfaces.get(&import.interface) else {
        return Finding::NoInterface { resolved };
    };
    let (absent, retyped) = compare(&import.functions, host);
    Finding::Functions {
        resolved,
        absent,
        retyped,
    }
}

/// The job's functions the host lacks, and those it has with another type.
fn compare(
    job: &BTreeMap<String, String>,
    host: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<Retyped>) {
    let mut absent = Vec::new();
    let mut retyped = Vec::new();
    for (name, sig) in job {
        match host.get(name) {
            None => absent.push(name.clone()),
            Some(theirs) if theirs != sig => retyped.push(Retyped {
                function: name.clone(),
                job: sig.clone(),
                host: theirs.clone(),
            }),
            Some(_) => {}
        }
    }
    (absent, retyped)
}

/// Put a finding into words: the verdict on the import and what to do about it.
fn word(import: &Import, optional: bool, catalog: &Catalog, finding: &Finding) -> ImportVerdict {
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
        retyped: Vec::new(),
        ahead: None,
        message: String::new(),
    };
    let Some(resolved) = finding.resolved() else {
        let (rule, message) = unavailable(import, &provided, finding);
        if let Finding::OutOfClass { ahead, .. } = finding {
            v.ahead = Some(*ahead);
        }
        return whole_import_fails(v, rule, message);
    };
    let version = import
        .version
        .as_ref()
        .expect("a resolved import is versioned");
    let host_older = resolved.version < *version;
    v.resolved = Some(resolved.version.to_string());
    v.ahead = host_older.then_some(Ahead::Job);
    match finding {
        Finding::NoInterface { resolved } => {
            let next = if host_older {
                "the job is ahead, so upgrade the runtime"
            } else {
                "check the interface name the job was built against"
            };
            let message = format!(
                "{} has no interface `{}`: {next}",
                resolved.id(),
                import.interface
            );
            whole_import_fails(v, Rule::MissingFunctions, message)
        }
        Finding::Functions {
            absent, retyped, ..
        } if !absent.is_empty() || !retyped.is_empty() => {
            functions_differ(v, import, resolved, absent, retyped)
        }
        _ => {
            // Satisfied: by class alone (ClassOnly), or function by function.
            let by_class = matches!(finding, Finding::ClassOnly { .. });
            v.rule = if host_older {
                Rule::FunctionsMatch
            } else {
                Rule::HostSameOrNewer
            };
            v.message = match (host_older, by_class) {
                (false, _) => format!("provided by {}", resolved.id()),
                (true, true) => format!(
                    "job built against {} {version}, host provides {}: the linker checks each function",
                    short(&import.package),
                    resolved.version
                ),
                (true, false) => format!(
                    "job built against {} {version}, host provides {}: older, but it has every function the job uses ({})",
                    short(&import.package),
                    resolved.version,
                    fn_list(&v.functions)
                ),
            };
            v
        }
    }
}

impl Finding<'_> {
    /// The host module the import links to, if any.
    fn resolved(&self) -> Option<&Module> {
        match self {
            Finding::NoInterface { resolved }
            | Finding::ClassOnly { resolved }
            | Finding::Functions { resolved, .. } => Some(resolved),
            _ => None,
        }
    }
}

/// The rule and sentence for an import that links to no host module at all.
fn unavailable(import: &Import, provided: &[&Module], finding: &Finding) -> (Rule, String) {
    match finding {
        Finding::UnknownPackage => (
            Rule::UnknownPackage,
            format!(
                "this host provides no version of {}: run the job on a node that provides it, or declare the import optional and check driftless:versioning before using it",
                import.package
            ),
        ),
        Finding::Unversioned => (
            Rule::Unsupported,
            format!(
                "the job imports {} without a version; host modules are versioned ({}). Rebuild the job with driftless-sdk, which imports versioned interfaces",
                import.name,
                list(provided)
            ),
        ),
        Finding::OutOfClass { class, ahead } => (
            Rule::MajorMismatch,
            out_of_class(import, provided, class, *ahead),
        ),
        // A bare root function (the other findings link to a module).
        _ => (
            Rule::Unsupported,
            format!(
                "`{}` is not an interface of a versioned package; driftless jobs import host modules such as driftless:kv/store@1.1.0. Rebuild the job with driftless-sdk",
                import.name
            ),
        ),
    }
}

/// Rule 1's sentence: both sides' versions, and which side must move.
fn out_of_class(import: &Import, provided: &[&Module], class: &Class, ahead: Ahead) -> String {
    let pkg = short(&import.package);
    let highest = &provided.last().expect("non-empty").version;
    let version = import.version.as_ref().expect("versioned");
    let mut message = match ahead {
        Ahead::Job => format!(
            "job built against {pkg} {class}; this host provides {pkg} {}: the job is ahead, so upgrade the runtime (or run the job on a node that provides {} {class})",
            list(provided),
            import.package
        ),
        Ahead::Host if version < &provided[0].version => format!(
            "job built against {pkg} {class}; this host dropped {class} (it provides {pkg} {}): the host is ahead, so rebuild the job against {pkg} {}",
            list(provided),
            Class::of(highest)
        ),
        Ahead::Host => format!(
            "job built against {pkg} {class}; this host provides {pkg} {} but not {class}: rebuild the job against one of those, or run it on a node that provides {class}",
            list(provided)
        ),
    };
    if !version.pre.is_empty() {
        message.push_str(&format!(
            ". {version} is a pre-release, which links only to exactly that version: rebuild the job against a released {}",
            import.package
        ));
    }
    message
}

/// An import the host cannot link at all: rejected, or, when optional, every function traps.
fn whole_import_fails(mut v: ImportVerdict, rule: Rule, message: String) -> ImportVerdict {
    v.rule = rule;
    if v.optional {
        v.status = Status::Degraded;
        v.missing_functions = v.functions.clone();
        v.message = format!(
            "{message}. Declared optional: the job runs, and its calls to {} trap",
            fn_list(&v.functions)
        );
    } else {
        v.status = Status::Rejected;
        v.message = message;
    }
    v
}

/// Rule 3 (and a job whose WIT differs from the published package): name the functions the
/// host lacks, show both signatures of those typed differently, and say who must move.
fn functions_differ(
    mut v: ImportVerdict,
    import: &Import,
    resolved: &Module,
    absent: &[String],
    retyped: &[Retyped],
) -> ImportVerdict {
    let version = import.version.as_ref().expect("versioned");
    let host_older = resolved.version < *version;
    let mut detail = Vec::new();
    if !absent.is_empty() {
        detail.push(format!("{} lacks {}", resolved.id(), fn_list(absent)));
    }
    if !retyped.is_empty() {
        let each: Vec<String> = retyped
            .iter()
            .map(|r| {
                format!(
                    "`{}` is `{}` in the job but `{}` in {}",
                    r.function,
                    r.job,
                    r.host,
                    resolved.id()
                )
            })
            .collect();
        detail.push(each.join("; "));
    }
    let detail = detail.join(", and ");
    v.rule = Rule::MissingFunctions;
    v.missing_functions = absent
        .iter()
        .chain(retyped.iter().map(|r| &r.function))
        .cloned()
        .collect();
    v.missing_functions.sort();
    v.retyped = retyped.to_vec();
    let head = format!(
        "job built against {} {version}, host provides {}: {detail}",
        short(&import.package),
        resolved.version
    );
    if v.optional {
        v.status = Status::Degraded;
        v.message = format!(
            "{head}. Declared optional: the job runs, and calls to {} trap, so it must check driftless:versioning first",
            fn_list(&v.missing_functions)
        );
        return v;
    }
    v.status = Status::Rejected;
    let mut next = Vec::new();
    if !absent.is_empty() && host_older {
        next.push(upgrade_advice(&import.package, version, resolved));
    }
    if !retyped.is_empty() || !host_older {
        next.push(format!(
            "{} is the published {}, and the job's WIT differs from it: rebuild the job against the published WIT ({})",
            resolved.id(),
            import.package,
            published_wit(&import.package)
        ));
    }
    v.message = format!("{head}. {}", next.join(". Also, "));
    v
}

/// What to do when the job needs functions of a newer minor than the host has.
fn upgrade_advice(package: &str, version: &Version, resolved: &Module) -> String {
    if package.starts_with("wasi:") {
        format!(
            "The job is ahead: upgrade the runtime to one whose wasmtime-wasi provides {package} {version}+, or build the job with a toolchain whose WASI is at most {}",
            resolved.version
        )
    } else {
        format!(
            "The job is ahead: upgrade the runtime to {package} {version}+, or declare the import optional and check driftless:versioning before calling them"
        )
    }
}

/// Where a job author finds the published WIT of `package`.
fn published_wit(package: &str) -> &'static str {
    if package.starts_with("wasi:") {
        "a released toolchain's wasm32-wasip2 target, or the WIT of a published wasi crate"
    } else if package.starts_with("driftless:") {
        "the driftless-sdk crate, or the runtime's wit/ folder"
    } else {
        "the package's published release"
    }
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
