//! The rule table: every class of version drift against a catalog, checked verdict by verdict.

use super::catalog::{Catalog, Interface, Module};
use super::*;
use semver::Version;
use std::collections::BTreeMap;

const GET: &str = "func(key: string) -> option<string>";
const KV_ERR: &str =
    "record { code: enum { invalid-key, too-large, wrong-type, unavailable }, message: string }";

fn sig_set() -> String {
    format!("func(key: string, value: string) -> result<_, {KV_ERR}>")
}
fn sig_increment() -> String {
    format!("func(key: string, delta: s64) -> result<s64, {KV_ERR}>")
}

fn import(name: &str, funcs: &[(&str, &str)]) -> Import {
    let (pkg_iface, version) = match name.split_once('@') {
        Some((a, v)) => (a, Some(Version::parse(v).unwrap())),
        None => (name, None),
    };
    let (package, interface) = pkg_iface.split_once('/').unwrap_or((pkg_iface, ""));
    Import {
        name: name.into(),
        package: package.into(),
        interface: interface.into(),
        version,
        functions: funcs
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
    }
}

fn kv(funcs: &[&str]) -> Vec<(&'static str, String)> {
    funcs
        .iter()
        .map(|f| match *f {
            "get" => ("get", GET.to_string()),
            "set" => ("set", sig_set()),
            "increment" => ("increment", sig_increment()),
            other => panic!("no fixture for {other}"),
        })
        .collect()
}

fn kv_import(version: &str, funcs: &[&str]) -> Import {
    let f = kv(funcs);
    let refs: Vec<(&str, &str)> = f.iter().map(|(n, s)| (*n, s.as_str())).collect();
    import(&format!("driftless:kv/store@{version}"), &refs)
}

fn module(name: &str, version: &str, iface: &str, funcs: Option<&[(&str, &str)]>) -> Module {
    Module {
        name: name.into(),
        version: Version::parse(version).unwrap(),
        interfaces: funcs.map(|f| {
            BTreeMap::from([(
                iface.to_string(),
                Interface {
                    functions: f
                        .iter()
                        .map(|(n, s)| (n.to_string(), s.to_string()))
                        .collect(),
                },
            )])
        }),
    }
}

fn one(import: Import, optional: &[&str], catalog: &Catalog) -> (CompatReport, ImportVerdict) {
    let optional: Vec<String> = optional.iter().map(|s| s.to_string()).collect();
    let report = rules::judge(&[import], &optional, catalog);
    let v = report.imports[0].clone();
    (report, v)
}

fn current() -> Catalog {
    Catalog::full()
}
fn kv10_only() -> Catalog {
    Catalog::with_provides(&["driftless:kv@1.0.0"]).unwrap()
}
fn kv2_only() -> Catalog {
    Catalog::with_provides(&["driftless:kv@2.0.0"]).unwrap()
}

#[test]
fn same_major_host_newer_or_equal_is_satisfied() {
    let (r, v) = one(kv_import("1.0.0", &["get", "set"]), &[], &current());
    assert_eq!(
        (r.verdict, v.status, v.rule),
        (Verdict::Accepted, Status::Satisfied, Rule::HostSameOrNewer)
    );
    assert_eq!(
        v.resolved.as_deref(),
        Some("1.0.0"),
        "an exact version wins over the highest in class"
    );
    let (_, v) = one(kv_import("1.1.0", &["get", "increment"]), &[], &current());
    assert_eq!(
        (v.status, v.resolved.as_deref()),
        (Status::Satisfied, Some("1.1.0"))
    );
    let catalog = Catalog::with_provides(&["driftless:kv@1.1.0"]).unwrap();
    let (_, v) = one(kv_import("1.0.0", &["get"]), &[], &catalog);
    assert_eq!(
        (v.status, v.resolved.as_deref(), v.ahead),
        (Status::Satisfied, Some("1.1.0"), None)
    );
}

#[test]
fn older_host_in_class_is_satisfied_when_every_function_matches() {
    let (r, v) = one(kv_import("1.1.0", &["get", "set"]), &[], &kv10_only());
    assert_eq!(
        (r.verdict, v.status, v.rule),
        (Verdict::Accepted, Status::Satisfied, Rule::FunctionsMatch)
    );
    assert_eq!(v.ahead, Some(Ahead::Job));
    assert!(
        v.message.contains("has every function the job uses"),
        "{}",
        v.message
    );
}

