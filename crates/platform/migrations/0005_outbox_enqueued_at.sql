-- When a row was committed, by the database's clock: how long events have waited to be
-- published (the health of fupin.events.Outbox) must not depend on the service's clock, which
-- tests move (FUPIN_TEST_CLOCK) and which may drift from the database's. `created_at` stays
-- the event's own time, as the service decided it. Rows already there get the migration's time.
alter table outbox add column enqueued_at timestamptz not null default now();
