-- R-CR-8, R-ID-4: credit-village status and enterprise qualification may be announced ahead of
-- the day they take effect. Each row kept one pending change (the announced status, its day,
-- the status before it), so a second change announced before the first one's day lost the
-- status in force until then. Each row now keeps its timeline: what was announced, by day, in
-- increasing order of day (`timeline_from`, NULL for "whatever the day", at most once and
-- first) with the status from that day (`timeline_status`, same length).
--
-- An announcement "from day D the status is S" (D NULL: from now on) replaces whatever was
-- announced for D or later and keeps what was announced for earlier days; intake's domain
-- (`admission::Timeline::announce`) does the same. A trigger applies it whenever a row's
-- status and day are written, so every writer keeps the timeline without knowing of it,
-- including an earlier intake after a rollback; the older columns (`effective_from`, the
-- status, `*_before`) are still written as before and still say the latest announcement.

alter table rm_credit_villages
    add column timeline_from date[],
    add column timeline_status boolean[];
alter table rm_qualified_enterprises
    add column timeline_from date[],
    add column timeline_status boolean[];

-- The timeline after announcing `status` from `day`.
create function rm_announced(
    froms date[], statuses boolean[], day date, status boolean,
    out new_froms date[], out new_statuses boolean[]
) language sql immutable as $$
    select coalesce(array_agg(f order by o) filter (where kept), '{}') || array[day],
           coalesce(array_agg(s order by o) filter (where kept), '{}') || array[status]
      from (select f, s, o, day is not null and (f is null or f < day) as kept
              from unnest(froms, statuses) with ordinality as u(f, s, o)) entries
$$;

-- The timeline the older columns describe, for rows written before this migration: the status
-- from its day, and the one before it when there was one.
create function rm_legacy_froms(day date, before boolean) returns date[]
language sql immutable as $$
    select case when day is null or before is null then array[day] else array[null, day] end
$$;
create function rm_legacy_statuses(day date, status boolean, before boolean) returns boolean[]
language sql immutable as $$
    select case when day is null or before is null then array[status] else array[before, status] end
$$;

create function rm_credit_village_announced() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        if new.timeline_from is null then
            new.timeline_from := rm_legacy_froms(new.effective_from, new.credit_village_before);
            new.timeline_status := rm_legacy_statuses(
                new.effective_from, new.credit_village, new.credit_village_before);
        end if;
    elsif new.timeline_from is not distinct from old.timeline_from
          and new.timeline_status is not distinct from old.timeline_status then
        select a.new_froms, a.new_statuses into new.timeline_from, new.timeline_status
          from rm_announced(
                 coalesce(old.timeline_from,
                          rm_legacy_froms(old.effective_from, old.credit_village_before)),
                 coalesce(old.timeline_status,
                          rm_legacy_statuses(old.effective_from, old.credit_village,
                                             old.credit_village_before)),
                 new.effective_from, new.credit_village) a;
    end if;
    return new;
end $$;

create function rm_qualification_announced() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        if new.timeline_from is null then
            new.timeline_from := rm_legacy_froms(new.effective_from, new.qualified_before);
            new.timeline_status := rm_legacy_statuses(
                new.effective_from, new.qualified, new.qualified_before);
        end if;
    elsif new.timeline_from is not distinct from old.timeline_from
          and new.timeline_status is not distinct from old.timeline_status then
        select a.new_froms, a.new_statuses into new.timeline_from, new.timeline_status
          from rm_announced(
                 coalesce(old.timeline_from,
                          rm_legacy_froms(old.effective_from, old.qualified_before)),
                 coalesce(old.timeline_status,
                          rm_legacy_statuses(old.effective_from, old.qualified,
                                             old.qualified_before)),
                 new.effective_from, new.qualified) a;
    end if;
    return new;
end $$;

create trigger announced before insert or update on rm_credit_villages
    for each row execute function rm_credit_village_announced();
create trigger announced before insert or update on rm_qualified_enterprises
    for each row execute function rm_qualification_announced();

-- Rows already here: their timeline is what their columns say (re-announcing the latest
-- change changes nothing else). Only when there are any: every write to these tables takes a
-- read-model version, and a new database starts at version 0.
do $$
begin
    if exists (select 1 from rm_credit_villages) then
        update rm_credit_villages set timeline_from = null;
    end if;
    if exists (select 1 from rm_qualified_enterprises) then
        update rm_qualified_enterprises set timeline_from = null;
    end if;
end $$;
