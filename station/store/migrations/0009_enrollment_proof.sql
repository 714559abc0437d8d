-- Enrollment proofs: the board no longer sends its code, only the code's 8-byte lookup and an
-- HMAC under a key K derived from the code (edge_agent/enroll_proof.py). The station finds a code
-- by the HMAC of its lookup and keeps K sealed (AES-256-GCM under a key derived from the CA key),
-- so a copy of the database alone neither names a live code nor holds a usable K.
-- Unused codes from before cannot be redeemed that way: they are dropped (used ones stay for audit).
DELETE FROM board_enrollment_codes WHERE used_at IS NULL;
ALTER TABLE board_enrollment_codes ADD COLUMN lookup_mac TEXT;  -- HMAC-SHA256 (code key) of the lookup
ALTER TABLE board_enrollment_codes ADD COLUMN sealed_key BLOB;  -- nonce || AES-GCM(K); NULL once used
CREATE UNIQUE INDEX board_enrollment_codes_lookup ON board_enrollment_codes (lookup_mac)
    WHERE lookup_mac IS NOT NULL;
