-- token-service schema, version 3: account security (SPEC §4). Conventions as
-- in 0001-store.sql.
--
-- - Pending enrollments expire (PENDING_ENROLLMENT_TTL_SECONDS): an expiry
--   column on authenticators, checked wherever an authenticator is read and
--   swept like every other expiry; activation clears it.
-- - A cap on one user's sessions (MAX_SESSIONS_PER_USER): a login beyond it
--   revokes the user's oldest families in the same step.
-- - Revoking every session of a user is bounded work however many families
--   the user holds: one statement marks them all revoked (a per-user
--   threshold on a sequence number every family gets at creation), and the
--   rows go in batches afterwards (ts_drop_revoked_families).

-- ---------------------------------------------------------------- pending enrollments

-- NULL: durable (an active authenticator, or one enrolled before this version).
ALTER TABLE authenticators ADD COLUMN expires_at bigint;
CREATE INDEX authenticators_expires_at ON authenticators (expires_at)
  WHERE expires_at IS NOT NULL;

-- The authenticator read by a verify: an expired pending one is absent.
CREATE OR REPLACE FUNCTION ts_begin_verify(
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

  -- 4. The authenticator (active, or the latest pending one that has not
  --    expired), if any.
  outcome := 'ready';
  SELECT a.id, a.secret, a.active, a.last_step INTO id, secret, active, last_step
  FROM authenticators a
  WHERE a.user_id = p_user AND (a.expires_at IS NULL OR a.expires_at > p_now);
END
$$;

CREATE OR REPLACE FUNCTION ts_commit_otp(
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
  --    An expired pending one is gone.
  SELECT * INTO v_authenticator FROM authenticators a WHERE a.user_id = p_user;
  IF NOT FOUND OR v_authenticator.id <> p_authenticator_id
     OR (v_authenticator.expires_at IS NOT NULL AND v_authenticator.expires_at <= p_now) THEN
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
  -- An activated authenticator is durable (the pending one expired).
  UPDATE authenticators SET last_step = p_step, active = true, expires_at = NULL
  WHERE user_id = p_user;
  PERFORM ts_user_give_back(p_user, p_now, p_refill);
  IF p_address IS NOT NULL THEN
    PERFORM ts_address_give_back(p_address, p_now, p_address_refill);
  END IF;
  RETURN 'committed';
END
$$;

-- Store.associatePending. outcome 0 (already enrolled) | 1 (pending created)
-- | 2 (pending created and the recovery code stored: the user's first);
-- replaced: a live pending authenticator was replaced (an expired one does
-- not count). p_expires_at NULL: the pending authenticator does not expire.
DROP FUNCTION ts_associate_pending(text, text, text, text);
CREATE FUNCTION ts_associate_pending(
  p_user text, p_id text, p_secret text, p_recovery_code_hash text,
  p_now bigint, p_expires_at bigint,
  OUT outcome integer, OUT replaced boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_earlier authenticators%ROWTYPE;
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 1. Refused while an active authenticator exists; an expired pending one
  --    is gone.
  SELECT * INTO v_earlier FROM authenticators a WHERE a.user_id = p_user;
  IF FOUND AND v_earlier.active THEN
    outcome := 0;
    replaced := false;
    RETURN;
  END IF;
  replaced := FOUND AND (v_earlier.expires_at IS NULL OR v_earlier.expires_at > p_now);

  -- 2. Replace any earlier pending authenticator.
  INSERT INTO authenticators (user_id, id, secret, active, last_step, expires_at)
  VALUES (p_user, p_id, p_secret, false, -1, p_expires_at)
  ON CONFLICT (user_id) DO UPDATE
    SET id = EXCLUDED.id, secret = EXCLUDED.secret, active = false, last_step = -1,
        expires_at = EXCLUDED.expires_at;

  -- 3. The recovery code is stored only on the user's first association.
  INSERT INTO recovery_codes (user_id, code_hash) VALUES (p_user, p_recovery_code_hash)
  ON CONFLICT (user_id) DO NOTHING;
  outcome := CASE WHEN FOUND THEN 2 ELSE 1 END;
END
$$;

-- Store.deleteAuthenticator: only if the id still matches (and a pending
-- one has not expired). The recovery code is kept.
DROP FUNCTION ts_delete_authenticator(text, text);
CREATE FUNCTION ts_delete_authenticator(p_user text, p_id text, p_now bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_expires_at bigint;
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM authenticators WHERE user_id = p_user AND id = p_id
  RETURNING expires_at INTO v_expires_at;
  RETURN FOUND AND (v_expires_at IS NULL OR v_expires_at > p_now);
END
$$;

-- ---------------------------------------------------------------- sessions

-- Every family gets a number from one sequence at creation. Steps of one user
-- run under the user's lock, so a family created after a revocation always
-- has a greater number than the revocation's threshold.
CREATE SEQUENCE refresh_token_family_seq;
ALTER TABLE refresh_token_families
  ADD COLUMN seq bigint NOT NULL DEFAULT nextval('refresh_token_family_seq');

-- ts_revoke_user_families' threshold: the user's families numbered below it
-- are revoked (they answer as unknown) until ts_drop_revoked_families has
-- deleted them; then the row goes too.
CREATE TABLE refresh_token_revocations (
  user_id text PRIMARY KEY,
  revoked_below bigint NOT NULL
);

-- The user's threshold (0: nothing revoked).
CREATE FUNCTION ts_revoked_below(p_user text)
RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT r.revoked_below FROM refresh_token_revocations r WHERE r.user_id = p_user), 0)
$$;

CREATE FUNCTION ts_family_revoked(p_user text, p_seq bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT p_seq < ts_revoked_below(p_user)
$$;

-- SessionStore.createFamily: a family whose only live token is p_hash. At
-- most p_max live families per user (NULL: no cap): beyond it the oldest go
-- in the same step — the ones that end first (least recently used for an
-- idle lifetime), families without a limit last, then by start — at most 100
-- a step, so a user far above the cap (from before it) converges over a few
-- logins instead of making one login long. Returns how many were revoked.
DROP FUNCTION ts_create_family(text, text, text, bigint, bigint, bigint);
CREATE FUNCTION ts_create_family(
  p_user text, p_family text, p_hash text, p_now bigint, p_absolute bigint, p_idle bigint,
  p_max integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_evicted integer := 0;
  v_live integer;
  v_below bigint;
BEGIN
  PERFORM ts_lock_user(p_user);
  IF p_max IS NOT NULL THEN
    v_below := ts_revoked_below(p_user);
    SELECT count(*) INTO v_live FROM refresh_token_families f
    WHERE f.user_id = p_user AND (f.expires_at IS NULL OR f.expires_at > p_now)
      AND f.seq >= v_below;
    IF v_live >= p_max THEN
      DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id IN (
        SELECT f.family_id FROM refresh_token_families f
        WHERE f.user_id = p_user AND (f.expires_at IS NULL OR f.expires_at > p_now)
          AND f.seq >= v_below
        ORDER BY f.expires_at ASC NULLS LAST, f.started_at ASC
        LIMIT least(v_live - p_max + 1, 100));
      GET DIAGNOSTICS v_evicted = ROW_COUNT;
    END IF;
  END IF;
  INSERT INTO refresh_token_families AS f
    (user_id, family_id, live, previous, previous_at, started_at, last_used_at, expires_at)
  VALUES (p_user, p_family, ARRAY[p_hash], NULL, 0, p_now, p_now,
          ts_family_deadline(p_now, p_now, p_absolute, p_idle))
  ON CONFLICT (user_id, family_id) DO UPDATE
    SET live = EXCLUDED.live, previous = NULL, previous_at = 0, started_at = p_now,
        last_used_at = p_now, expires_at = EXCLUDED.expires_at,
        seq = nextval('refresh_token_family_seq');
  RETURN v_evicted;
END
$$;

-- Families of a revoked generation answer as unknown.
CREATE OR REPLACE FUNCTION ts_exchange(
  p_user text, p_family text, p_presented text, p_successor text, p_now bigint,
  p_rotating boolean, p_leeway bigint, p_absolute bigint, p_idle bigint,
  p_proof bytea, p_proof_expires_at bigint, p_max_live integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  f refresh_token_families%ROWTYPE;
  v_deadline bigint;
  v_outcome text;
BEGIN
  PERFORM ts_lock_user(p_user);

  -- 0. A replayed DPoP proof changes nothing.
  IF p_proof IS NOT NULL AND ts_first_use(p_proof, p_now, p_proof_expires_at) IS NULL THEN
    RETURN 'proof_replayed';
  END IF;

  -- 1. The family: unknown and revoked ones are gone; an expired one is
  --    deleted now (its expiry is a ceiling: the lifetimes may have shrunk).
  SELECT * INTO f FROM refresh_token_families t
  WHERE t.user_id = p_user AND t.family_id = p_family;
  IF NOT FOUND THEN
    RETURN 'invalid';
  END IF;
  -- A family of a revoked generation (ts_revoke_user_families) is gone,
  -- though its row may wait for ts_drop_revoked_families.
  IF ts_family_revoked(p_user, f.seq) THEN
    DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id = p_family;
    RETURN 'invalid';
  END IF;
  v_deadline := ts_family_deadline(f.started_at, f.last_used_at, p_absolute, p_idle);
  IF (f.expires_at IS NOT NULL AND f.expires_at <= p_now)
     OR (v_deadline IS NOT NULL AND p_now >= v_deadline) THEN
    DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id = p_family;
    RETURN 'invalid';
  END IF;

  -- 2. What the presented token is.
  IF p_rotating THEN
    IF p_presented = ANY (f.live) THEN
      f.live := ARRAY[p_successor];
      f.previous := p_presented;
      f.previous_at := p_now;
      v_outcome := 'rotated';
    ELSIF f.previous = p_presented AND p_leeway > 0 AND p_now - f.previous_at <= p_leeway THEN
      -- Slices are clamped: this keeps the newest p_max_live - 1.
      f.live := f.live[array_length(f.live, 1) - p_max_live + 2:] || p_successor;
      v_outcome := 'reissued';
    ELSE
      DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id = p_family;
      RETURN 'reused';
    END IF;
  ELSIF p_presented = ANY (f.live) THEN
    v_outcome := 'kept';
  ELSE
    RETURN 'invalid';
  END IF;

  -- 3. The idle clock restarted: the row expires at the new deadline.
  UPDATE refresh_token_families
  SET live = f.live, previous = f.previous, previous_at = f.previous_at, last_used_at = p_now,
      expires_at = ts_family_deadline(f.started_at, p_now, p_absolute, p_idle)
  WHERE user_id = p_user AND family_id = p_family;
  RETURN v_outcome;
END
$$;

-- SessionStore.revokeFamilyByToken: true when a live family was deleted.
CREATE OR REPLACE FUNCTION ts_revoke_family(p_user text, p_family text, p_now bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_expires_at bigint;
  v_seq bigint;
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id = p_family
  RETURNING expires_at, seq INTO v_expires_at, v_seq;
  RETURN FOUND AND (v_expires_at IS NULL OR v_expires_at > p_now)
    AND NOT ts_family_revoked(p_user, v_seq);
END
$$;

-- SessionStore.revokeUserFamilies, step 1: every family of the user is
-- revoked at once by raising the user's threshold (one row), and the first
-- p_batch rows are deleted. revoked: how many live families were revoked
-- (one count over the user's index range; no row is written per family);
-- more: rows are left for ts_drop_revoked_families.
DROP FUNCTION ts_revoke_user_families(text, bigint);
CREATE FUNCTION ts_revoke_user_families(
  p_user text, p_now bigint, p_batch integer, OUT revoked integer, OUT more boolean)
LANGUAGE plpgsql AS $$
DECLARE
  v_below bigint;
BEGIN
  PERFORM ts_lock_user(p_user);
  more := false;
  v_below := ts_revoked_below(p_user);
  SELECT count(*) INTO revoked FROM refresh_token_families f
  WHERE f.user_id = p_user AND (f.expires_at IS NULL OR f.expires_at > p_now)
    AND f.seq >= v_below;
  IF NOT EXISTS (SELECT 1 FROM refresh_token_families f WHERE f.user_id = p_user) THEN
    RETURN;
  END IF;
  INSERT INTO refresh_token_revocations AS r (user_id, revoked_below)
  VALUES (p_user, nextval('refresh_token_family_seq'))
  ON CONFLICT (user_id) DO UPDATE SET revoked_below = EXCLUDED.revoked_below;
  more := ts_drop_revoked_families(p_user, p_batch) >= p_batch;
END
$$;

-- SessionStore.revokeUserFamilies, the following steps: deletes at most
-- p_limit revoked rows of the user; once none is left, the threshold row
-- goes too. Returns how many rows were deleted (fewer than p_limit: done).
CREATE FUNCTION ts_drop_revoked_families(p_user text, p_limit integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_below bigint;
  v_deleted integer;
BEGIN
  PERFORM ts_lock_user(p_user);
  SELECT revoked_below INTO v_below FROM refresh_token_revocations WHERE user_id = p_user;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id IN (
    SELECT f.family_id FROM refresh_token_families f
    WHERE f.user_id = p_user AND f.seq < v_below LIMIT p_limit);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  IF v_deleted < p_limit THEN
    DELETE FROM refresh_token_revocations WHERE user_id = p_user;
  END IF;
  RETURN v_deleted;
END
$$;

-- ---------------------------------------------------------------- expiry

-- ts_sweep learns the pending authenticators.
CREATE OR REPLACE FUNCTION ts_sweep(p_table text, p_before bigint, p_limit integer)
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
    WHEN 'refresh_token_families' THEN
      DELETE FROM refresh_token_families WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM refresh_token_families WHERE expires_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    WHEN 'authenticators' THEN
      -- Pending enrollments only: an active authenticator has no expiry.
      DELETE FROM authenticators WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM authenticators WHERE expires_at <= p_before
        LIMIT p_limit FOR UPDATE SKIP LOCKED));
    ELSE
      RAISE EXCEPTION 'ts_sweep: unknown table %', p_table;
  END CASE;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
