pub fn _x() { let _ = wasmtime::Engine::default(); let _ = wasmtime_wasi::WasiCtx::builder(); }
