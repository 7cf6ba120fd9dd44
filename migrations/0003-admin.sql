-- token-service schema, version 3: the administrator's steps on one user
-- (SPEC §3: ResetUserMfa, UnlockUser, DeleteUserData). Conventions as in
-- 0001-store.sql; the rules are those of the Lua scripts in
-- src/store/redis-admin-scripts.ts.

-- ---------------------------------------------------------------- ResetUserMfa

-- Store.resetUserFactors: the authenticator (active or pending) and the
-- recovery code go together, under the user's lock, so no verify sees one
-- without the other. Returns how many authenticators were removed.
CREATE FUNCTION ts_reset_user_factors(p_user text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_removed integer;
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM authenticators WHERE user_id = p_user;
  GET DIAGNOSTICS v_removed = ROW_COUNT;
  DELETE FROM recovery_codes WHERE user_id = p_user;
  RETURN v_removed;
END
$$;

-- ---------------------------------------------------------------- UnlockUser

-- Store.unlockUser: a missing bucket row is a full bucket.
CREATE FUNCTION ts_unlock_user(p_user text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM user_failure_buckets WHERE user_id = p_user;
END
$$;

-- ---------------------------------------------------------------- DeleteUserData

-- Store.eraseUser, one batch: the user's single rows (authenticator,
-- recovery code, failure bucket), then at most p_limit consumed mfa_token
-- marks and p_limit refresh-token families (the SessionStore's rows, in the
-- same database), so a user with many rows never holds their lock for long.
-- Returns true while rows naming the user remain (the caller calls again).
CREATE FUNCTION ts_erase_user(p_user text, p_limit integer)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM authenticators WHERE user_id = p_user;
  DELETE FROM recovery_codes WHERE user_id = p_user;
  DELETE FROM user_failure_buckets WHERE user_id = p_user;
  DELETE FROM consumed_mfa_tokens WHERE user_id = p_user AND token_id IN (
    SELECT c.token_id FROM consumed_mfa_tokens c WHERE c.user_id = p_user LIMIT p_limit);
  DELETE FROM refresh_token_families WHERE user_id = p_user AND family_id IN (
    SELECT f.family_id FROM refresh_token_families f WHERE f.user_id = p_user LIMIT p_limit);
  RETURN EXISTS (SELECT 1 FROM consumed_mfa_tokens c WHERE c.user_id = p_user)
      OR EXISTS (SELECT 1 FROM refresh_token_families f WHERE f.user_id = p_user);
END
$$;
