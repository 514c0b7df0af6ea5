//! The catalog: which host modules (WIT packages at semver versions) a node provides, with
//! every function of every interface, so the rules can judge an import function by function.
//!
//! The full catalog is everything this build implements: the driftless packages from the WIT
//! in `wit/`, and the WASI 0.2 packages wasmtime-wasi links, read from the WASI WIT that
//! wasmtime-wasi 48.0.8 ships (copied verbatim into `wasi@0.2.12/`; a test checks the copy
//! against the crate's source). A node can provide less (`--provide driftless:kv@1.0.0`) to
//! behave like an older or newer host; that is how drift is tested in both directions, and
//! how a node is rolled forward one module at a time.

use super::signature;
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmtime::component::wit_parser::{InterfaceId, PackageId, Resolve, WorldItem};

/// The WIT of every driftless module this build implements, one entry per package version.
/// Adding a module version means adding its folder under `wit/`, a line here, and its host
/// implementation under `host/`.
const DRIFTLESS_WIT: &[(&str, &str)] = &[
    (
        "wit/job@1.0.0/job.wit",
        include_str!("../../../wit/job@1.0.0/job.wit"),
    ),
    (
        "wit/versioning@1.0.0/versioning.wit",
        include_str!("../../../wit/versioning@1.0.0/versioning.wit"),
    ),
    (
        "wit/kv@1.0.0/store.wit",
        include_str!("../../../wit/kv@1.0.0/store.wit"),
    ),
    (
        "wit/kv@1.1.0/store.wit",
        include_str!("../../../wit/kv@1.1.0/store.wit"),
    ),
    (
        "wit/kv@2.0.0/store.wit",
        include_str!("../../../wit/kv@2.0.0/store.wit"),
    ),
];

/// The WASI 0.2 WIT wasmtime-wasi 48.0.8 links (its `src/p2/wit/deps/`), each package after
/// the packages it uses.
pub(crate) const WASI_WIT: &[(&str, &str)] = &[
    ("io.wit", include_str!("wasi@0.2.12/io.wit")),
    ("clocks.wit", include_str!("wasi@0.2.12/clocks.wit")),
    ("random.wit", include_str!("wasi@0.2.12/random.wit")),
    ("filesystem.wit", include_str!("wasi@0.2.12/filesystem.wit")),
    ("sockets.wit", include_str!("wasi@0.2.12/sockets.wit")),
    ("cli.wit", include_str!("wasi@0.2.12/cli.wit")),
];

/// The world (of `wasi:cli`, the last package) whose imports are exactly what
/// `wasmtime_wasi::p2::add_to_linker_async` links: every stable interface (unstable ones,
/// such as `wasi:clocks/timezone`, are behind link options the engine leaves off, and
/// wit-parser leaves them out by default too).
const WASI_WORLD: &str = "imports";

/// One host module: a package at one version, with its interfaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Module {
    /// Package name without version: `driftless:kv`.
    pub name: String,
    /// The version this host provides.
    pub version: Version,
    /// Interfaces by name (`store`), each with its functions. `None` only in catalogs that
    /// nodes of an older driftless registered for WASI: such a module is judged by its
    /// version class alone.
    pub interfaces: Option<BTreeMap<String, Interface>>,
}

/// One interface of a module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Interface {
    /// Function name → canonical signature (`func(key: string) -> option<string>`).
    pub functions: BTreeMap<String, String>,
}

impl Module {
    /// `driftless:kv@1.1.0`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The versioned name of one of its interfaces, as a component imports it:
    /// `driftless:kv/store@1.1.0`.
    pub fn interface_name(&self, interface: &str) -> String {
        format!("{}/{}@{}", self.name, interface, self.version)
    }
}

/// The set of modules a host provides. Several majors of one package may sit side by side.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Catalog {
    modules: Vec<Module>,
}

/// Why a `--provide` list cannot be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    /// Not of the form `namespace:package@version`.
    #[error(
        "`{0}` is not a module version: write it as namespace:package@version, e.g. driftless:kv@1.0.0"
    )]
    Malformed(String),
    /// WASI cannot be narrowed.
    #[error(
        "`{0}`: WASI 0.2 is provided whole by wasmtime-wasi (wasi:*@0.2.12) and cannot be narrowed with --provide; name driftless modules only"
    )]
    Wasi(String),
    /// This build does not implement that package or version.
    #[error(
        "this build of driftless does not implement {requested}; it implements {available}. Choose among those, or upgrade the runtime"
    )]
    NotImplemented {
        /// What was asked for.
        requested: String,
        /// What this build implements of that package (or every package).
        available: String,
    },
}

impl Catalog {
    /// Everything this build implements.
    pub fn full() -> Catalog {
        static FULL: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        FULL.get_or_init(build_full).clone()
    }

