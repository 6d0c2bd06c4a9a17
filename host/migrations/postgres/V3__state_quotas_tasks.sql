-- Plugin state, daily request counts, task runs and leases, shared OAuth2 tokens (sealed),
-- last test results: the tables of `state.sqlite3`, shared by every node.
CREATE TABLE IF NOT EXISTS plugin_state (
    instance   TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (instance, key)
);
CREATE TABLE IF NOT EXISTS request_counts (
    instance TEXT NOT NULL,
    day      TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (instance, day)
);
CREATE TABLE IF NOT EXISTS task_runs (
    instance    TEXT NOT NULL,
    task        TEXT NOT NULL,
    started_ms  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    ok          BOOLEAN NOT NULL,
    summary     TEXT NOT NULL,
    next_ms     BIGINT,
    PRIMARY KEY (instance, task)
);
CREATE TABLE IF NOT EXISTS task_leases (
    instance TEXT NOT NULL,
    task     TEXT NOT NULL,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (instance, task)
);
-- `sealed` is a sealed string (secrets::SecretKey::seal); never a plain token.
CREATE TABLE IF NOT EXISTS oauth2_tokens (
    key      TEXT PRIMARY KEY,
    sealed   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS test_results (
    instance TEXT PRIMARY KEY,
    at_ms    BIGINT NOT NULL,
    report   TEXT NOT NULL
);
-- Sliding-window quota slots of every node (services::shared_window): taken when a request is
-- admitted, stamped when its answer arrived. Times are the database server's clock, so that
-- nodes with skewed clocks still share one time line.
-- `holder` is the process's liveness key: the process holds the session advisory lock
-- (1885434739, holder) for as long as it lives, so a slot in flight of a process that is gone
-- (its connections closed) is seen at once.
CREATE TABLE IF NOT EXISTS quota_slots (
    id          BIGSERIAL PRIMARY KEY,
    instance    TEXT NOT NULL,
    holder      INTEGER NOT NULL,
    taken_ms    BIGINT NOT NULL,
    answered_ms BIGINT
);
CREATE INDEX IF NOT EXISTS quota_slots_instance ON quota_slots (instance, answered_ms);

-- Takes a quota slot of `p_instance` if every window (p_limits[i] requests in any
-- p_lengths[i] ms) has room, in one round trip and under a transaction advisory lock of the
-- instance, so that all nodes together never admit more than a limit. Returns the slot, or
-- NULL and how long to wait: `wait_ms` until the oldest answer leaves a full window, and
-- `in_flight` when a full window holds only requests still in flight (look again shortly).
-- Each statement of this VOLATILE function sees what committed before it, lock included.
CREATE OR REPLACE FUNCTION passerelle_quota_take(
    p_instance TEXT, p_holder INTEGER, p_limits INTEGER[], p_lengths BIGINT[],
    p_in_flight_max BIGINT, p_keep BIGINT)
RETURNS TABLE (slot BIGINT, wait_ms BIGINT, in_flight BOOLEAN)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now BIGINT;
    v_wait BIGINT := 0;
    v_poll BOOLEAN := false;
    v_count BIGINT;
    v_oldest BIGINT;
    v_slot BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('passerelle-quota:' || p_instance, 0));
    v_now := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    -- Slots in flight of processes that are gone will never be answered: answered now.
    UPDATE quota_slots q SET answered_ms = v_now
     WHERE q.instance = p_instance AND q.answered_ms IS NULL AND q.holder <> p_holder
       AND (q.taken_ms < v_now - p_in_flight_max
            OR NOT EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.classid = 1885434739
                              AND l.objid = q.holder::oid AND l.objsubid = 2 AND l.granted));
    DELETE FROM quota_slots q WHERE q.instance = p_instance AND q.answered_ms < v_now - p_keep;
    FOR i IN 1 .. coalesce(array_length(p_limits, 1), 0) LOOP
        SELECT count(*), min(q.answered_ms) INTO v_count, v_oldest
          FROM quota_slots q
         WHERE q.instance = p_instance
           AND (q.answered_ms IS NULL OR q.answered_ms > v_now - p_lengths[i]);
        IF v_count >= greatest(p_limits[i], 1) THEN
            IF v_oldest IS NULL THEN
                v_poll := true;
            ELSE
                -- Free one millisecond after the oldest answer leaves the window.
                v_wait := greatest(v_wait, v_oldest + p_lengths[i] + 1 - v_now);
            END IF;
        END IF;
    END LOOP;
    IF v_wait > 0 OR v_poll THEN
        RETURN QUERY SELECT NULL::BIGINT, v_wait, v_poll;
        RETURN;
    END IF;
    INSERT INTO quota_slots (instance, holder, taken_ms) VALUES (p_instance, p_holder, v_now)
    RETURNING id INTO v_slot;
    RETURN QUERY SELECT v_slot, 0::BIGINT, false;
END
$$;
