-- Platform tables every service database carries. Versions 1..999 are reserved for the
-- platform; services number their own migrations with timestamps, and both migrators ignore
-- each other's versions.

-- Transactional outbox (R-X-2): written in the same transaction as the state change it
-- announces, published in `seq` order by the relay, which waits for the JetStream ack.
create table outbox (
    seq          bigserial primary key,
    id           uuid not null unique,          -- ce-id and Nats-Msg-Id
    subject      text not null,                 -- NATS subject
    ce_type      text not null,                 -- protobuf full name of the payload
    ce_subject   text,                          -- what the event is about (e.g. application id)
    payload      bytea not null,                -- protobuf-encoded message
    traceparent  text,                          -- W3C trace context of the writing request
    created_at   timestamptz not null,
    published_at timestamptz
);
create index outbox_unpublished on outbox (seq) where published_at is null;

-- Inbox (R-X-2): the ids of events a consumer has applied, recorded in the handler's own
-- transaction so a redelivery is a no-op.
create table inbox (
    consumer    text not null,
    event_id    text not null,
    subject     text not null,
    received_at timestamptz not null default now(),
    primary key (consumer, event_id)
);

-- Idempotent writes (R-IN-8): the first response to a client request id, stored in the same
-- transaction as the write's effect.
create table idempotency_keys (
    caller       text not null,
    method       text not null,
    request_id   text not null,
    request_hash bytea not null,
    response     bytea,
    created_at   timestamptz not null default now(),
    primary key (caller, method, request_id)
);
