"""WAT sources of the guest modules the runtime tests run (built with wasmtime.wat2wasm, no toolchain).

`APP` is one module with an entry point per scenario: a bump `alloc` from 1024, `$pack` for the
(ptr << 32 | len) result, and `$num`, which writes an i32 as JSON text at 512..600 and returns it."""

from __future__ import annotations

_IMPORTS = r"""
  (import "firefly" "log" (func $log (param i32 i32 i32)))
  (import "firefly" "clock_ms" (func $clock_ms (result i64)))
  (import "firefly" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "firefly" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
  (import "firefly" "publish" (func $publish (param i32 i32) (result i32)))
  (import "firefly" "mesh_send" (func $mesh_send (param i32 i32) (result i32)))
  (import "firefly" "board_telemetry" (func $board_telemetry (param i32 i32 i32 i32) (result i32)))
  (import "firefly" "board_command" (func $board_command (param i32 i32 i32 i32) (result i32)))
"""

_RUNTIME = r"""
  (global $bump (mut i32) (i32.const 1024))
  (global $calls (mut i32) (i32.const 0))
  (func $alloc (export "alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $size)))
    (local.get $p))
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func $num (param $v i32) (result i64)
    (local $p i32) (local $neg i32) (local $u i32)
    (local.set $p (i32.const 600))
    (local.set $neg (i32.lt_s (local.get $v) (i32.const 0)))
    (local.set $u (select (i32.sub (i32.const 0) (local.get $v)) (local.get $v) (local.get $neg)))
    (loop $digits
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $u) (i32.const 10))))
      (local.set $u (i32.div_u (local.get $u) (i32.const 10)))
      (br_if $digits (local.get $u)))
    (if (local.get $neg) (then
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.const 45))))
    (call $pack (local.get $p) (i32.sub (i32.const 600) (local.get $p))))
"""

