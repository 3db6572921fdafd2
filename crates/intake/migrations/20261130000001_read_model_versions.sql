-- The submission dispatcher decides admission (R-IN-3) against an in-memory copy of the read
-- model instead of querying it for every batch. To keep that copy exact, every change to the
-- read model is versioned here:
--  * `version` goes up by one per transaction that writes to a read-model table (any insert,
--    update, delete or truncate statement, whether or not it changes a row). The first such
--    statement takes this row's lock and holds it until commit, so versions are handed out in
--    commit order: whoever sees version V also sees every change numbered V or lower. Writers
--    to the read model therefore commit one at a time (consumers, at read committed), and a
--    transaction left open after writing to it holds up the others.
--  * Every read-model row carries the version that last wrote it (`changed`), so the copy
--    catches up by reading only the rows changed since the version it holds.
--  * `epoch` goes up when rows are deleted or a row's key changes, which a copy cannot follow
--    from changed rows alone: it loads everything again.
-- A submission batch is written only if, when its write runs, `version` is still the one its
-- admission was decided against, or nothing the batch's applicants are decided on has changed
-- since (same epoch, no newer row for them); otherwise the copy catches up and the batch is
-- decided again.
create table rm_version (
    only_row boolean primary key default true check (only_row),
    version  bigint not null,
    epoch    bigint not null
);
insert into rm_version (version, epoch) values (0, 0);

-- Without its row no submission could be written: it is never deleted.
create function rm_version_kept() returns trigger language plpgsql as $$
begin
    raise exception 'rm_version keeps its one row: submissions are written against it';
end $$;
create trigger kept before delete or truncate on rm_version
    for each statement execute function rm_version_kept();

-- This transaction's read-model version, taken on its first read-model write. Remembered in a
-- transaction-local setting (reverted with the transaction or savepoint that set it, like the
-- update), prefixed with the transaction id so that a value set by hand for a whole session
-- is not taken for this transaction's.
create function rm_version_of_transaction() returns bigint language plpgsql as $$
declare
    mine text := txid_current()::text || ':';
    held text := coalesce(current_setting('fupin.rm_version', true), '');
    v bigint;
begin
    if starts_with(held, mine) then
        return substr(held, length(mine) + 1)::bigint;
    end if;
    update rm_version set version = version + 1 returning version into v;
    perform set_config('fupin.rm_version', mine || v::text, true);
    return v;
end $$;

-- Row trigger: stamps the row with the transaction's version. TG_ARGV[0] names the key column;
-- an update that changes it starts a new epoch.
create function rm_stamp() returns trigger language plpgsql as $$
begin
    new.changed := rm_version_of_transaction();
    if tg_op = 'UPDATE'
       and to_jsonb(new) -> tg_argv[0] is distinct from to_jsonb(old) -> tg_argv[0] then
        update rm_version set epoch = epoch + 1;
    end if;
    return new;
end $$;

-- Statement trigger before every write: the version (and with it the lock on rm_version) is
-- taken before any read-model row is locked, so writers always lock in the same order (an
-- upsert would otherwise take it before its row, an update after). TRUNCATE is the exception:
-- it locks its table before its triggers run, so a transaction that truncates one of these
-- tables after writing another can deadlock with a writer of the first (PostgreSQL then aborts
-- one of them); nothing in the service truncates.
create function rm_take_version() returns trigger language plpgsql as $$
begin
    perform rm_version_of_transaction();
    return null;
end $$;

-- Statement trigger after delete and truncate: a new epoch.
create function rm_reset() returns trigger language plpgsql as $$
begin
    update rm_version set epoch = epoch + 1;
    return null;
end $$;

-- Rows already here are version 0: a copy always starts with a full load.
alter table rm_credit_ratings add column changed bigint not null default 0;
alter table rm_credit_villages add column changed bigint not null default 0;
alter table rm_blacklist add column changed bigint not null default 0;
alter table rm_suspended_areas add column changed bigint not null default 0;
alter table rm_qualified_enterprises add column changed bigint not null default 0;

create index rm_credit_ratings_changed on rm_credit_ratings (changed);
create index rm_credit_villages_changed on rm_credit_villages (changed);
create index rm_blacklist_changed on rm_blacklist (changed);
create index rm_suspended_areas_changed on rm_suspended_areas (changed);
create index rm_qualified_enterprises_changed on rm_qualified_enterprises (changed);

create trigger take_version before insert or update or delete or truncate on rm_credit_ratings
    for each statement execute function rm_take_version();
create trigger take_version before insert or update or delete or truncate on rm_credit_villages
    for each statement execute function rm_take_version();
create trigger take_version before insert or update or delete or truncate on rm_blacklist
    for each statement execute function rm_take_version();
create trigger take_version before insert or update or delete or truncate on rm_suspended_areas
    for each statement execute function rm_take_version();
create trigger take_version before insert or update or delete or truncate on rm_qualified_enterprises
    for each statement execute function rm_take_version();

create trigger stamp before insert or update on rm_credit_ratings
    for each row execute function rm_stamp('subject_idx');
create trigger stamp before insert or update on rm_credit_villages
    for each row execute function rm_stamp('village_code');
create trigger stamp before insert or update on rm_blacklist
    for each row execute function rm_stamp('entry_id');
create trigger stamp before insert or update on rm_suspended_areas
    for each row execute function rm_stamp('area_code');
create trigger stamp before insert or update on rm_qualified_enterprises
    for each row execute function rm_stamp('uscc');

create trigger reset after delete or truncate on rm_credit_ratings
    for each statement execute function rm_reset();
create trigger reset after delete or truncate on rm_credit_villages
    for each statement execute function rm_reset();
create trigger reset after delete or truncate on rm_blacklist
    for each statement execute function rm_reset();
create trigger reset after delete or truncate on rm_suspended_areas
    for each statement execute function rm_reset();
create trigger reset after delete or truncate on rm_qualified_enterprises
    for each statement execute function rm_reset();
