//! Hand-made drift: real guest examples rewritten (printed to WAT, edited, assembled again) so
//! they import what a toolchain newer or odder than this host's would: WASI from a later patch
//! or another minor, a pre-release, a function no host has, a function typed differently.

use crate::bytes;
use crate::examples::HELLO;

/// Makes one hand-made component.
pub type Make = fn() -> Vec<u8>;

/// Every hand-made component of the drift matrix, by name.
pub const HAND_MADE: &[(&str, Make)] = &[
    ("wasi_patch_ahead", wasi_patch_ahead),
    ("wasi_unknown_function", wasi_unknown_function),
    ("wasi_other_minor", wasi_other_minor),
    ("wasi_pre_release", wasi_pre_release),
    ("wasi_retyped", wasi_retyped),
    ("kv_retyped", kv_retyped),
];

/// The WASI version a newer toolchain than the host's could target (same 0.2 minor).
pub const WASI_AHEAD: &str = "0.2.99";

/// `hello`, importing every WASI interface at 0.2.99 (only functions WASI 0.2.12 has).
pub fn wasi_patch_ahead() -> Vec<u8> {
    assemble(&with_wasi_version(&hello_wat(), WASI_AHEAD))
}

/// As [`wasi_patch_ahead`], and importing `wasi:random/insecure@0.2.99` with a function no
/// WASI 0.2 host has (`get-insecure-random-u128`) beside one it has.
pub fn wasi_unknown_function() -> Vec<u8> {
    let wat = with_wasi_version(&hello_wat(), WASI_AHEAD);
    assemble(&with_import(
        &wat,
        "wasi:random/insecure@0.2.99",
        r#"(export "get-insecure-random-u64" (func (result u64)))
           (export "get-insecure-random-u128" (func (result (tuple u64 u64))))"#,
    ))
}

/// `hello`, importing every WASI interface at 0.3.0: another 0.x minor, another class.
pub fn wasi_other_minor() -> Vec<u8> {
    assemble(&with_wasi_version(&hello_wat(), "0.3.0"))
}

/// `hello`, importing WASI as the 0.2.0 release candidate early toolchains targeted.
pub fn wasi_pre_release() -> Vec<u8> {
    assemble(&with_wasi_version(&hello_wat(), "0.2.0-rc-2023-11-10"))
}

/// `hello`, importing `wasi:random/insecure@0.2.12` whose `get-insecure-random-u64` returns a
/// `u32` (the host's returns `u64`).
pub fn wasi_retyped() -> Vec<u8> {
    assemble(&with_import(
        &hello_wat(),
        "wasi:random/insecure@0.2.12",
        r#"(export "get-insecure-random-u64" (func (result u32)))"#,
    ))
}

/// `hello`, importing `driftless:kv/store@1.1.0` with `get: func(key: u32) -> string` (the
/// published 1.1.0 has `get: func(key: string) -> option<string>`).
pub fn kv_retyped() -> Vec<u8> {
    assemble(&with_import(
        &hello_wat(),
        "driftless:kv/store@1.1.0",
        r#"(export "get" (func (param "key" u32) (result string)))"#,
    ))
}

fn hello_wat() -> String {
    wasmprinter::print_bytes(bytes(HELLO)).expect("the hello example prints as WAT")
}

fn assemble(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap_or_else(|e| panic!("the edited component does not assemble: {e}"))
}

/// Every `"wasi:pkg/iface@V"` name (a string of its own: an import name, or a core module
/// import of it) with `V` replaced by `version`.
fn with_wasi_version(wat: &str, version: &str) -> String {
    let mut out = String::with_capacity(wat.len());
    let mut rest = wat;
    while let Some(at) = rest.find("\"wasi:") {
        out.push_str(&rest[..at]);
        let name_end = at + 1 + rest[at + 1..].find('"').expect("a closed string");
        let name = &rest[at + 1..name_end];
        match name.split_once('@') {
            Some((iface, _)) => out.push_str(&format!("\"{iface}@{version}\"")),
            None => out.push_str(&rest[at..=name_end]),
        }
        rest = &rest[name_end + 1..];
    }
    out.push_str(rest);
    assert_ne!(out, wat, "hello imports no WASI interface to rewrite");
    out
}

/// The component with one more (unused) instance import, `name` with `exports`, appended
/// after everything else so no index moves.
fn with_import(wat: &str, name: &str, exports: &str) -> String {
    let interface = name.split('@').next().expect("a name");
    assert!(
        !wat.contains(&format!("\"{interface}@")),
        "hello already imports {interface}: pick another interface"
    );
    let body = wat.trim_end();
    let body = body.strip_suffix(')').expect("a component ends with `)`");
    format!("{body}\n  (import \"{name}\" (instance {exports}))\n)\n")
}
