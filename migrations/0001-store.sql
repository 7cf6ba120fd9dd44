-- token-service schema, version 1: the Store (src/store/store.ts) on PostgreSQL.
--
-- Applied by `token-service db migrate` (src/store/postgres-migrations.ts) in one
-- transaction, in the schema the connection's search_path names first (the
-- service's own database or schema: docs/operations.md "PostgreSQL").
--
-- One section per artefact: authenticators and recovery codes (durable), the
-- consumed-mfa_token marks, single-use values (DPoP and assertion jtis), the
-- failure buckets (per user, per client address); then the steps of a code
-- verification, which touch several of them at once.
--
-- Conventions (the Lua scripts' in src/store/redis-scripts.ts, line for line):
-- - Times are integer milliseconds since the Unix epoch from the caller's
--   clock (`p_now`); an expiry is absolute and written with the row by the
--   instance that wrote it. A row whose expiry has passed reads as absent
--   everywhere; src/store/postgres-sweeper.ts deletes it later.
-- - The store never sees a secret in clear: `secret` is sealed (AES-256-GCM)
--   and recovery codes are hashed by the service before they get here.
-- - Every function that reads a user's rows and then writes them first takes
--   that user's transaction lock (ts_lock_user). The steps of one user then
--   run one after the other, as the scripts of one Redis hash tag do, and a
--   check can never be overtaken between its read and its write. Rows shared
--   by many users (a DPoP proof's mark, an address's bucket) are changed with
--   one atomic statement each (INSERT … ON CONFLICT), always after the user's
--   lock and in the order proof, then address: no two steps wait for each
--   other in opposite orders.

-- ---------------------------------------------------------------- authenticators

-- One OTP authenticator per user: active, or pending (enrollment) until the
-- first verified code activates it. Durable.
CREATE TABLE authenticators (
  user_id text PRIMARY KEY,
  -- Without the `totp|` prefix.
  id text NOT NULL,
  -- Sealed by the service (src/mfa/authenticator-secret.ts); opaque here.
  secret text NOT NULL,
  active boolean NOT NULL,
  -- Last accepted TOTP time step (RFC 6238 §5.2 replay rule); -1: none yet.
  last_step bigint NOT NULL DEFAULT -1
);

-- The user's recovery code, as a keyed hash. Durable; kept when the
-- authenticator is deleted.
CREATE TABLE recovery_codes (
  user_id text PRIMARY KEY,
  code_hash text NOT NULL
);

-- ---------------------------------------------------------------- mfa_token marks

-- A consumed mfa_token (its `jti`), remembered until the token expires.
CREATE TABLE consumed_mfa_tokens (
  user_id text NOT NULL,
  token_id text NOT NULL,
  expires_at bigint NOT NULL,
  PRIMARY KEY (user_id, token_id)
);
CREATE INDEX consumed_mfa_tokens_expires_at ON consumed_mfa_tokens (expires_at);

-- ---------------------------------------------------------------- single-use values

-- DPoP proofs and client assertions used once (RFC 9449 §11.1, RFC 7523 §3):
-- `key` is SHA-256 of the scope and the value (src/store/postgres-statements.ts),
-- so a caller's jti of any length makes a row of fixed size.
CREATE TABLE single_use_values (
  key bytea PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX single_use_values_expires_at ON single_use_values (expires_at);

-- True when the value was not seen before (or only in an expired row, which
-- it replaces): one atomic statement, so of N concurrent callers exactly one
-- gets true.
CREATE FUNCTION ts_first_use(p_key bytea, p_now bigint, p_expires_at bigint)
RETURNS boolean LANGUAGE sql AS $$
  INSERT INTO single_use_values AS s (key, expires_at) VALUES (p_key, p_expires_at)
  ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE s.expires_at <= p_now
  RETURNING true
$$;

-- ---------------------------------------------------------------- failure buckets

-- The failure bucket (docs/api.md) as GCRA with one stored value, `full_at`:
-- the time at which the bucket is full again. With C = capacity and
-- T = refill period, tokens(now) = C - max(0, full_at - now) / T; a missing
-- row (or one whose full_at has passed) is a full bucket, so `full_at` is
-- also the row's expiry.
CREATE TABLE user_failure_buckets (
  user_id text PRIMARY KEY,
  full_at bigint NOT NULL
);
CREATE INDEX user_failure_buckets_full_at ON user_failure_buckets (full_at);

-- The same per client address (a keyed hash of it: the store never sees an address).
CREATE TABLE address_failure_buckets (
  address_id text PRIMARY KEY,
  full_at bigint NOT NULL
);
CREATE INDEX address_failure_buckets_full_at ON address_failure_buckets (full_at);

-- Whole seconds until one attempt refills (at least 1) when the bucket is
-- empty (fewer than one token left: full_at - now > (C - 1) * T), else 0.
CREATE FUNCTION ts_bucket_wait(p_full_at bigint, p_now bigint, p_capacity integer, p_refill bigint)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN excess > 0 THEN ((excess + 999) / 1000)::integer ELSE 0 END
  FROM (SELECT p_full_at - p_now - (p_capacity - 1) * p_refill AS excess) e
$$;

-- Takes one attempt from the address's bucket unless it is empty, in one
-- atomic statement (the row is shared by every user behind the address).
-- Returns the new full_at, or NULL when the bucket was empty (nothing taken).
CREATE FUNCTION ts_address_take(p_address text, p_now bigint, p_capacity integer, p_refill bigint)
RETURNS bigint LANGUAGE sql AS $$
  INSERT INTO address_failure_buckets AS a (address_id, full_at) VALUES (p_address, p_now + p_refill)
  ON CONFLICT (address_id) DO UPDATE SET full_at = greatest(a.full_at, p_now) + p_refill
    WHERE ts_bucket_wait(greatest(a.full_at, p_now), p_now, p_capacity, p_refill) = 0
  RETURNING full_at
$$;

-- The address bucket's wait, read without changing it (0 when full or absent).
CREATE FUNCTION ts_address_wait(p_address text, p_now bigint, p_capacity integer, p_refill bigint)
RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT ts_bucket_wait(greatest(a.full_at, p_now), p_now, p_capacity, p_refill)
     FROM address_failure_buckets a WHERE a.address_id = p_address), 0)
