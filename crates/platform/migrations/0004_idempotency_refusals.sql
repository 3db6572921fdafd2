-- R-IN-8: a retry with the same request id returns the first result. A write refused by a
-- rule (FailedPrecondition) is a result too: it is kept with the key, so a retry after the
-- facts changed (a blacklist entry removed, a rating arriving) returns the same refusal
-- instead of acting. The refusal is kept as the gRPC status the caller saw: its code here,
-- its message in `response`, stored (and sealed, where the key seals) like a response.
alter table idempotency_keys
    add column refused_code integer,
    add constraint idempotency_keys_refusal_has_message
        check (refused_code is null or response is not null);
