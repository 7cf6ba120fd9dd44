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

-- The tables of this schema that name a user (a `user_id` column), and
-- whether a user has at most one row there (primary key exactly user_id).
-- Read from the catalog, so a table a later migration adds is erased too.
CREATE FUNCTION ts_user_tables()
RETURNS TABLE (tbl regclass, one_per_user boolean) LANGUAGE sql STABLE AS $$
  SELECT c.oid::regclass,
         coalesce((SELECT array_agg(k.attname::text ORDER BY k.attname)
                   FROM pg_index i
                   JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = ANY (i.indkey)
                   WHERE i.indrelid = c.oid AND i.indisprimary) = ARRAY['user_id'], false)
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped
  WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(current_schema())
  ORDER BY c.relname
$$;

-- Store.eraseUser, one batch, under the user's lock. First the user's
-- factors and bucket (unenrolled and unlocked from the first batch); then at
-- most p_limit rows of each table with many rows per user (consumed
-- mfa_token marks, refresh-token families), so a user with many rows never
-- holds the lock for long; once none is left, the other one-row-per-user
-- tables — last, because such a row may guard the others (a revocation
-- threshold must outlive the sessions it revokes). Returns true while rows
-- naming the user remain (the caller calls again).
CREATE FUNCTION ts_erase_user(p_user text, p_limit integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_table regclass;
  v_left boolean;
  v_more boolean := false;
BEGIN
  PERFORM ts_lock_user(p_user);
  DELETE FROM authenticators WHERE user_id = p_user;
  DELETE FROM recovery_codes WHERE user_id = p_user;
  DELETE FROM user_failure_buckets WHERE user_id = p_user;

  FOR v_table IN SELECT t.tbl FROM ts_user_tables() t WHERE NOT t.one_per_user LOOP
    EXECUTE format(
      'DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %s WHERE user_id = $1 LIMIT $2))',
      v_table, v_table) USING p_user, p_limit;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE user_id = $1)', v_table)
      INTO v_left USING p_user;
    v_more := v_more OR v_left;
  END LOOP;
  IF v_more THEN
    RETURN true;
  END IF;

  FOR v_table IN SELECT t.tbl FROM ts_user_tables() t WHERE t.one_per_user LOOP
    EXECUTE format('DELETE FROM %s WHERE user_id = $1', v_table) USING p_user;
  END LOOP;
  RETURN false;
END
$$;
