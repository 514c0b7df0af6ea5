//! Generates the table of driftless WIT packages this build implements from the folders under
//! the top-level `wit/` (`<package>@<version>/*.wit`), so the catalog reads the packages
//! present on disk instead of a hand-kept list.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let wit = manifest.join("../wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    let mut files = Vec::new();
    for package in sorted(&wit) {
        let name = package.file_name().unwrap().to_string_lossy().to_string();
        if !package.is_dir() || !name.contains('@') {
            continue;
        }
        println!("cargo:rerun-if-changed={}", package.display());
        for file in sorted(&package) {
            if file.extension().is_some_and(|e| e == "wit") {
                let shown = format!("wit/{name}/{}", file.file_name().unwrap().to_string_lossy());
                files.push((shown, file.canonicalize().expect("a WIT file resolves")));
            }
        }
    }
    assert!(
        !files.is_empty(),
        "no WIT packages found under {}",
        wit.display()
    );
    let mut out = String::from(
        "/// The WIT of every driftless module version under `wit/`: (shown path, text).\nconst DRIFTLESS_WIT: &[(&str, &str)] = &[\n",
    );
    for (shown, path) in files {
        writeln!(
            out,
            "    ({shown:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("a String takes writes");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("driftless_wit.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    entries
}
