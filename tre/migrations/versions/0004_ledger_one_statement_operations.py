"""ledger one-statement operations (PostgreSQL)

Server-side functions that run a reservation, a commit or a release, with its audit event,
as one statement: called in autocommit, the chain lock is taken, used and released (at
COMMIT) inside PostgreSQL, with no client round trip while it is held. Every audited write
queues on that lock, so its hold time bounds the ledger's throughput (bench/ledger.py).

- `tre_audit_append` extends the hash chain exactly as `tre.audit.record` does: the event's
  canonical JSON comes from Python in two parts (`tre.audit.store.ChainEntry`), the previous
  hash and the seq are spliced in here, under the lock, and hashed with sha256.
- `tre_ledger_reserve` / `tre_ledger_settle` do what `Ledger.reserve` and
  `Ledger.commit` / `release` do, statement for statement, in the same lock order
  (the chain head first). They refuse by raising SQLSTATEs of class `TL` (see
  tre.privacy.ledger), which roll the whole call back; the Python side explains a refusal
  with the same reads and errors as before. Expired reservations to sweep make them raise
  `TL001`: the caller then takes the transaction path, which sweeps.

SQLite has no server-side functions: its ledger keeps the transaction path (its writer lock
is process-local and cheap to hold).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT_ARGS = (
    "p_time text, p_type text, p_version integer, p_actor text, p_payload text, "
    "p_head bytea, p_tail bytea"
)
_AUDIT_CALL = "tre_audit_append(p_time, p_type, p_version, p_actor, p_payload, p_head, p_tail)"

_APPEND = f"""
CREATE FUNCTION tre_audit_append({_AUDIT_ARGS}) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
    v_prev text;
    v_hash text;
BEGIN
    SELECT seq, hash INTO v_seq, v_prev FROM audit_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit_head row missing: run the migrations' USING ERRCODE = 'TL000';
    END IF;
    v_seq := v_seq + 1;
    v_hash := encode(
        sha256(p_head || convert_to(v_prev || '","seq":' || v_seq::text, 'UTF8') || p_tail),
        'hex');
    INSERT INTO audit_events
        (seq, occurred_at, event_type, schema_version, actor, payload, prev_hash, hash)
    VALUES (v_seq, p_time, p_type, p_version, p_actor, p_payload, v_prev, v_hash);
    UPDATE audit_head SET seq = v_seq, hash = v_hash WHERE id = 1;
    RETURN v_seq;
END $$
"""

# The chain lock, then the sweep check: expired reservations are settled by the transaction
# path (Ledger._settle_stale), so their budget is free again before this hold is judged.
_LOCK_AND_CHECK_STALE = """
    PERFORM 1 FROM audit_head WHERE id = 1 FOR UPDATE;
    IF EXISTS (SELECT 1 FROM budget_reservations
               WHERE state = 'reserved' AND expires_at <= p_now) THEN
        RAISE EXCEPTION 'expired reservations to sweep first' USING ERRCODE = 'TL001';
    END IF;
"""

_RESERVE = f"""
CREATE FUNCTION tre_ledger_reserve(
    p_id text, p_project integer, p_purpose text, p_now timestamptz, p_expires timestamptz,
    p_today date, p_datasets text[], p_rhos bigint[], p_deltas bigint[], {_AUDIT_ARGS}
) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    -- Before the chain lock only what waits for nobody: a reservation under a fresh random id.
    INSERT INTO budget_reservations
        (id, project_id, state, actor, purpose, created_at, expires_at, settled_at)
    VALUES (p_id, p_project, 'reserved', p_actor, p_purpose, p_now, p_expires, NULL);
    INSERT INTO budget_reservation_items
        (reservation_id, dataset, rho_reserved, delta_reserved, rho_committed, delta_committed)
    SELECT p_id, item.dataset, item.rho, item.delta, NULL, NULL
    FROM unnest(p_datasets, p_rhos, p_deltas) AS item(dataset, rho, delta);
    {_LOCK_AND_CHECK_STALE}
    FOR i IN 1 .. array_length(p_datasets, 1) LOOP
        -- Check and add in one statement each: the row changes only if the hold fits.
        UPDATE budget_allowances
        SET rho_reserved = rho_reserved + p_rhos[i], delta_reserved = delta_reserved + p_deltas[i]
        WHERE project_id = p_project AND dataset = p_datasets[i] AND closed_at IS NULL
          AND valid_from <= p_today AND valid_until >= p_today
          AND rho_committed + rho_reserved + p_rhos[i] <= rho_allowed
          AND delta_committed + delta_reserved + p_deltas[i] <= delta_allowed;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'TL002', MESSAGE = p_datasets[i];
        END IF;
        UPDATE budget_caps
        SET rho_reserved = rho_reserved + p_rhos[i], delta_reserved = delta_reserved + p_deltas[i]
        WHERE dataset = p_datasets[i]
          AND rho_committed + rho_reserved + p_rhos[i] <= rho_cap
          AND delta_committed + delta_reserved + p_deltas[i] <= delta_cap;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'TL003', MESSAGE = p_datasets[i];
        END IF;
    END LOOP;
    RETURN {_AUDIT_CALL};
