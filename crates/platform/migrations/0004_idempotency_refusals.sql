-- R-IN-8: a retry with the same request id returns the first result. A write refused by a
-- rule (FailedPrecondition) is a result too: it is kept with the key, so a retry after the
-- facts changed (a blacklist entry removed, a rating arriving) returns the same refusal
-- instead of acting. The refusal is kept as the gRPC status the caller saw. Refusal messages
-- name rules, fields and amounts, never personal data, so they are stored as they are.
alter table idempotency_keys
    add column refused_code integer,
    add column refused_message text,
    add constraint idempotency_keys_one_result
        check (refused_code is null or (response is null and refused_message is not null));
