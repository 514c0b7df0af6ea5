//! The host keeps semver. Every package version under `wit/` is checked against the previous
//! version in its class (same major; same minor for 0.x) twice: with wit-component's semver
//! check (what `wasm-tools component semver-check` runs: a guest of the earlier version must
//! link against the later one), and against the catalog's own function tables (every function
//! of the earlier version is in the later one, with the same signature). A later minor that
//! drops or re-types a function fails here, naming it.

use driftless::compat::Catalog;
use driftless::compat::class::Class;
use semver::Version;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wit_parser::Resolve;

/// Interface → function → canonical signature.
type Tables = BTreeMap<String, BTreeMap<String, String>>;

/// One package version's WIT.
#[derive(Debug, Clone)]
struct Package {
    /// `driftless:kv`.
    name: String,
    version: Version,
    /// Its source (every file of its folder, one `package` line).
    text: String,
}

impl Package {
    fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Parse the WIT text of one package version.
    fn parse(text: String) -> Package {
        let mut resolve = Resolve::new();
        let id = resolve
            .push_str("package.wit", &text)
            .expect("the WIT parses");
        let name = &resolve.packages[id].name;
        Package {
            name: format!("{}:{}", name.namespace, name.name),
            version: name.version.clone().expect("host packages are versioned"),
            text,
        }
    }

    /// Its text with one more world, `semver-gate`, importing every interface: the shape of
    /// a guest built against this version.
    fn with_gate_world(&self) -> String {
        let mut resolve = Resolve::new();
        let id = resolve.push_str("package.wit", &self.text).unwrap();
        let imports: String = resolve.packages[id]
            .interfaces
            .keys()
            .map(|i| format!("    import {i};\n"))
            .collect();
        format!("{}\n\nworld semver-gate {{\n{imports}}}\n", self.text)
    }

    /// Its function tables, read from its WIT.
    fn tables(&self) -> Tables {
        let mut resolve = Resolve::new();
        let id = resolve.push_str("package.wit", &self.text).unwrap();
        resolve.packages[id]
            .interfaces
            .iter()
            .map(|(name, iface)| {
                let functions = resolve.interfaces[*iface]
                    .functions
                    .iter()
                    .map(|(f, func)| {
                        (
                            f.clone(),
                            driftless::compat::signature::function(&resolve, func),
                        )
                    })
                    .collect();
                (name.clone(), functions)
            })
            .collect()
    }
}

/// Every package version under `wit/`, in folder order.
fn host_packages() -> Vec<Package> {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&wit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    folders
        .iter()
        .map(|f| Package::parse(folder_text(f)))
        .collect()
}

