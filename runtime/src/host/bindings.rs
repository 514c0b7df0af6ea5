//! Host-side bindings generated from `wit/` for every module version this build implements.
//! `runtime/wit/deps` is a link to the top-level `wit/`, so every package version there is in
//! the resolve; the world in `runtime/wit/host.wit` names the ones this build implements.
//! Module names carry version suffixes (`kv1_0_0`, `kv1_1_0`, `kv2_0_0`) because several
//! versions of `driftless:kv` live in one resolve.

wasmtime::component::bindgen!({
    path: "wit",
    world: "driftless:host/host",
    imports: { default: async | trappable },
    exports: { default: async },
});