    /// The full catalog with some packages narrowed: for each package named in `provides`
    /// (`driftless:kv@1.0.0`), only the listed versions are kept; other packages stay whole.
    pub fn with_provides<S: AsRef<str>>(provides: &[S]) -> Result<Catalog, CatalogError> {
        let full = Catalog::full();
        let mut chosen: BTreeMap<String, Vec<Version>> = BTreeMap::new();
        for spec in provides {
            let spec = spec.as_ref().trim();
            let (name, version) = spec
                .split_once('@')
                .ok_or_else(|| CatalogError::Malformed(spec.to_string()))?;
            let version =
                Version::parse(version).map_err(|_| CatalogError::Malformed(spec.to_string()))?;
            if !name.contains(':') {
                return Err(CatalogError::Malformed(spec.to_string()));
            }
            if name.starts_with("wasi:") {
                return Err(CatalogError::Wasi(spec.to_string()));
            }
            if !full
                .modules
                .iter()
                .any(|m| m.name == name && m.version == version)
            {
                let of_package: Vec<String> = full
                    .modules
                    .iter()
                    .filter(|m| m.name == name)
                    .map(Module::id)
                    .collect();
                let available = if of_package.is_empty() {
                    full.ids().join(", ")
                } else {
                    of_package.join(", ")
                };
                return Err(CatalogError::NotImplemented {
                    requested: spec.to_string(),
                    available,
                });
            }
            chosen.entry(name.to_string()).or_default().push(version);
        }
        let modules = full
            .modules
            .into_iter()
            .filter(|m| {
                chosen
                    .get(&m.name)
                    .is_none_or(|versions| versions.contains(&m.version))
            })
            .collect();
        Ok(Catalog { modules })
    }

    /// A catalog of exactly these modules (for tests and tools; hosts use [`Catalog::full`]
    /// or [`Catalog::with_provides`]).
    pub fn from_modules(mut modules: Vec<Module>) -> Catalog {
        modules.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
        Catalog { modules }
    }

    /// Every module, sorted by name then version.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The versions provided of `package`, lowest first.
    pub fn versions_of<'a>(
        &'a self,
        package: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a Module> + 'a {
        self.modules.iter().filter(move |m| m.name == package)
    }

    /// Whether `package` is provided at exactly `version`.
    pub fn provides(&self, package: &str, version: &Version) -> bool {
        self.versions_of(package).any(|m| &m.version == version)
    }

    /// `driftless:kv@1.1.0`-style ids of every module.
    pub fn ids(&self) -> Vec<String> {
        self.modules.iter().map(Module::id).collect()
    }

    /// The modules that are driftless's own (not WASI), as ids: what `--provide` chooses among.
    pub fn driftless_ids(&self) -> Vec<String> {
        self.modules
            .iter()
            .filter(|m| !m.name.starts_with("wasi:"))
            .map(Module::id)
            .collect()
    }
}

fn build_full() -> Catalog {
    let mut modules = driftless_modules();
    modules.extend(wasi_modules());
    modules.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
    Catalog { modules }
}

/// Every function of an interface, name → canonical signature.
fn functions_of(resolve: &Resolve, id: InterfaceId) -> Interface {
    let functions = resolve.interfaces[id]
        .functions
        .iter()
        .map(|(name, f)| (name.clone(), signature::function(resolve, f)))
        .collect();
    Interface { functions }
}

/// The packages of `files`, and the last one's id.
fn parse(files: &[(&str, &str)]) -> (Resolve, Option<PackageId>) {
    let mut resolve = Resolve::new();
    let mut last = None;
    for (path, text) in files {
        last = Some(
            resolve
                .push_str(path, text)
                .unwrap_or_else(|e| panic!("embedded WIT {path} does not parse: {e:#}")),
        );
    }
    (resolve, last)
}

/// The driftless packages: every interface of every package under `wit/`.
fn driftless_modules() -> Vec<Module> {
    let (resolve, _) = parse(DRIFTLESS_WIT);
    resolve
        .packages
        .iter()
        .map(|(_, package)| Module {
            name: format!("{}:{}", package.name.namespace, package.name.name),
            version: package
                .name
                .version
                .clone()
                .expect("every driftless package is versioned"),
            interfaces: Some(
                package
                    .interfaces
                    .iter()
                    .map(|(name, id)| (name.clone(), functions_of(&resolve, *id)))
                    .collect(),
            ),
        })
        .collect()
}