$$;

-- Gives one attempt back (a success does not drain the bucket); nothing when
-- the bucket is already full.
CREATE FUNCTION ts_user_give_back(p_user text, p_now bigint, p_refill bigint)
RETURNS void LANGUAGE sql AS $$
  UPDATE user_failure_buckets SET full_at = full_at - p_refill
  WHERE user_id = p_user AND full_at > p_now
$$;

CREATE FUNCTION ts_address_give_back(p_address text, p_now bigint, p_refill bigint)
RETURNS void LANGUAGE sql AS $$
  UPDATE address_failure_buckets SET full_at = full_at - p_refill
  WHERE address_id = p_address AND full_at > p_now
$$;

-- ---------------------------------------------------------------- the user's lock

-- A transaction lock on one user (released at commit): the row lock of rows
-- that may not exist yet. The two-key form keeps it apart from the
-- single-key lock of migrations; a hash collision between two users only
-- makes their steps wait for each other.
CREATE FUNCTION ts_lock_user(p_user text)
RETURNS void LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock(1953459045, hashtext(p_user))
$$;

-- ---------------------------------------------------------------- code verification

-- Store.beginVerify — round trip 1 of a verify ("charge first"), in order:
-- the DPoP proof recorded once (else 'proof_replayed'); the mfa_token not
-- consumed (else 'used'); the user's bucket and the address's (when given)
-- not empty (else 'locked' with the longer wait and, when the address's is
-- empty, `locked_by`; nothing taken); then one attempt taken from each and
-- the user's authenticator returned ('ready'; id NULL when none).
CREATE FUNCTION ts_begin_verify(
  p_user text, p_token text, p_now bigint, p_capacity integer, p_refill bigint,
  p_proof bytea, p_proof_expires_at bigint,
  p_address text, p_address_capacity integer, p_address_refill bigint,
  OUT outcome text, OUT retry_after integer, OUT locked_by text,
  OUT id text, OUT secret text, OUT active boolean, OUT last_step bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_full_at bigint;
  v_wait integer;
  v_address_wait integer;
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 0. A replayed DPoP proof (error row 11 comes before rows 6 and 8).
  IF p_proof IS NOT NULL AND ts_first_use(p_proof, p_now, p_proof_expires_at) IS NULL THEN
    outcome := 'proof_replayed';
    RETURN;
  END IF;

  -- 1. A consumed mfa_token stays consumed (first success wins).
  IF EXISTS (SELECT 1 FROM consumed_mfa_tokens c
             WHERE c.user_id = p_user AND c.token_id = p_token AND c.expires_at > p_now) THEN
    outcome := 'used';
    RETURN;
  END IF;

  -- 2. An empty bucket (the user's or the address's) refuses every code, the
  --    right one too; nothing changes.
  SELECT greatest(b.full_at, p_now) INTO v_full_at
  FROM user_failure_buckets b WHERE b.user_id = p_user;
  v_full_at := coalesce(v_full_at, p_now);
  v_wait := ts_bucket_wait(v_full_at, p_now, p_capacity, p_refill);
  IF v_wait > 0 THEN
    outcome := 'locked';
    v_address_wait := CASE WHEN p_address IS NULL THEN 0
      ELSE ts_address_wait(p_address, p_now, p_address_capacity, p_address_refill) END;
    retry_after := greatest(v_wait, v_address_wait);
    IF v_address_wait > 0 THEN locked_by := 'both'; END IF;
    RETURN;
  END IF;

  -- 3. Take one attempt from each; commitOtp gives them back on success, so a
  --    wrong code needs no second round trip. The address's goes first: it is
  --    the one that can still turn out empty (another user's step may have
  --    just taken its last attempt), and then nothing is taken at all.
  IF p_address IS NOT NULL
     AND ts_address_take(p_address, p_now, p_address_capacity, p_address_refill) IS NULL THEN
    outcome := 'locked';
    retry_after := ts_address_wait(p_address, p_now, p_address_capacity, p_address_refill);
    locked_by := 'address';
    RETURN;
  END IF;
  INSERT INTO user_failure_buckets AS b (user_id, full_at) VALUES (p_user, v_full_at + p_refill)
  ON CONFLICT (user_id) DO UPDATE SET full_at = EXCLUDED.full_at;

  -- 4. The authenticator (active, or the latest pending one), if any.
  outcome := 'ready';
  SELECT a.id, a.secret, a.active, a.last_step INTO id, secret, active, last_step
  FROM authenticators a WHERE a.user_id = p_user;
END
$$;

-- Store.commitOtp — round trip 2 of a successful verify; all or nothing.
-- Returns 'committed' | 'used' | 'changed' | 'replayed'.
CREATE FUNCTION ts_commit_otp(
  p_user text, p_token text, p_authenticator_id text, p_step bigint, p_now bigint,
  p_token_expires_at bigint, p_refill bigint, p_address text, p_address_refill bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_authenticator authenticators%ROWTYPE;
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 1. Concurrent successes with one mfa_token: only the first one commits.
  IF EXISTS (SELECT 1 FROM consumed_mfa_tokens c
             WHERE c.user_id = p_user AND c.token_id = p_token AND c.expires_at > p_now) THEN
    RETURN 'used';
  END IF;

  -- 2. The authenticator checked in beginVerify must still be the same one
  --    (not deleted, not replaced by a new pending enrollment).
  SELECT * INTO v_authenticator FROM authenticators a WHERE a.user_id = p_user;
  IF NOT FOUND OR v_authenticator.id <> p_authenticator_id THEN
    RETURN 'changed';
  END IF;

  -- 3. Replay guard (RFC 6238 §5.2): accept only a strictly greater step, so
  --    one code yields one token even across mfa_tokens.
  IF p_step <= v_authenticator.last_step THEN
    RETURN 'replayed';
  END IF;

  -- 4. Commit: consume the mfa_token until it expires, remember the step,
  --    activate a pending authenticator, give back the attempts taken earlier.
  INSERT INTO consumed_mfa_tokens (user_id, token_id, expires_at)
  VALUES (p_user, p_token, p_token_expires_at)
  ON CONFLICT (user_id, token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at;
  UPDATE authenticators SET last_step = p_step, active = true WHERE user_id = p_user;
  PERFORM ts_user_give_back(p_user, p_now, p_refill);
  IF p_address IS NOT NULL THEN
    PERFORM ts_address_give_back(p_address, p_now, p_address_refill);
  END IF;
  RETURN 'committed';
END
$$;

-- Store.redeemRecoveryCode — the recovery grant in one step.
-- Returns outcome 'proof_replayed' | 'used' | 'locked' (with retry_after,
-- locked_by) | 'invalid' | 'redeemed'.
CREATE FUNCTION ts_redeem_recovery_code(
  p_user text, p_token text, p_code_hash text, p_new_code_hash text, p_now bigint,
  p_token_expires_at bigint, p_capacity integer, p_refill bigint,
  p_proof bytea, p_proof_expires_at bigint,
  p_address text, p_address_capacity integer, p_address_refill bigint,
  OUT outcome text, OUT retry_after integer, OUT locked_by text)
LANGUAGE plpgsql AS $$
DECLARE
  v_full_at bigint;
  v_wait integer;
  v_address_wait integer := 0;
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 0. A replayed DPoP proof, as in ts_begin_verify.
  IF p_proof IS NOT NULL AND ts_first_use(p_proof, p_now, p_proof_expires_at) IS NULL THEN
    outcome := 'proof_replayed';
    RETURN;
  END IF;

  -- 1. A consumed mfa_token stays consumed.
  IF EXISTS (SELECT 1 FROM consumed_mfa_tokens c
             WHERE c.user_id = p_user AND c.token_id = p_token AND c.expires_at > p_now) THEN
    outcome := 'used';
    RETURN;
  END IF;

  -- 2. The failure buckets are shared with OTP verification (per user, and
  --    per client address).
  SELECT greatest(b.full_at, p_now) INTO v_full_at
  FROM user_failure_buckets b WHERE b.user_id = p_user;
  v_full_at := coalesce(v_full_at, p_now);
  v_wait := ts_bucket_wait(v_full_at, p_now, p_capacity, p_refill);
  IF p_address IS NOT NULL THEN
    v_address_wait := ts_address_wait(p_address, p_now, p_address_capacity, p_address_refill);
  END IF;
  IF v_wait > 0 OR v_address_wait > 0 THEN
    outcome := 'locked';
    retry_after := greatest(v_wait, v_address_wait);
    IF v_address_wait > 0 THEN
      locked_by := CASE WHEN v_wait > 0 THEN 'both' ELSE 'address' END;
    END IF;
    RETURN;
  END IF;

  -- 3. Compare hashes (never codes in clear). A match consumes the mfa_token
  --    and rotates the code (durable).
  UPDATE recovery_codes SET code_hash = p_new_code_hash
  WHERE user_id = p_user AND code_hash = p_code_hash;
  IF FOUND THEN
    INSERT INTO consumed_mfa_tokens (user_id, token_id, expires_at)
    VALUES (p_user, p_token, p_token_expires_at)
    ON CONFLICT (user_id, token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at;
    outcome := 'redeemed';
    RETURN;
  END IF;

  -- 4. A mismatch, or no code at all, costs one attempt from each bucket —
  --    none when the address's turned empty meanwhile (see ts_begin_verify).
  IF p_address IS NOT NULL
     AND ts_address_take(p_address, p_now, p_address_capacity, p_address_refill) IS NULL THEN
    outcome := 'locked';
    retry_after := ts_address_wait(p_address, p_now, p_address_capacity, p_address_refill);
    locked_by := 'address';
    RETURN;
  END IF;
  INSERT INTO user_failure_buckets AS b (user_id, full_at) VALUES (p_user, v_full_at + p_refill)
  ON CONFLICT (user_id) DO UPDATE SET full_at = EXCLUDED.full_at;
  outcome := 'invalid';
END
$$;

-- ---------------------------------------------------------------- enrollment

-- Store.associatePending. Returns 0 (already enrolled) | 1 (pending created)
-- | 2 (pending created and the recovery code stored: the user's first).
CREATE FUNCTION ts_associate_pending(
  p_user text, p_id text, p_secret text, p_recovery_code_hash text)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 1. Refused while an active authenticator exists.
  IF EXISTS (SELECT 1 FROM authenticators a WHERE a.user_id = p_user AND a.active) THEN
    RETURN 0;
  END IF;

  -- 2. Replace any earlier pending authenticator.
  INSERT INTO authenticators (user_id, id, secret, active, last_step)
  VALUES (p_user, p_id, p_secret, false, -1)
  ON CONFLICT (user_id) DO UPDATE
    SET id = EXCLUDED.id, secret = EXCLUDED.secret, active = false, last_step = -1;

  -- 3. The recovery code is stored only on the user's first association.
  INSERT INTO recovery_codes (user_id, code_hash) VALUES (p_user, p_recovery_code_hash)
  ON CONFLICT (user_id) DO NOTHING;
  RETURN CASE WHEN FOUND THEN 2 ELSE 1 END;
END
$$;

-- Store.deleteAuthenticator: only if the id still matches, so a stale delete
-- never removes a newer enrollment. The recovery code is kept.
CREATE FUNCTION ts_delete_authenticator(p_user text, p_id text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM authenticators WHERE user_id = p_user AND id = p_id;
  RETURN FOUND;
END
$$;

-- ---------------------------------------------------------------- expiry

-- Deletes at most p_limit rows of one table whose expiry is at or before
-- p_before, skipping rows another transaction holds: a short statement that
-- never waits, so every instance may run it at once
-- (src/store/postgres-sweeper.ts). Returns how many were deleted.
CREATE FUNCTION ts_sweep(p_table text, p_before bigint, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_deleted integer;
BEGIN
  CASE p_table
    WHEN 'consumed_mfa_tokens' THEN
      DELETE FROM consumed_mfa_tokens WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM consumed_mfa_tokens WHERE expires_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    WHEN 'single_use_values' THEN
      DELETE FROM single_use_values WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM single_use_values WHERE expires_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    WHEN 'user_failure_buckets' THEN
      DELETE FROM user_failure_buckets WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM user_failure_buckets WHERE full_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    WHEN 'address_failure_buckets' THEN
      DELETE FROM address_failure_buckets WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM address_failure_buckets WHERE full_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    ELSE
      RAISE EXCEPTION 'ts_sweep: unknown table %', p_table;
  END CASE;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
