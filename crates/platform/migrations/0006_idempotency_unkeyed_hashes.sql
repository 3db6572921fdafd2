-- R-CR-11: request fingerprints are now stored keyed (33 bytes: a version byte and an HMAC
-- with the blind-index key); the 32-byte ones are unkeyed SHA-256 written by earlier versions,
-- which a service keys in the background. During a rolling upgrade older replicas go on
-- writing unkeyed ones, so the pass runs again periodically: this index holds only the rows
-- still to key, so a pass that finds none reads an empty index, not the whole table.
-- Built in the migration's transaction, holding writes to `idempotency_keys` for the one scan
-- it takes: `create index concurrently` would wait for the snapshots of replicas queued on
-- the migrator's advisory lock, which wait for it (a deadlock that leaves an invalid index).
create index if not exists idempotency_keys_unkeyed
    on idempotency_keys (caller, method, request_id)
    where length(request_hash) = 32;