#[test]
fn newer_patch_and_minor_on_older_host() {
    // A patch release of the job's WIT that the host has not seen: same functions → fine.
    let (_, v) = one(kv_import("1.0.3", &["get"]), &[], &kv10_only());
    assert_eq!(
        (v.status, v.rule),
        (Status::Satisfied, Rule::FunctionsMatch)
    );
    // A newer minor whose new function the job calls → rejected, naming the function.
    let (r, v) = one(kv_import("1.1.0", &["get", "increment"]), &[], &kv10_only());
    assert_eq!(
        (r.verdict, v.status, v.rule),
        (Verdict::Rejected, Status::Rejected, Rule::MissingFunctions)
    );
    assert_eq!(v.missing_functions, ["increment"]);
    assert!(
        v.message.contains("upgrade the runtime") && v.message.contains("`increment`"),
        "{}",
        v.message
    );
}

#[test]
fn optional_import_missing_functions_is_degraded() {
    for pattern in [
        "driftless:kv/store@1.1.0",
        "driftless:kv/store",
        "driftless:kv",
    ] {
        let (r, v) = one(
            kv_import("1.1.0", &["get", "increment"]),
            &[pattern],
            &kv10_only(),
        );
        assert_eq!(
            (r.verdict, v.status),
            (Verdict::Degraded, Status::Degraded),
            "{pattern}"
        );
        assert!(v.optional);
        assert_eq!(v.missing_functions, ["increment"]);
        assert!(r.accepted());
    }
    // Optional, but the host has everything: plain accepted.
    let (r, _) = one(
        kv_import("1.1.0", &["get", "increment"]),
        &["driftless:kv"],
        &current(),
    );
    assert_eq!(r.verdict, Verdict::Accepted);
}

#[test]
fn major_mismatch_names_the_side_that_must_move() {
    let (r, v) = one(kv_import("2.0.0", &[]), &[], &kv10_only());
    assert_eq!(
        (r.verdict, v.rule, v.ahead),
        (Verdict::Rejected, Rule::MajorMismatch, Some(Ahead::Job))
    );
    assert!(
        v.message
            .contains("job built against kv 2.x; this host provides kv 1.0.0"),
        "{}",
        v.message
    );
    assert!(v.message.contains("upgrade the runtime"), "{}", v.message);

    let (_, v) = one(kv_import("1.1.0", &["get", "set"]), &[], &kv2_only());
    assert_eq!((v.rule, v.ahead), (Rule::MajorMismatch, Some(Ahead::Host)));
    assert!(v.message.contains("this host dropped 1.x"), "{}", v.message);
    assert!(
        v.message.contains("rebuild the job against kv 2.x"),
        "{}",
        v.message
    );

    // A hole in the middle: host has 1.x and 3.x, job wants 2.x.
    let catalog = Catalog::from_modules(vec![
        module("acme:q", "1.0.0", "api", Some(&[])),
        module("acme:q", "3.0.0", "api", Some(&[])),
    ]);
    let (_, v) = one(import("acme:q/api@2.1.0", &[]), &[], &catalog);
    assert_eq!(v.rule, Rule::MajorMismatch);
    assert!(
        v.message.contains("provides q 1.0.0, 3.0.0 but not 2.x"),
        "{}",
        v.message
    );

    // Optional + major mismatch: degraded, every function traps.
    let (r, v) = one(
        kv_import("2.0.0", &[]),
        &["driftless:kv/store@2.0.0"],
        &kv10_only(),
    );
    assert_eq!((r.verdict, v.status), (Verdict::Degraded, Status::Degraded));
}

