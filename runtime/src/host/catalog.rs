//! The catalog: which host modules (WIT packages at semver versions) this node provides.
//!
//! The full catalog is everything this build implements, read from the WIT in `wit/` (embedded
//! at compile time), plus the WASI 0.2 packages from wasmtime-wasi. A node can provide less
//! (`--provide driftless:kv@1.0.0`) to behave like an older or newer host; that is how drift is
//! tested in both directions, and how a node is rolled forward one module at a time.

use crate::compat::signature;
use semver::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wasmtime::component::wit_parser::Resolve;

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

/// The WASI 0.2 packages wasmtime-wasi links (all at this version). Their functions are not
/// listed here; the linker checks them at instantiation.
const WASI_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
];
const WASI_VERSION: &str = "0.2.12";

/// One host module: a package at one version, with its interfaces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Module {
    /// Package name without version: `driftless:kv`.
    pub name: String,
    /// The version this host provides.
    pub version: Version,
    /// Interfaces by name (`store`), each with its functions; `None` for modules whose
    /// interfaces the linker checks instead (WASI, linked whole from wasmtime-wasi).
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
    let mut resolve = Resolve::new();
    for (path, text) in DRIFTLESS_WIT {
        resolve
            .push_str(path, text)
            .unwrap_or_else(|e| panic!("embedded WIT {path} does not parse: {e:#}"));
    }
    let mut modules = Vec::new();
    for (_, package) in resolve.packages.iter() {
        let name = format!("{}:{}", package.name.namespace, package.name.name);
        let version = package
            .name
            .version
            .clone()
            .expect("every driftless package is versioned");
        let mut interfaces = BTreeMap::new();
        for (iface_name, id) in &package.interfaces {
            let iface = &resolve.interfaces[*id];
            let functions = iface
                .functions
                .iter()
                .map(|(fname, f)| (fname.clone(), signature::function(&resolve, f)))
                .collect();
            interfaces.insert(iface_name.clone(), Interface { functions });
        }
        modules.push(Module {
            name,
            version,
            interfaces: Some(interfaces),
        });
    }
    let wasi_version = Version::parse(WASI_VERSION).expect("valid");
    for name in WASI_PACKAGES {
        modules.push(Module {
            name: name.to_string(),
            version: wasi_version.clone(),
            interfaces: None,
        });
    }
    modules.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
    Catalog { modules }
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
}