/// The `.wit` files of a folder as one text with a single `package` line.
fn folder_text(folder: &Path) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .collect();
    files.sort();
    let mut text = String::new();
    for (n, file) in files.iter().enumerate() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            if n > 0 && line.trim_start().starts_with("package ") {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The pairs to check: each version with the previous one in its class.
fn successions(packages: &[Package]) -> Vec<(Package, Package)> {
    let mut pairs = Vec::new();
    for new in packages {
        let prev = packages
            .iter()
            .filter(|p| {
                p.name == new.name
                    && p.version < new.version
                    && Class::of(&p.version) == Class::of(&new.version)
            })
            .max_by(|a, b| a.version.cmp(&b.version));
        if let Some(prev) = prev {
            pairs.push((prev.clone(), new.clone()));
        }
    }
    pairs
}

/// What is wrong with `new` as the successor of `prev`, given both function tables.
fn problems(
    prev: &Package,
    new: &Package,
    prev_tables: &Tables,
    new_tables: &Tables,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut resolve = Resolve::new();
    let mut world = |package: &Package| {
        let id = resolve
            .push_str(format!("{}.wit", package.id()), &package.with_gate_world())
            .unwrap();
        resolve.select_world(&[id], Some("semver-gate")).unwrap()
    };
    let (prev_world, new_world) = (world(prev), world(new));
    if let Err(e) = wit_component::semver_check(resolve, prev_world, new_world) {
        found.push(format!(
            "{} → {}: wit-component's semver check fails: {e:#}",
            prev.id(),
            new.id()
        ));
    }
    for (iface, functions) in prev_tables {
        for (name, sig) in functions {
            match new_tables.get(iface).and_then(|f| f.get(name)) {
                None => found.push(format!(
                    "{} drops `{iface}.{name}` of {}",
                    new.id(),
                    prev.id()
                )),
                Some(theirs) if theirs != sig => found.push(format!(
                    "{} re-types `{iface}.{name}`: `{sig}` in {}, `{theirs}` in {}",
                    new.id(),
                    prev.id(),
                    new.id()
                )),
                Some(_) => {}
            }
        }
    }
    found
}

/// A package version's tables as the catalog has them.
fn catalog_tables(catalog: &Catalog, package: &Package) -> Tables {
    let module = catalog
        .versions_of(&package.name)
        .find(|m| m.version == package.version)
        .unwrap_or_else(|| panic!("wit/ has {}, which the catalog lacks", package.id()));
    module
        .interfaces
        .as_ref()
        .expect("driftless modules list their functions")
        .iter()
        .map(|(name, iface)| (name.clone(), iface.functions.clone()))
        .collect()
}

#[test]
fn every_host_package_version_keeps_semver_with_the_previous_one() {
    let packages = host_packages();
    let catalog = Catalog::full();
    let pairs = successions(&packages);
    assert!(
        pairs
            .iter()
            .any(|(p, n)| p.id() == "driftless:kv@1.0.0" && n.id() == "driftless:kv@1.1.0"),
        "{pairs:?}"
    );
    for package in &packages {
        assert_eq!(
            catalog_tables(&catalog, package),
            package.tables(),
            "the catalog's tables of {} differ from wit/",
            package.id()
        );
    }
    let found: Vec<String> = pairs
        .iter()
        .flat_map(|(prev, new)| {
            problems(
                prev,
                new,
                &catalog_tables(&catalog, prev),
                &catalog_tables(&catalog, new),
            )
        })
        .collect();
    assert!(
        found.is_empty(),
        "a host package breaks semver:\n{}",
        found.join("\n")
    );
}

/// The gate catches what it is for: a later minor that drops or re-types a function.
#[test]
fn the_gate_fails_on_a_dropped_or_retyped_function() {
    let kv10 = host_packages()
        .into_iter()
        .find(|p| p.id() == "driftless:kv@1.0.0")
        .unwrap();
    let kv11 =
        |text: String| Package::parse(text.replace("driftless:kv@1.0.0", "driftless:kv@1.1.0"));
    let get = "get: func(key: string) -> option<string>;";
    assert!(kv10.text.contains(get), "{}", kv10.text);

    let dropped = kv11(kv10.text.replace(get, ""));
    let found = problems(&kv10, &dropped, &kv10.tables(), &dropped.tables());
    assert!(
        found.iter().any(|p| p.contains("semver check fails")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.contains("driftless:kv@1.1.0 drops `store.get`")),
        "{found:?}"
    );

    let retyped = kv11(
        kv10.text
            .replace(get, "get: func(key: u32) -> option<string>;"),
    );
    let found = problems(&kv10, &retyped, &kv10.tables(), &retyped.tables());
    assert!(
        found.iter().any(|p| p.contains("semver check fails")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains(
            "re-types `store.get`: `func(key: string) -> option<string>` in driftless:kv@1.0.0, `func(key: u32) -> option<string>` in driftless:kv@1.1.0"
        )),
        "{found:?}"
    );

    // Adding a function is what a minor may do.
    let grown = kv11(
        kv10.text
            .replace(get, &format!("{get}\n    peek: func() -> u32;")),
    );
    assert_eq!(
        problems(&kv10, &grown, &kv10.tables(), &grown.tables()),
        Vec::<String>::new()
    );
}
