-- R-ID-1, R-RK-9: an enterprise's registered area (migration 20261130000015) was written only
-- by an event newer than the row's latest. One older that arrived late (a redelivery, a dead
-- letter republished, replicas sharing the consumer) went down the late path, which folds the
-- qualification timeline (20261130000012) but dropped the area: with "village A" (seq 1) and
-- then a qualification naming no area (seq 3) stored, "village A2" (seq 2) arriving last left
-- the enterprise held to A, so it filed there past A2's circuit breaker (R-RK-9).
--
-- The area now carries the sequence of the event that named it (`area_sequence`): the area of
-- the highest-numbered event that names one, whatever order they arrive in. Rows already here
-- take their latest sequence (the area they hold came from it or an earlier event, which is
-- not known): an area older than that which arrives late still drops, as before.

alter table rm_qualified_enterprises add column area_sequence bigint not null default 0;

do $$
begin
    if exists (select 1 from rm_qualified_enterprises where area_code is not null) then
        update rm_qualified_enterprises set area_sequence = sequence where area_code is not null;
    end if;
end $$;

-- An earlier intake (after a rollback) writes the area without its sequence: the area it
-- writes is its event's, the row's newest.
create function rm_qualification_area_sequenced() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        if new.area_code is not null and new.area_sequence = 0 then
            new.area_sequence := new.sequence;
        end if;
    elsif new.area_code is distinct from old.area_code
          and new.area_sequence = old.area_sequence then
        new.area_sequence := new.sequence;
    end if;
    return new;
end $$;

create trigger area_sequenced before insert or update on rm_qualified_enterprises
    for each row execute function rm_qualification_area_sequenced();
