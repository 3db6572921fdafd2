-- The relay now deletes a row once JetStream has acknowledged it, instead of marking it
-- published: the stream is the record of what was published, and the outbox holds only what
-- waits. Two reasons:
--  * R-CR-11: event payloads carry personal data (`LoanDisbursed` names the borrower); a
--    published row kept it in plain text for as long as the table lived.
--  * Cost: marking a row published was an update that touched the partial index's predicate,
--    so it was never HOT: a new row version with new entries in every index, per event. A
--    delete writes no new version and no index entries.
-- Rows still here at upgrade and already published are of no further use.
delete from outbox where published_at is not null;
drop index outbox_unpublished;
alter table outbox drop column published_at;
-- `id` is a UUIDv7 minted by the writing service, and JetStream dedupes by it (`Nats-Msg-Id`);
-- a unique index on it cost an index insert per event and guarded nothing the stream does not.
alter table outbox drop constraint outbox_id_key;
