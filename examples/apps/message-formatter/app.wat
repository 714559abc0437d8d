;; message-formatter: turn a text into a mesh message: "[TAG] text", at most 233 bytes of UTF-8
;; (a Meshtastic text payload), cut at a character boundary with "…" when too long.
;;
;; Entry point `format(ptr, len) -> i64` (host API v1 ABI, see docs/wasm-apps.md).
;; Input: {"text": "...", "send": true}: the FIRST key "text" must hold a JSON string (escapes,
;; \uXXXX and surrogate pairs are decoded); "send": true (optional) also queues the message
;; with mesh_send({"text": ...}) to the default destination (broadcast).
;; Tag: kv key "tag" (1-16 printable ASCII bytes), default "FF".
;; Output: {"text":"[FF] ...","bytes":N,"truncated":false,"sent":false}, where bytes is the
;;   UTF-8 length of text; or {"error":"input needs a text string"}.
;; A refused mesh_send (rate limit, bad input) is logged as a warning and reported "sent":false.
;; Entry point `health` returns {"ok":true,"app":"message-formatter"}.
;;
;; Memory: constant strings at 64..1535, each slot = one length byte then the bytes; a bump
;; allocator from 2048 (the station runs every call in a fresh instance: nothing is freed).
(module
  (import "firefly" "log" (func $log (param i32 i32 i32)))
  (import "firefly" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "firefly" "mesh_send" (func $mesh_send (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 2048))
  (global $out (mut i32) (i32.const 0))  ;; where $emit writes next

  (data (i32.const 64) "\06\"text\"")
  (data (i32.const 128) "\06\"send\"")
  (data (i32.const 192) "\03tag")
  (data (i32.const 256) "\02FF")
  (data (i32.const 320) "\08{\"text\":")
  (data (i32.const 384) "\09,\"bytes\":")
  (data (i32.const 448) "\0d,\"truncated\":")
  (data (i32.const 512) "\08,\"sent\":")
  (data (i32.const 576) "\04true")
  (data (i32.const 640) "\05false")
  (data (i32.const 704) "\25{\"error\":\"input needs a text string\"}")
  (data (i32.const 832) "\1dmesh_send refused the message")
  (data (i32.const 896) "\25{\"ok\":true,\"app\":\"message-formatter\"}")
  (data (i32.const 960) "\03\e2\80\a6")  ;; "…"
  (data (i32.const 1024) "\100123456789abcdef")

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

  (func $emit_bool (param $b i32)
    (if (local.get $b)
      (then (call $lit (i32.const 576)))
      (else (call $lit (i32.const 640)))))

  (func $emit_u32 (param $v i32)
    (local $digits i32) (local $n i32)
    (local.set $digits (i32.const 1536))  ;; scratch: written backwards from 1536 + 16
    (local.set $n (i32.const 0))
    (loop $next
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (i32.store8 (i32.sub (i32.add (local.get $digits) (i32.const 16)) (local.get $n))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $next (local.get $v)))
    (call $emit (i32.sub (i32.add (local.get $digits) (i32.const 16)) (local.get $n)) (local.get $n)))

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

  ;; ---- JSON strings

  (func $hex_value (param $b i32) (result i32)
    (if (i32.lt_u (i32.sub (local.get $b) (i32.const 48)) (i32.const 10))
      (then (return (i32.sub (local.get $b) (i32.const 48)))))
    (local.set $b (i32.or (local.get $b) (i32.const 32)))  ;; lower case
    (if (i32.lt_u (i32.sub (local.get $b) (i32.const 97)) (i32.const 6))
      (then (return (i32.sub (local.get $b) (i32.const 87)))))
    (i32.const -1))

  ;; The 4 hex digits at p as a number, or -1.
  (func $hex4 (param $p i32) (result i32)
    (local $v i32) (local $d i32) (local $i i32)
    (loop $next
      (local.set $d (call $hex_value (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
      (if (i32.lt_s (local.get $d) (i32.const 0)) (then (return (i32.const -1))))
      (local.set $v (i32.or (i32.shl (local.get $v) (i32.const 4)) (local.get $d)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 4))))
    (local.get $v))

  ;; The byte a one-letter escape stands for (\" \\ \/ \b \f \n \r \t), or -1.
  (func $unescape (param $b i32) (result i32)
    (if (i32.or (i32.or (i32.eq (local.get $b) (i32.const 34)) (i32.eq (local.get $b) (i32.const 92)))
                (i32.eq (local.get $b) (i32.const 47)))
      (then (return (local.get $b))))
    (if (i32.eq (local.get $b) (i32.const 98)) (then (return (i32.const 8))))
    (if (i32.eq (local.get $b) (i32.const 102)) (then (return (i32.const 12))))
    (if (i32.eq (local.get $b) (i32.const 110)) (then (return (i32.const 10))))
    (if (i32.eq (local.get $b) (i32.const 114)) (then (return (i32.const 13))))
    (if (i32.eq (local.get $b) (i32.const 116)) (then (return (i32.const 9))))
    (i32.const -1))

  ;; Write code point cp as UTF-8 at o; the number of bytes written.
  (func $put_utf8 (param $o i32) (param $cp i32) (result i32)
    (if (i32.lt_u (local.get $cp) (i32.const 0x80))
      (then (i32.store8 (local.get $o) (local.get $cp)) (return (i32.const 1))))
    (if (i32.lt_u (local.get $cp) (i32.const 0x800))
      (then
        (i32.store8 (local.get $o) (i32.or (i32.const 0xc0) (i32.shr_u (local.get $cp) (i32.const 6))))
        (i32.store8 offset=1 (local.get $o) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 63))))
        (return (i32.const 2))))
    (if (i32.lt_u (local.get $cp) (i32.const 0x10000))
      (then
        (i32.store8 (local.get $o) (i32.or (i32.const 0xe0) (i32.shr_u (local.get $cp) (i32.const 12))))
        (i32.store8 offset=1 (local.get $o)
                    (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 6)) (i32.const 63))))
        (i32.store8 offset=2 (local.get $o) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 63))))
        (return (i32.const 3))))
    (i32.store8 (local.get $o) (i32.or (i32.const 0xf0) (i32.shr_u (local.get $cp) (i32.const 18))))
    (i32.store8 offset=1 (local.get $o)
                (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 12)) (i32.const 63))))
    (i32.store8 offset=2 (local.get $o)
                (i32.or (i32.const 0x80) (i32.and (i32.shr_u (local.get $cp) (i32.const 6)) (i32.const 63))))
    (i32.store8 offset=3 (local.get $o) (i32.or (i32.const 0x80) (i32.and (local.get $cp) (i32.const 63))))
    (i32.const 4))

  ;; The code point of the \uXXXX escape(s) whose digits start at i (a lone surrogate: U+FFFD),
  ;; with the number of input bytes it used after the first 4 digits in global $extra.
  (global $extra (mut i32) (i32.const 0))
  (func $escaped_code_point (param $i i32) (param $end i32) (result i32)
    (local $cp i32) (local $low i32)
    (global.set $extra (i32.const 0))
    (local.set $cp (call $hex4 (local.get $i)))
    (if (i32.eq (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xd800))
      (then
        (if (i32.le_u (i32.add (local.get $i) (i32.const 10)) (local.get $end))
          (then
            (if (i32.eq (i32.load16_u offset=4 (local.get $i)) (i32.const 0x755c))  ;; "\u"
              (then
                (local.set $low (call $hex4 (i32.add (local.get $i) (i32.const 6))))
                (if (i32.eq (i32.and (local.get $low) (i32.const 0xfc00)) (i32.const 0xdc00))
                  (then
                    (global.set $extra (i32.const 6))
                    (return (i32.add (i32.const 0x10000)
                                     (i32.or (i32.shl (i32.sub (local.get $cp) (i32.const 0xd800)) (i32.const 10))
                                             (i32.sub (local.get $low) (i32.const 0xdc00)))))))))))
        (return (i32.const 0xfffd))))
    (if (i32.eq (i32.and (local.get $cp) (i32.const 0xfc00)) (i32.const 0xdc00))
      (then (return (i32.const 0xfffd))))
    (local.get $cp))

  ;; Decode the JSON string starting with the quote at p into UTF-8 at dst (never longer than
  ;; its escaped form); its length, or -1 when it is not a well-formed string.
  (func $decode_string (param $p i32) (param $end i32) (param $dst i32) (result i32)
    (local $i i32) (local $o i32) (local $b i32) (local $cp i32)
    (if (i32.ge_u (local.get $p) (local.get $end)) (then (return (i32.const -1))))
    (if (i32.ne (i32.load8_u (local.get $p)) (i32.const 34)) (then (return (i32.const -1))))
    (local.set $i (i32.add (local.get $p) (i32.const 1)))
    (local.set $o (local.get $dst))
    (loop $next
      (if (i32.ge_u (local.get $i) (local.get $end)) (then (return (i32.const -1))))
      (local.set $b (i32.load8_u (local.get $i)))
      (if (i32.eq (local.get $b) (i32.const 34))
        (then (return (i32.sub (local.get $o) (local.get $dst)))))
      (if (i32.ne (local.get $b) (i32.const 92))
        (then
          (i32.store8 (local.get $o) (local.get $b))
          (local.set $o (i32.add (local.get $o) (i32.const 1)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (if (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $end)) (then (return (i32.const -1))))
      (local.set $b (i32.load8_u offset=1 (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 2)))
      (if (i32.eq (local.get $b) (i32.const 117))  ;; 'u'
        (then
          (if (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $end)) (then (return (i32.const -1))))
          (local.set $cp (call $escaped_code_point (local.get $i) (local.get $end)))
          (if (i32.lt_s (local.get $cp) (i32.const 0)) (then (return (i32.const -1))))
          (local.set $i (i32.add (local.get $i) (i32.add (i32.const 4) (global.get $extra))))
          (local.set $o (i32.add (local.get $o) (call $put_utf8 (local.get $o) (local.get $cp))))
          (br $next)))
      (local.set $b (call $unescape (local.get $b)))
      (if (i32.lt_s (local.get $b) (i32.const 0)) (then (return (i32.const -1))))
      (i32.store8 (local.get $o) (local.get $b))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $next))
    (i32.const -1))

  ;; Emit bytes [p, p+n) as a JSON string: quotes, backslashes and control bytes escaped.
  (func $emit_json_string (param $p i32) (param $n i32)
    (local $end i32) (local $b i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (call $emit_byte (i32.const 34))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $b (i32.load8_u (local.get $p)))
        (if (i32.or (i32.eq (local.get $b) (i32.const 34)) (i32.eq (local.get $b) (i32.const 92)))
          (then (call $emit_byte (i32.const 92)) (call $emit_byte (local.get $b)))
          (else
            (if (i32.lt_u (local.get $b) (i32.const 32))
              (then
                (call $emit_byte (i32.const 92))
                (call $emit_byte (i32.const 117))
                (call $emit_byte (i32.const 48))
                (call $emit_byte (i32.const 48))
                (call $emit_byte (i32.load8_u offset=1025 (i32.shr_u (local.get $b) (i32.const 4))))
                (call $emit_byte (i32.load8_u offset=1025 (i32.and (local.get $b) (i32.const 15)))))
              (else (call $emit_byte (local.get $b))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $next)))
    (call $emit_byte (i32.const 34)))

  ;; 1 when [p, p+n) is 1-16 bytes of printable ASCII.
  (func $plain_tag (param $p i32) (param $n i32) (result i32)
    (local $end i32) (local $b i32)
    (if (i32.or (i32.lt_s (local.get $n) (i32.const 1)) (i32.gt_s (local.get $n) (i32.const 16)))
      (then (return (i32.const 0))))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (loop $next
      (local.set $b (i32.load8_u (local.get $p)))
      (if (i32.or (i32.lt_u (local.get $b) (i32.const 32)) (i32.gt_u (local.get $b) (i32.const 126)))
        (then (return (i32.const 0))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $p) (local.get $end))))
    (i32.const 1))

  ;; ---- entry points

  (func (export "format") (param $p i32) (param $n i32) (result i64)
    (local $end i32) (local $decoded i32) (local $msg i32) (local $kv i32) (local $request i32) (local $out i32)
    (local $v i32) (local $dl i32) (local $tag i32) (local $tag_n i32) (local $budget i32) (local $cut i32)
    (local $truncated i32) (local $msg_n i32) (local $request_n i32) (local $sent i32)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $decoded (call $alloc (i32.add (local.get $n) (i32.const 1))))
    (local.set $msg (call $alloc (i32.const 256)))
    (local.set $kv (call $alloc (i32.const 32)))
    (local.set $request (call $alloc (i32.const 1600)))  ;; {"text": + 233 bytes escaped at most 6x + "}
    (local.set $out (call $alloc (i32.const 1700)))
    (global.set $out (local.get $out))
    (local.set $dl (i32.const -1))
    (local.set $v (call $find_value (local.get $p) (local.get $n) (i32.const 64)))
    (if (i32.ge_s (local.get $v) (i32.const 0))
      (then (local.set $dl (call $decode_string (local.get $v) (local.get $end) (local.get $decoded)))))
    (if (i32.lt_s (local.get $dl) (i32.const 0))
      (then (call $lit (i32.const 704)) (return (call $result (local.get $out)))))
    ;; "[TAG] " + text, cut to 233 bytes at a character boundary
    (local.set $tag (i32.const 257))
    (local.set $tag_n (i32.const 2))
    (local.set $v (call $kv_get (i32.const 193) (i32.const 3) (local.get $kv) (i32.const 32)))
    (if (call $plain_tag (local.get $kv) (local.get $v))
      (then (local.set $tag (local.get $kv)) (local.set $tag_n (local.get $v))))
    (global.set $out (local.get $msg))
    (call $emit_byte (i32.const 91))
    (call $emit (local.get $tag) (local.get $tag_n))
    (call $emit_byte (i32.const 93))
    (call $emit_byte (i32.const 32))
    (local.set $budget (i32.sub (i32.const 233) (i32.sub (global.get $out) (local.get $msg))))
    (if (i32.gt_u (local.get $dl) (local.get $budget))
      (then
        (local.set $cut (i32.sub (local.get $budget) (i32.const 3)))
        (loop $back
          (if (i32.gt_s (local.get $cut) (i32.const 0))
            (then
              (if (i32.eq (i32.and (i32.load8_u (i32.add (local.get $decoded) (local.get $cut))) (i32.const 0xc0))
                          (i32.const 0x80))
                (then (local.set $cut (i32.sub (local.get $cut) (i32.const 1))) (br $back))))))
        (call $emit (local.get $decoded) (local.get $cut))
        (call $lit (i32.const 960))
        (local.set $truncated (i32.const 1)))
      (else (call $emit (local.get $decoded) (local.get $dl))))
    (local.set $msg_n (i32.sub (global.get $out) (local.get $msg)))
    ;; {"text":"..."}: the mesh_send request, and the start of the output
    (global.set $out (local.get $request))
    (call $lit (i32.const 320))
    (call $emit_json_string (local.get $msg) (local.get $msg_n))
    (call $emit_byte (i32.const 125))
    (local.set $request_n (i32.sub (global.get $out) (local.get $request)))
    (local.set $v (call $find_value (local.get $p) (local.get $n) (i32.const 128)))
    (if (i32.ge_s (local.get $v) (i32.const 0))
      (then
        (if (i32.le_u (i32.add (local.get $v) (i32.const 4)) (local.get $end))
          (then
            (if (call $same (local.get $v) (i32.const 577) (i32.const 4))
              (then
                (local.set $sent (i32.eqz (call $mesh_send (local.get $request) (local.get $request_n))))
                (if (i32.eqz (local.get $sent))
                  (then (call $log (i32.const 2) (i32.const 833) (i32.load8_u (i32.const 832)))))))))))
    (global.set $out (local.get $out))
    (call $emit (local.get $request) (i32.sub (local.get $request_n) (i32.const 1)))
    (call $lit (i32.const 384))
    (call $emit_u32 (local.get $msg_n))
    (call $lit (i32.const 448))
    (call $emit_bool (local.get $truncated))
    (call $lit (i32.const 512))
    (call $emit_bool (local.get $sent))
    (call $emit_byte (i32.const 125))
    (call $result (local.get $out)))

  (func (export "health") (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.const 897) (i64.const 32)) (i64.extend_i32_u (i32.load8_u (i32.const 896))))))
