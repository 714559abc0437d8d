;; telemetry-filter: raise an alert when a board's temperature is above a threshold.
;;
;; Entry point `on_telemetry(ptr, len) -> i64` (host API v1 ABI, see docs/wasm-apps.md).
;; Input: the telemetry JSON the station passes for a `board_telemetry` subscription, e.g.
;;   {"board_id": "esp32-a1", "values": {"temperature": 51.5, "battery": 3.9}, "at": 1700000000}
;; The app does not parse JSON in full: it takes the FIRST key "temperature" in the input and
;; reads its value as a plain decimal number (-12, 51.5; no exponent), to 1/1000 of a degree.
;; "board_id" is copied when it is a plain string of 1-64 bytes without escapes, else null.
;; Threshold: kv key "threshold" (a plain decimal number, as text), default 45.
;; Output: {"alert":true|false,"board_id":...,"temperature":51.5,"threshold":45}, or
;;   {"alert":false,"reason":"no numeric temperature field"}.
;; Above the threshold it also publishes {"kind":"temperature_alert","board_id":...,
;;   "temperature":...,"threshold":...} and logs a warning.
;; Entry point `health` returns {"ok":true,"app":"telemetry-filter"}.
;;
;; Memory: constant strings at 64..1023, each slot = one length byte then the bytes; a bump
;; allocator from 2048 (the station runs every call in a fresh instance: nothing is freed).
(module
  (import "firefly" "log" (func $log (param i32 i32 i32)))
  (import "firefly" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "firefly" "publish" (func $publish (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 2048))
  (global $out (mut i32) (i32.const 0))  ;; where $emit writes next

  (data (i32.const 64) "\0d\"temperature\"")
  (data (i32.const 128) "\0a\"board_id\"")
  (data (i32.const 192) "\09threshold")
  (data (i32.const 256) "\0245")
  (data (i32.const 320) "\0e{\"alert\":true,")
  (data (i32.const 384) "\0f{\"alert\":false,")
  (data (i32.const 448) "\1c{\"kind\":\"temperature_alert\",")
  (data (i32.const 512) "\0b\"board_id\":")
  (data (i32.const 576) "\0f,\"temperature\":")
  (data (i32.const 640) "\0d,\"threshold\":")
  (data (i32.const 704) "\04null")
  (data (i32.const 768) "\37{\"alert\":false,\"reason\":\"no numeric temperature field\"}")
  (data (i32.const 896) "\1btemperature above threshold")
  (data (i32.const 960) "\24{\"ok\":true,\"app\":\"telemetry-filter\"}")

  ;; ---- memory and output

  (func $alloc (export "alloc") (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.lt_s (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                                                       (i32.const 65535))
                                              (i32.const 16)))
                      (i32.const 0))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (func $emit (param $src i32) (param $len i32)
    (memory.copy (global.get $out) (local.get $src) (local.get $len))
    (global.set $out (i32.add (global.get $out) (local.get $len))))

  (func $emit_byte (param $b i32)
    (i32.store8 (global.get $out) (local.get $b))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))

  (func $lit (param $slot i32)
    (call $emit (i32.add (local.get $slot) (i32.const 1)) (i32.load8_u (local.get $slot))))

  (func $result (param $start i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $start)) (i64.const 32))
            (i64.extend_i32_u (i32.sub (global.get $out) (local.get $start)))))

  ;; ---- scanning

  (func $same (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func $skip_ws (param $i i32) (param $end i32) (result i32)
    (local $b i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $i)))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $b) (i32.const 32)) (i32.eq (local.get $b) (i32.const 9)))
                                      (i32.or (i32.eq (local.get $b) (i32.const 10)) (i32.eq (local.get $b) (i32.const 13))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))

  ;; Position of the value of the first `"key":` (the slot holds the quoted key) in [p, p+n), or -1.
  (func $find_value (param $p i32) (param $n i32) (param $slot i32) (result i32)
    (local $klen i32) (local $i i32) (local $end i32) (local $j i32)
    (local.set $klen (i32.load8_u (local.get $slot)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $i (local.get $p))
    (block $done
      (loop $scan
        (br_if $done (i32.gt_u (i32.add (local.get $i) (local.get $klen)) (local.get $end)))
        (if (call $same (local.get $i) (i32.add (local.get $slot) (i32.const 1)) (local.get $klen))
          (then
            (local.set $j (call $skip_ws (i32.add (local.get $i) (local.get $klen)) (local.get $end)))
            (if (i32.lt_u (local.get $j) (local.get $end))
              (then
                (if (i32.eq (i32.load8_u (local.get $j)) (i32.const 58))  ;; ':'
                  (then (return (call $skip_ws (i32.add (local.get $j) (i32.const 1)) (local.get $end)))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.const -1))

  (func $is_digit (param $i i32) (param $end i32) (result i32)
    (if (i32.ge_u (local.get $i) (local.get $end)) (then (return (i32.const 0))))
    (i32.lt_u (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)) (i32.const 10)))

  (func $byte_is (param $i i32) (param $end i32) (param $b i32) (result i32)
    (if (i32.ge_u (local.get $i) (local.get $end)) (then (return (i32.const 0))))
    (i32.eq (i32.load8_u (local.get $i)) (local.get $b)))

  ;; Length of a plain decimal number -?D+(.D+)? at p (0: none, an exponent, or over 20 bytes).
  (func $num_len (param $p i32) (param $end i32) (result i32)
    (local $i i32) (local $start i32)
    (local.set $i (local.get $p))
    (if (call $byte_is (local.get $i) (local.get $end) (i32.const 45))  ;; '-'
      (then (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (local.set $start (local.get $i))
    (loop $int
      (if (call $is_digit (local.get $i) (local.get $end))
        (then (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $int))))
    (if (i32.eq (local.get $i) (local.get $start)) (then (return (i32.const 0))))
    (if (call $byte_is (local.get $i) (local.get $end) (i32.const 46))  ;; '.'
      (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $start (local.get $i))
        (loop $frac
          (if (call $is_digit (local.get $i) (local.get $end))
            (then (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $frac))))
        (if (i32.eq (local.get $i) (local.get $start)) (then (return (i32.const 0))))))
    (if (i32.or (call $byte_is (local.get $i) (local.get $end) (i32.const 101))
                (call $byte_is (local.get $i) (local.get $end) (i32.const 69)))
      (then (return (i32.const 0))))
    (if (i32.gt_u (i32.sub (local.get $i) (local.get $p)) (i32.const 20)) (then (return (i32.const 0))))
    (i32.sub (local.get $i) (local.get $p)))

  ;; A number accepted by $num_len, in thousandths (digits past the third decimal are dropped).
  (func $parse_milli (param $p i32) (param $n i32) (result i64)
    (local $i i32) (local $end i32) (local $neg i32) (local $v i64) (local $scale i64)
    (local.set $i (local.get $p))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (if (call $byte_is (local.get $i) (local.get $end) (i32.const 45))
      (then (local.set $neg (i32.const 1)) (local.set $i (i32.add (local.get $i) (i32.const 1)))))
    (loop $int
      (if (call $is_digit (local.get $i) (local.get $end))
        (then
          (local.set $v (i64.add (i64.mul (local.get $v) (i64.const 10))
                                 (i64.extend_i32_u (i32.sub (i32.load8_u (local.get $i)) (i32.const 48)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $int))))
    (local.set $v (i64.mul (local.get $v) (i64.const 1000)))
    (if (call $byte_is (local.get $i) (local.get $end) (i32.const 46))
      (then
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (local.set $scale (i64.const 100))
        (loop $frac
          (if (i32.and (call $is_digit (local.get $i) (local.get $end)) (i64.ne (local.get $scale) (i64.const 0)))
            (then
              (local.set $v (i64.add (local.get $v)
                                     (i64.mul (local.get $scale)
                                              (i64.extend_i32_u (i32.sub (i32.load8_u (local.get $i)) (i32.const 48))))))
              (local.set $scale (i64.div_u (local.get $scale) (i64.const 10)))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $frac))))))
    (if (result i64) (local.get $neg)
      (then (i64.sub (i64.const 0) (local.get $v)))
      (else (local.get $v))))

  ;; "board_id" as given when it is a plain string of 1-64 bytes without escapes, else null.
  (func $emit_board_id (param $p i32) (param $n i32)
    (local $v i32) (local $j i32) (local $end i32) (local $b i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $v (call $find_value (local.get $p) (local.get $n) (i32.const 128)))
    (block $null
      (br_if $null (i32.lt_s (local.get $v) (i32.const 0)))
      (br_if $null (i32.eqz (call $byte_is (local.get $v) (local.get $end) (i32.const 34))))
      (local.set $j (i32.add (local.get $v) (i32.const 1)))
      (loop $next
        (br_if $null (i32.ge_u (local.get $j) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $j)))
        (if (i32.ne (local.get $b) (i32.const 34))
          (then
            (br_if $null (i32.or (i32.eq (local.get $b) (i32.const 92)) (i32.lt_u (local.get $b) (i32.const 32))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $next))))
      (local.set $n (i32.sub (local.get $j) (local.get $v)))  ;; bytes before the closing quote
      (br_if $null (i32.or (i32.lt_u (local.get $n) (i32.const 2)) (i32.gt_u (local.get $n) (i32.const 65))))
      (call $emit (local.get $v) (i32.add (local.get $n) (i32.const 1)))
      (return))
    (call $lit (i32.const 704)))

  ;; ---- entry points

  (func (export "on_telemetry") (param $p i32) (param $n i32) (result i64)
    (local $end i32) (local $start i32) (local $kv i32) (local $kl i32) (local $thr_p i32) (local $thr_n i32)
    (local $v i32) (local $vn i32) (local $alert i32) (local $rest i32) (local $done i32) (local $event i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $start (call $alloc (i32.const 512)))
    (local.set $kv (call $alloc (i32.const 32)))
    (global.set $out (local.get $start))
    (local.set $thr_p (i32.const 257))
    (local.set $thr_n (i32.const 2))
    (local.set $kl (call $kv_get (i32.const 193) (i32.const 9) (local.get $kv) (i32.const 32)))
    (if (i32.and (i32.gt_s (local.get $kl) (i32.const 0)) (i32.le_s (local.get $kl) (i32.const 32)))
      (then
        (if (i32.eq (call $num_len (local.get $kv) (i32.add (local.get $kv) (local.get $kl))) (local.get $kl))
          (then (local.set $thr_p (local.get $kv)) (local.set $thr_n (local.get $kl))))))
    (local.set $v (call $find_value (local.get $p) (local.get $n) (i32.const 64)))
    (if (i32.ge_s (local.get $v) (i32.const 0))
      (then (local.set $vn (call $num_len (local.get $v) (local.get $end)))))
    (if (i32.eqz (local.get $vn))
      (then
        (call $lit (i32.const 768))
        (return (call $result (local.get $start)))))
    (local.set $alert (i64.gt_s (call $parse_milli (local.get $v) (local.get $vn))
                                (call $parse_milli (local.get $thr_p) (local.get $thr_n))))
    (if (local.get $alert)
      (then (call $lit (i32.const 320)))
      (else (call $lit (i32.const 384))))
    (local.set $rest (global.get $out))
    (call $lit (i32.const 512))
    (call $emit_board_id (local.get $p) (local.get $n))
    (call $lit (i32.const 576))
    (call $emit (local.get $v) (local.get $vn))
    (call $lit (i32.const 640))
    (call $emit (local.get $thr_p) (local.get $thr_n))
    (call $emit_byte (i32.const 125))  ;; '}'
    (local.set $done (global.get $out))
    (if (local.get $alert)
      (then
        (local.set $event (global.get $out))
        (call $lit (i32.const 448))
        (call $emit (local.get $rest) (i32.sub (local.get $done) (local.get $rest)))
        (drop (call $publish (local.get $event) (i32.sub (global.get $out) (local.get $event))))
        (call $log (i32.const 2) (i32.const 897) (i32.load8_u (i32.const 896)))))
    (global.set $out (local.get $done))
    (call $result (local.get $start)))

  (func (export "health") (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.const 961) (i64.const 32)) (i64.extend_i32_u (i32.load8_u (i32.const 960))))))