APP = rf"""
(module
  {_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 16) "{{\"ok\":true}}")
  (data (i32.const 32) "not json")
  (data (i32.const 100) "k")
  (data (i32.const 200) "board-1")
  (data (i32.const 220) "nope")
  {_RUNTIME}
  (func (export "echo") (param $p i32) (param $l i32) (result i64) (call $pack (local.get $p) (local.get $l)))
  (func (export "ok") (param i32 i32) (result i64) (call $pack (i32.const 16) (i32.const 11)))
  (func (export "nothing") (param i32 i32) (result i64) (i64.const 0))
  (func (export "calls") (param i32 i32) (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $num (global.get $calls)))
  (func (export "trap") (param i32 i32) (result i64) unreachable)
  (func (export "spin") (param i32 i32) (result i64) (loop $forever (br $forever)) (i64.const 0))
  (func (export "bomb") (param i32 i32) (result i64)
    (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable)
  (func (export "bad_out") (param i32 i32) (result i64) (call $pack (i32.const 65000) (i32.const 10000)))
  (func (export "huge_out") (param i32 i32) (result i64) (i64.const -1))
  (func (export "not_json") (param i32 i32) (result i64) (call $pack (i32.const 32) (i32.const 8)))
  (func (export "log_all") (param $p i32) (param $l i32) (result i64)
    (call $log (i32.const 0) (local.get $p) (local.get $l))
    (call $log (i32.const 1) (local.get $p) (local.get $l))
    (call $log (i32.const 2) (local.get $p) (local.get $l))
    (call $log (i32.const 3) (local.get $p) (local.get $l))
    (call $log (i32.const 9) (local.get $p) (local.get $l))
    (i64.const 0))
  (func (export "log_long") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const 0) (i32.const 5000)) (i64.const 0))
  (func (export "log_garbage") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const -16) (i32.const 100)) (i64.const 0))
  (func (export "log_past_end") (param i32 i32) (result i64)
    (call $log (i32.const 1) (i32.const 65500) (i32.const 100)) (i64.const 0))
  (func (export "clock_s") (param i32 i32) (result i64)
    (call $num (i32.wrap_i64 (i64.div_u (call $clock_ms) (i64.const 1000)))))
  (func (export "kv_put") (param $p i32) (param $l i32) (result i64)
    (call $num (call $kv_put (i32.const 100) (i32.const 1) (local.get $p) (local.get $l))))
  (func (export "kv_put_long_key") (param $p i32) (param $l i32) (result i64)
    (call $num (call $kv_put (i32.const 100) (i32.const 200) (local.get $p) (local.get $l))))
  (func (export "kv_get_small") (param i32 i32) (result i64)
    (call $num (call $kv_get (i32.const 100) (i32.const 1) (i32.const 2048) (i32.const 4))))
  (func (export "kv_get_retry") (param i32 i32) (result i64)
    (local $n i32) (local $buf i32)
    (local.set $n (call $kv_get (i32.const 100) (i32.const 1) (i32.const 2048) (i32.const 4)))
    (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (call $num (local.get $n)))))
    (if (i32.le_s (local.get $n) (i32.const 4)) (then (return (call $pack (i32.const 2048) (local.get $n)))))
    (local.set $buf (call $alloc (local.get $n)))
    (local.set $n (call $kv_get (i32.const 100) (i32.const 1) (local.get $buf) (local.get $n)))
    (call $pack (local.get $buf) (local.get $n)))
  (func (export "kv_get_bad_buffer") (param i32 i32) (result i64)
    (call $num (call $kv_get (i32.const 100) (i32.const 1) (i32.const 65530) (i32.const 100))))
  (func (export "publish") (param $p i32) (param $l i32) (result i64)
    (call $num (call $publish (local.get $p) (local.get $l))))
  (func (export "mesh") (param $p i32) (param $l i32) (result i64)
    (call $num (call $mesh_send (local.get $p) (local.get $l))))
  (func $telemetry (param $id i32) (param $len i32) (result i64)
    (local $n i32)
    (local.set $n (call $board_telemetry (local.get $id) (local.get $len) (i32.const 2048) (i32.const 1024)))
    (if (result i64) (i32.lt_s (local.get $n) (i32.const 0))
      (then (call $num (local.get $n)))
      (else (call $pack (i32.const 2048) (local.get $n)))))
  (func (export "telemetry") (param i32 i32) (result i64) (call $telemetry (i32.const 200) (i32.const 7)))
  (func (export "telemetry_none") (param i32 i32) (result i64) (call $telemetry (i32.const 220) (i32.const 4)))
  (func (export "command") (param $p i32) (param $l i32) (result i64)
    (local $n i32)
    (local.set $n (call $board_command (local.get $p) (local.get $l) (i32.const 2048) (i32.const 1024)))
    (if (result i64) (i32.lt_s (local.get $n) (i32.const 0))
      (then (call $num (local.get $n)))
      (else (call $pack (i32.const 2048) (local.get $n)))))
)
"""

# Needs more memory (4 MiB initial) than the default 2 MiB limit.
BIG_MEMORY = rf"""
(module
  (memory (export "memory") 64)
  {_RUNTIME}
  (func (export "echo") (param $p i32) (param $l i32) (result i64) (call $pack (local.get $p) (local.get $l)))
)
"""

# Imports nothing: runs with no capability granted.
NO_IMPORTS = rf"""
(module
  (memory (export "memory") 1)
  {_RUNTIME}
  (func (export "echo") (param $p i32) (param $l i32) (result i64) (call $pack (local.get $p) (local.get $l)))
)
"""

UNKNOWN_IMPORT = r"""
(module
  (import "env" "abort" (func (param i32)))
  (memory (export "memory") 1)
)
"""

WRONG_IMPORT_TYPE = r"""
(module
  (import "firefly" "log" (func (param i32 i32)))
  (memory (export "memory") 1)
)
"""
