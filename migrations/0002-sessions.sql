-- token-service schema, version 2: refresh-token families, the SessionStore
-- (src/store/session-store.ts) on PostgreSQL. Conventions as in 0001-store.sql;
-- the rules are those of the Lua scripts in src/store/session-scripts.ts.

-- ---------------------------------------------------------------- sessions

-- One login's session. Only keyed hashes of refresh tokens are stored, never
-- a token. A revoked family is deleted: it then answers as an unknown one.
CREATE TABLE refresh_token_families (
  user_id text NOT NULL,
  family_id text NOT NULL,
  -- Live token hashes, oldest first (normally one; a leeway re-exchange adds one).
  live text[] NOT NULL,
  -- The immediately previous token and when it was first exchanged.
  previous text,
  previous_at bigint NOT NULL DEFAULT 0,
  started_at bigint NOT NULL,
  last_used_at bigint NOT NULL,
  -- The earlier of the absolute and the idle deadline; NULL: no limit.
  expires_at bigint,
  PRIMARY KEY (user_id, family_id)
);
CREATE INDEX refresh_token_families_expires_at ON refresh_token_families (expires_at)
  WHERE expires_at IS NOT NULL;

-- The earlier of start + absolute and last exchange + idle; NULL: no limit
-- (a lifetime of 0 means no limit).
CREATE FUNCTION ts_family_deadline(p_started bigint, p_last bigint, p_absolute bigint, p_idle bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN p_absolute > 0 AND p_idle > 0 THEN least(p_started + p_absolute, p_last + p_idle)
    WHEN p_absolute > 0 THEN p_started + p_absolute
    WHEN p_idle > 0 THEN p_last + p_idle
  END
$$;

-- SessionStore.createFamily: a family whose only live token is p_hash.
CREATE FUNCTION ts_create_family(
  p_user text, p_family text, p_hash text, p_now bigint, p_absolute bigint, p_idle bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ts_lock_user(p_user);
  INSERT INTO refresh_token_families AS f
    (user_id, family_id, live, previous, previous_at, started_at, last_used_at, expires_at)
  VALUES (p_user, p_family, ARRAY[p_hash], NULL, 0, p_now, p_now,
          ts_family_deadline(p_now, p_now, p_absolute, p_idle))
  ON CONFLICT (user_id, family_id) DO UPDATE
    SET live = EXCLUDED.live, previous = NULL, previous_at = 0, started_at = p_now,
        last_used_at = p_now, expires_at = EXCLUDED.expires_at;
END
$$;

-- SessionStore.exchange — what a presented token means, in one step.
-- Returns 'proof_replayed' | 'invalid' | 'rotated' | 'reissued' | 'kept' | 'reused'.
-- The reuse rule is EXCHANGE_LUA's (src/store/session-scripts.ts): a live
-- token is exchanged once; the previous one again only within the leeway of
-- its first exchange (the window never extends itself; at most p_max_live
-- live tokens, the oldest dropped); any other token of the family revokes
-- the whole family. Non-rotating clients keep their one live token.
CREATE FUNCTION ts_exchange(
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
CREATE FUNCTION ts_revoke_family(p_user text, p_family text, p_now bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_expires_at bigint;
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id = p_family
  RETURNING expires_at INTO v_expires_at;
  RETURN FOUND AND (v_expires_at IS NULL OR v_expires_at > p_now);
END
$$;

-- SessionStore.revokeUserFamilies: every family of the user (the primary
-- key's prefix: an index range, bounded by the user's live families plus
-- expired ones not yet swept). Returns how many were live.
CREATE FUNCTION ts_revoke_user_families(p_user text, p_now bigint)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_live integer;
BEGIN
  PERFORM ts_lock_user(p_user);
  WITH gone AS (
    DELETE FROM refresh_token_families WHERE user_id = p_user RETURNING expires_at
  )
  SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > p_now) INTO v_live FROM gone;
  RETURN v_live;
END
$$;

-- ---------------------------------------------------------------- expiry

-- ts_sweep (0001) learns the families' table.
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
    ELSE
      RAISE EXCEPTION 'ts_sweep: unknown table %', p_table;
  END CASE;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
