"""WebAssembly apps: signed, sandboxed modules that the station deploys and runs (docs/wasm-apps.md).

Import the modules themselves (station.wasm.service, .runner, .bundle, ...): this package re-exports
nothing, so that importing the apps service does not load wasmtime (about 20 MB) on a station
that runs no app."""
