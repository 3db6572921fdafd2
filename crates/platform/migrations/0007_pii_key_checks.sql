-- R-CR-11: a one-way check value of every personal-data key that has been used with this
-- database (`PiiCipher::key_checks`), recorded at the first start that uses it. A later start
-- with other material under a recorded key id, or with another blind-index key, is refused
-- before it serves: values sealed under that id would not open, and lookups by blind index
-- (blacklist entries, ratings) would find nothing.
create table if not exists pii_key_checks (
    key_use text not null check (key_use in ('seal', 'index')),
    -- The key's id in PII_KEYS; empty for the index key.
    key_id text not null,
    check_value bytea not null check (length(check_value) = 32),
    first_used timestamptz not null default now(),
    -- A sealing key that has been current (or was configured when this table was made): values
    -- may be sealed with it, so it may leave PII_KEYS only once a re-sealing pass has moved
    -- them (`retired_at`). Set again whenever it is current.
    sealed boolean not null default false,
    retired_at timestamptz,
    -- When a replica last sealed with it as its current key (each refreshes this every minute):
    -- a pass marks a key retired only once no replica has had it current since well before the
    -- pass began (a replica still on the old configuration seals with it until it restarts).
    last_current_at timestamptz,
    primary key (key_use, key_id)
);