/// The WASI packages: the interfaces of [`WASI_WORLD`], grouped by package.
fn wasi_modules() -> Vec<Module> {
    let (resolve, cli) = parse(WASI_WIT);
    let world = resolve
        .select_world(&[cli.expect("wasi:cli")], Some(WASI_WORLD))
        .expect("the WASI WIT has its imports world");
    let mut packages: BTreeMap<String, Module> = BTreeMap::new();
    for item in resolve.worlds[world].imports.values() {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        let iface = &resolve.interfaces[*id];
        let package = &resolve.packages[iface.package.expect("WASI interfaces are named")].name;
        let name = format!("{}:{}", package.namespace, package.name);
        packages
            .entry(name.clone())
            .or_insert_with(|| Module {
                name,
                version: package.version.clone().expect("WASI is versioned"),
                interfaces: Some(BTreeMap::new()),
            })
            .interfaces
            .as_mut()
            .expect("built with interfaces")
            .insert(
                iface.name.clone().expect("WASI interfaces are named"),
                functions_of(&resolve, *id),
            );
    }
    packages.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_catalog_has_every_kv_major_side_by_side() {
        let ids = Catalog::full().driftless_ids();
        assert_eq!(
            ids,
            [
                "driftless:job@1.0.0",
                "driftless:kv@1.0.0",
                "driftless:kv@1.1.0",
                "driftless:kv@2.0.0",
                "driftless:versioning@1.0.0"
            ]
        );
        let kv11 = Catalog::full()
            .versions_of("driftless:kv")
            .find(|m| m.version.minor == 1)
            .cloned()
            .unwrap();
        let funcs = kv11.interfaces.unwrap()["store"].functions.clone();
        assert_eq!(funcs["get"], "func(key: string) -> option<string>");
        assert!(funcs.contains_key("increment"));
    }

    #[test]
    fn provide_narrows_only_the_named_package() {
        let c = Catalog::with_provides(&["driftless:kv@1.0.0"]).unwrap();
        assert_eq!(
            c.versions_of("driftless:kv")
                .map(Module::id)
                .collect::<Vec<_>>(),
            ["driftless:kv@1.0.0"]
        );
        assert!(c.provides("driftless:versioning", &Version::new(1, 0, 0)));
        let two = Catalog::with_provides(&["driftless:kv@1.0.0", "driftless:kv@2.0.0"]).unwrap();
        assert_eq!(two.versions_of("driftless:kv").count(), 2);
    }

    #[test]
    fn provide_refuses_what_this_build_lacks() {
        let err = Catalog::with_provides(&["driftless:kv@1.5.0"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("driftless:kv@1.0.0, driftless:kv@1.1.0, driftless:kv@2.0.0"),
            "{err}"
        );
        assert!(matches!(
            Catalog::with_provides(&["kv"]),
            Err(CatalogError::Malformed(_))
        ));
        assert!(matches!(
            Catalog::with_provides(&["driftless:kv@one"]),
            Err(CatalogError::Malformed(_))
        ));
        assert!(matches!(
            Catalog::with_provides(&["wasi:io@0.2.12"]),
            Err(CatalogError::Wasi(_))
        ));
    }

    #[test]
    fn wasi_modules_list_every_function_the_linker_links() {
        let full = Catalog::full();
        let cli = full.versions_of("wasi:cli").next().unwrap();
        assert_eq!(cli.version, Version::new(0, 2, 12));
        let interfaces = cli.interfaces.as_ref().unwrap();
        assert_eq!(
            interfaces["environment"].functions["get-environment"],
            "func() -> list<tuple<string, string>>"
        );
        assert!(interfaces["exit"].functions.contains_key("exit-with-code"));
        // `run` is what a command exports, not something the host links.
        assert!(!interfaces.contains_key("run"));
        let io = full.versions_of("wasi:io").next().unwrap();
        assert!(
            io.interfaces.as_ref().unwrap()["streams"]
                .functions
                .contains_key("[method]output-stream.blocking-write-and-flush")
        );
        // Unstable interfaces are off in wasmtime-wasi's default link options, and here.
        let clocks = full.versions_of("wasi:clocks").next().unwrap();
        assert!(!clocks.interfaces.as_ref().unwrap().contains_key("timezone"));
        let wasi: Vec<String> = full
            .ids()
            .into_iter()
            .filter(|id| id.starts_with("wasi:"))
            .collect();
        assert_eq!(
            wasi,
            [
                "wasi:cli@0.2.12",
                "wasi:clocks@0.2.12",
                "wasi:filesystem@0.2.12",
                "wasi:io@0.2.12",
                "wasi:random@0.2.12",
                "wasi:sockets@0.2.12"
            ]
        );
    }

    /// The WASI WIT here is wasmtime-wasi's own, byte for byte (found through `cargo metadata`,
    /// so upgrading wasmtime-wasi without refreshing the copy fails here).
    #[test]
    fn the_wasi_wit_is_the_one_wasmtime_wasi_links() {
        // Only this platform's dependencies: the others' sources need not be downloaded.
        let rustc = std::process::Command::new("rustc")
            .arg("-vV")
            .output()
            .unwrap();
        let host = String::from_utf8_lossy(&rustc.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            .expect("rustc names its host");
        let out = std::process::Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--offline"])
            .args(["--filter-platform", &host])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let wasi = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "wasmtime-wasi")
            .expect("wasmtime-wasi is a dependency");
        let manifest = std::path::PathBuf::from(wasi["manifest_path"].as_str().unwrap());
        let deps = manifest.parent().unwrap().join("src/p2/wit/deps");
        for (file, ours) in WASI_WIT {
            let theirs = std::fs::read_to_string(deps.join(file)).unwrap();
            assert!(
                theirs == *ours,
                "runtime/src/compat/wasi@0.2.12/{file} differs from {}: copy wasmtime-wasi's WIT again (and rename the folder if its version moved)",
                deps.join(file).display()
            );
        }
    }
}
