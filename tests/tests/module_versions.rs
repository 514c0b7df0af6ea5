//! The module versions are the folders under `wit/`. The catalog is generated from them
//! (`runtime/build.rs`) and the bindings read them through `wit/deps` links; what still names
//! versions by hand (the host's world and linker table, the SDK's world and test catalog, the
//! README's module table) is checked here against the folders, so adding `kv@1.2.0` to `wit/`
//! fails this test with a list of exactly what must name it.

use driftless::compat::Catalog;
use driftless::host::linker;
use semver::Version;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// `driftless:<package>@<version>` for every folder under `wit/`.
fn on_disk() -> BTreeSet<String> {
    std::fs::read_dir(Path::new(ROOT).join("wit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.contains('@'))
        .map(|name| format!("driftless:{name}"))
        .collect()
}

/// The `package@version`s a world file imports or includes.
fn world_packages(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap();
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            l.strip_prefix("import ")
                .or_else(|| l.strip_prefix("include "))
        })
        .filter_map(|l| {
            let (pkg_iface, version) = l.trim_end_matches(';').split_once('@')?;
            let (pkg, _) = pkg_iface.split_once('/')?;
            Some(format!("{pkg}@{version}"))
        })
        .collect()
}

/// The newest version of each package and major.
fn newest_per_major(ids: &BTreeSet<String>) -> BTreeSet<String> {
    let mut newest: BTreeMap<(String, u64), Version> = BTreeMap::new();
    for id in ids {
        let (pkg, v) = id.split_once('@').unwrap();
        let v = Version::parse(v).unwrap();
        let slot = newest
            .entry((pkg.to_string(), v.major))
            .or_insert(v.clone());
        if v > *slot {
            *slot = v;
        }
    }
    newest
        .into_iter()
        .map(|((pkg, _), v)| format!("{pkg}@{v}"))
        .collect()
}

/// What `have` lacks of `want`, and what it names beyond it (`beyond` says why that is wrong).
fn mismatch(
    what: &str,
    want: &BTreeSet<String>,
    have: &BTreeSet<String>,
    beyond: &str,
) -> Vec<String> {
    want.difference(have)
        .map(|id| format!("{id} (under wit/) is missing from {what}"))
        .chain(
            have.difference(want)
                .map(|id| format!("{what} names {id}, {beyond}")),
        )
        .collect()
}

fn missing(what: &str, want: &BTreeSet<String>, have: &BTreeSet<String>) -> Vec<String> {
    mismatch(what, want, have, "which has no folder under wit/")
}

#[test]
fn every_place_that_names_module_versions_agrees_with_wit() {
    let disk = on_disk();
    assert!(disk.contains("driftless:kv@1.0.0"), "{disk:?}");
    let catalog: BTreeSet<String> = Catalog::full().driftless_ids().into_iter().collect();
    let linked: BTreeSet<String> = linker::implementations::<()>()
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let sdk_catalog: BTreeSet<String> = driftless_sdk::testing::SDK_CATALOG
        .iter()
        .map(|(pkg, v)| format!("{pkg}@{v}"))
        .collect();
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let documented: BTreeSet<String> = disk
        .iter()
        .filter(|id| readme.contains(&format!("| `{id}` |")))
        .cloned()
        .collect();
    let newest = newest_per_major(&disk);
    let sdk_world = world_packages("sdk/wit/sdk.wit");
    let mut problems = Vec::new();
    problems.extend(missing("the catalog (Catalog::full)", &disk, &catalog));
    problems.extend(missing(
        "the host's linker table (host/linker.rs `implementations`)",
        &disk,
        &linked,
    ));
    problems.extend(missing(
        "the host's world (runtime/wit/host.wit)",
        &disk,
        &world_packages("runtime/wit/host.wit"),
    ));
    problems.extend(missing("README's module table", &disk, &documented));
    problems.extend(mismatch(
        "the SDK's test catalog (sdk/src/testing.rs SDK_CATALOG: the newest version of each major)",
        &newest,
        &sdk_catalog,
        "which is not the newest version of its major under wit/",
    ));
    problems.extend(newest.difference(&sdk_world).map(|id| {
        format!("{id} is the newest of its major but sdk/wit/sdk.wit does not import it")
    }));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
