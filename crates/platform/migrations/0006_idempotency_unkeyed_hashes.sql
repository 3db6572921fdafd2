-- no-transaction
-- R-CR-11: request fingerprints are now stored keyed (33 bytes: a version byte and an HMAC
-- with the blind-index key); the 32-byte ones are unkeyed SHA-256 written by earlier versions,
-- which a service keys in the background. During a rolling upgrade older replicas go on
-- writing unkeyed ones, so the pass runs again periodically: this index holds only the rows
-- still to key, so a pass that finds none reads an empty index, not the whole table.
-- Built concurrently (outside a transaction): `idempotency_keys` grows with every write and
-- is never pruned, and a plain build would hold every replica's writes until it is done.
create index concurrently if not exists idempotency_keys_unkeyed
    on idempotency_keys (caller, method, request_id)
    where length(request_hash) = 32;