END $$
"""

# p_state: 'committed' (p_rho_spent/p_delta_spent become committed) or 'released' (nothing
# is; the spent arrays are zeros). p_rho_held/p_delta_held are the items' reserved amounts.
_SETTLE = f"""
CREATE FUNCTION tre_ledger_settle(
    p_id text, p_state text, p_project integer, p_now timestamptz, p_datasets text[],
    p_rho_held bigint[], p_delta_held bigint[], p_rho_spent bigint[], p_delta_spent bigint[],
    {_AUDIT_ARGS}
) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF p_state NOT IN ('committed', 'released') THEN
        RAISE EXCEPTION 'unknown settlement %', p_state USING ERRCODE = 'TL000';
    END IF;
    IF p_state = 'committed' THEN
        -- The reservation's own item rows, before the chain lock: only a settlement of this
        -- same reservation writes them, and it holds nothing else yet.
        UPDATE budget_reservation_items AS i
        SET rho_committed = s.rho, delta_committed = s.delta
        FROM unnest(p_datasets, p_rho_spent, p_delta_spent) AS s(dataset, rho, delta)
        WHERE i.reservation_id = p_id AND i.dataset = s.dataset;
    END IF;
    {_LOCK_AND_CHECK_STALE}
    -- The state is checked in the UPDATE itself: two settlements can never both succeed.
    UPDATE budget_reservations SET state = p_state, settled_at = p_now
    WHERE id = p_id AND state = 'reserved' AND expires_at > p_now;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TL004', MESSAGE = p_id;
    END IF;
    FOR i IN 1 .. array_length(p_datasets, 1) LOOP
        UPDATE budget_allowances
        SET rho_reserved = rho_reserved - p_rho_held[i],
            delta_reserved = delta_reserved - p_delta_held[i],
            rho_committed = rho_committed + p_rho_spent[i],
            delta_committed = delta_committed + p_delta_spent[i]
        WHERE project_id = p_project AND dataset = p_datasets[i];
        UPDATE budget_caps
        SET rho_reserved = rho_reserved - p_rho_held[i],
            delta_reserved = delta_reserved - p_delta_held[i],
            rho_committed = rho_committed + p_rho_spent[i],
            delta_committed = delta_committed + p_delta_spent[i]
        WHERE dataset = p_datasets[i];
    END LOOP;
    RETURN {_AUDIT_CALL};
END $$
"""


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for ddl in (_APPEND, _RESERVE, _SETTLE):
        op.execute(ddl)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"DROP FUNCTION IF EXISTS tre_ledger_settle(text, text, integer, timestamptz, text[], bigint[], bigint[], bigint[], bigint[], {_types()})"
    )
    op.execute(
        f"DROP FUNCTION IF EXISTS tre_ledger_reserve(text, integer, text, timestamptz, timestamptz, date, text[], bigint[], bigint[], {_types()})"
    )
    op.execute(f"DROP FUNCTION IF EXISTS tre_audit_append({_types()})")


def _types() -> str:
    """The audit arguments' types, as DROP FUNCTION names them."""
    return "text, text, integer, text, text, bytea, bytea"
