//! Host-side bindings generated from `wit/` for every module version this build implements.
//! Module names carry version suffixes (`kv1_0_0`, `kv1_1_0`, `kv2_0_0`) because several
//! versions of `driftless:kv` live in one resolve.

wasmtime::component::bindgen!({
    path: [
        "../wit/job@1.0.0",
        "../wit/versioning@1.0.0",
        "../wit/kv@1.0.0",
        "../wit/kv@1.1.0",
        "../wit/kv@2.0.0",
        "wit",
    ],
    world: "driftless:host/host",
    imports: { default: async | trappable },
    exports: { default: async },
});