#[test]
fn zero_x_classes_are_per_minor_and_zero_zero_x_exact() {
    let catalog = Catalog::from_modules(vec![
        module("acme:zero", "0.2.4", "api", Some(&[("ping", "func()")])),
        module("acme:tiny", "0.0.1", "api", Some(&[("ping", "func()")])),
    ]);
    let (_, v) = one(
        import("acme:zero/api@0.2.1", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!(
        (v.status, v.rule),
        (Status::Satisfied, Rule::HostSameOrNewer)
    );
    let (_, v) = one(
        import("acme:zero/api@0.2.9", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!(
        (v.status, v.rule),
        (Status::Satisfied, Rule::FunctionsMatch)
    );
    let (_, v) = one(
        import("acme:zero/api@0.3.0", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!(
        (v.status, v.rule, v.ahead),
        (Status::Rejected, Rule::MajorMismatch, Some(Ahead::Job))
    );
    assert!(v.message.contains("zero 0.3.x"), "{}", v.message);
    let (_, v) = one(
        import("acme:zero/api@0.1.0", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!((v.rule, v.ahead), (Rule::MajorMismatch, Some(Ahead::Host)));
    let (_, v) = one(
        import("acme:tiny/api@0.0.1", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!(v.status, Status::Satisfied);
    let (_, v) = one(
        import("acme:tiny/api@0.0.2", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!((v.status, v.rule), (Status::Rejected, Rule::MajorMismatch));
}

#[test]
fn pre_releases_match_only_themselves() {
    let catalog = Catalog::from_modules(vec![module(
        "acme:beta",
        "1.0.0-rc.1",
        "api",
        Some(&[("ping", "func()")]),
    )]);
    let (_, v) = one(
        import("acme:beta/api@1.0.0-rc.1", &[("ping", "func()")]),
        &[],
        &catalog,
    );
    assert_eq!(v.status, Status::Satisfied);
    for other in ["1.0.0-rc.2", "1.0.0"] {
        let (_, v) = one(
            import(&format!("acme:beta/api@{other}"), &[("ping", "func()")]),
            &[],
            &catalog,
        );
        assert_eq!(
            (v.status, v.rule),
            (Status::Rejected, Rule::MajorMismatch),
            "{other}"
        );
    }
}

#[test]
fn unknown_packages_are_rejected_unless_optional() {
    let (r, v) = one(
        import("acme:mail/send@1.0.0", &[("send", "func(to: string)")]),
        &[],
        &current(),
    );
    assert_eq!(
        (r.verdict, v.rule),
        (Verdict::Rejected, Rule::UnknownPackage)
    );
    assert!(
        v.message.contains("provides no version of acme:mail"),
        "{}",
        v.message
    );
    let (r, v) = one(
        import("acme:mail/send@1.0.0", &[("send", "func(to: string)")]),
        &["acme:mail"],
        &current(),
    );
    assert_eq!((r.verdict, v.status), (Verdict::Degraded, Status::Degraded));
    assert_eq!(v.missing_functions, ["send"]);
}

#[test]
fn wasi_imports_follow_the_class_rule() {
    let (_, v) = one(
        import(
            "wasi:cli/stdout@0.2.6",
            &[("get-stdout", "func() -> own<output-stream>")],
        ),
        &[],
        &current(),
    );
    assert_eq!(
        (v.status, v.resolved.as_deref()),
        (Status::Satisfied, Some("0.2.12"))
    );
    let (_, v) = one(import("wasi:io/streams@0.2.15", &[]), &[], &current());
    assert_eq!(
        (v.status, v.rule),
        (Status::Satisfied, Rule::FunctionsMatch)
    );
    let (_, v) = one(import("wasi:io/streams@0.3.0", &[]), &[], &current());
    assert_eq!(
        (v.status, v.rule, v.ahead),
        (Status::Rejected, Rule::MajorMismatch, Some(Ahead::Job))
    );
    let (_, v) = one(import("wasi:http/types@0.2.0", &[]), &[], &current());
    assert_eq!((v.status, v.rule), (Status::Rejected, Rule::UnknownPackage));
}

#[test]
fn a_retyped_function_shows_both_signatures_and_asks_for_a_rebuild() {
    // The case: a job whose kv 1.1 declares `get: func(key: u32) -> string`.
    let (r, v) = one(
        import(
            "driftless:kv/store@1.1.0",
            &[("get", "func(key: u32) -> string"), ("set", &sig_set())],
        ),
        &[],
        &current(),
    );
    assert_eq!(
        (r.verdict, v.status, v.rule),
        (Verdict::Rejected, Status::Rejected, Rule::MissingFunctions)
    );
    assert_eq!(v.missing_functions, ["get"]);
    assert_eq!(
        v.retyped,
        [Retyped {
            function: "get".into(),
            job: "func(key: u32) -> string".into(),
            host: GET.into(),
        }]
    );
    for part in [
        "`get` is `func(key: u32) -> string` in the job but `func(key: string) -> option<string>` in driftless:kv@1.1.0",
        "driftless:kv@1.1.0 is the published driftless:kv",
        "rebuild the job against the published WIT (the driftless-sdk crate",
    ] {
        assert!(v.message.contains(part), "{part:?} not in: {}", v.message);
    }
    assert!(!v.message.contains("breaks semver"), "{}", v.message);

    // Both at once on an older host: a function it lacks and one typed differently.
    let catalog = Catalog::from_modules(vec![module(
        "acme:q",
        "1.4.0",
        "api",
        Some(&[("ping", "func() -> u32")]),
    )]);
    let (_, v) = one(
        import(
            "acme:q/api@1.5.0",
            &[("ping", "func()"), ("pong", "func()")],
        ),
        &[],
        &catalog,
    );
    assert_eq!(v.missing_functions, ["ping", "pong"]);
    for part in [
        "acme:q@1.4.0 lacks `pong`",
        "`ping` is `func()` in the job but `func() -> u32` in acme:q@1.4.0",
        "The job is ahead: upgrade the runtime to acme:q 1.5.0+",
        "rebuild the job against the published WIT",
    ] {
        assert!(v.message.contains(part), "{part:?} not in: {}", v.message);
    }
}

#[test]
fn wasi_functions_are_judged_one_by_one() {
    let env = "func() -> list<tuple<string, string>>";
    // Ahead by a patch, only functions the host has: satisfied.
    let (_, v) = one(
        import("wasi:cli/environment@0.2.99", &[("get-environment", env)]),
        &[],
        &current(),
    );
    assert_eq!(
        (v.status, v.rule, v.resolved.as_deref()),
        (Status::Satisfied, Rule::FunctionsMatch, Some("0.2.12"))
    );
    // A function no WASI 0.2 host has: rejected, naming it.
    let (r, v) = one(
        import(
            "wasi:cli/environment@0.2.99",
            &[
                ("get-environment", env),
                ("get-secrets", "func() -> list<string>"),
            ],
        ),
        &[],
        &current(),
    );
    assert_eq!(
        (r.verdict, v.rule, v.ahead),
        (Verdict::Rejected, Rule::MissingFunctions, Some(Ahead::Job))
    );
    assert_eq!(v.missing_functions, ["get-secrets"]);
    for part in [
        "wasi:cli@0.2.12 lacks `get-secrets`",
        "whose wasmtime-wasi provides wasi:cli 0.2.99+",
        "a toolchain whose WASI is at most 0.2.12",
    ] {
        assert!(v.message.contains(part), "{part:?} not in: {}", v.message);
    }
    // The same version as the host, but a function typed differently: rebuild.
    let (_, v) = one(
        import(
            "wasi:cli/environment@0.2.12",
            &[("get-environment", "func() -> list<string>")],
        ),
        &[],
        &current(),
    );
    assert_eq!(v.retyped[0].host, env);
    assert!(
        v.message.contains("is the published wasi:cli"),
        "{}",
        v.message
    );
    // Resource methods are functions too.
    let (_, v) = one(
        import(
            "wasi:io/streams@0.2.3",
            &[(
                "[method]output-stream.frobnicate",
                "func(self: borrow<output-stream>)",
            )],
        ),
        &[],
        &current(),
    );
    assert_eq!(v.missing_functions, ["[method]output-stream.frobnicate"]);
}

#[test]
fn pre_release_imports_are_named_and_explained() {
    let (_, v) = one(
        import("wasi:io/streams@0.2.0-rc-2023-11-10", &[]),
        &[],
        &current(),
    );
    assert_eq!((v.status, v.rule), (Status::Rejected, Rule::MajorMismatch));
    for part in [
        "exactly 0.2.0-rc-2023-11-10",
        "0.2.12",
        "0.2.0-rc-2023-11-10 is a pre-release, which links only to exactly that version",
    ] {
        assert!(v.message.contains(part), "{part:?} not in: {}", v.message);
    }
}

#[test]
fn odd_imports_are_refused_with_a_reason() {
    let (_, v) = one(
        import("driftless:kv/other@1.0.0", &[("x", "func()")]),
        &[],
        &current(),
    );
    assert_eq!(
        (v.status, v.rule),
        (Status::Rejected, Rule::MissingFunctions)
    );
    assert!(
        v.message.contains("has no interface `other`"),
        "{}",
        v.message
    );
    let (_, v) = one(
        import("driftless:kv/store", &[("get", GET)]),
        &[],
        &current(),
    );
    assert_eq!((v.status, v.rule), (Status::Rejected, Rule::Unsupported));
    let mut bare = import("do-it", &[("do-it", "func()")]);
    bare.package.clear();
    let (_, v) = one(bare, &[], &current());
    assert_eq!((v.status, v.rule), (Status::Rejected, Rule::Unsupported));
}

#[test]
fn type_only_imports_need_nothing() {
    let (_, v) = one(import("driftless:job/types@1.0.0", &[]), &[], &current());
    assert_eq!(v.status, Status::Satisfied);
}

#[test]
fn every_unmet_import_is_reported_at_once_and_rendered() {
    let imports = [
        kv_import("2.0.0", &[]),
        import("acme:mail/send@1.0.0", &[]),
        kv_import("1.0.0", &["get"]),
    ];
    let report = rules::judge(&imports, &[], &kv10_only());
    assert_eq!(report.verdict, Verdict::Rejected);
    assert_eq!(report.rejected().count(), 2);
    let text = report.to_string();
    assert!(text.starts_with("REJECTED: 2 of 3 imports"), "{text}");
    assert!(
        text.contains("[FAIL] driftless:kv/store@2.0.0")
            && text.contains("[ok  ] driftless:kv/store@1.0.0"),
        "{text}"
    );
    assert!(
        text.contains(
            "host provides: driftless:job@1.0.0, driftless:kv@1.0.0, driftless:versioning@1.0.0"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["verdict"], "rejected");
    assert_eq!(json["imports"][0]["rule"], "major-mismatch");
    assert_eq!(json["imports"][0]["ahead"], "job");
}
