-- R-CR-8, R-ID-4: credit-village status and enterprise qualification are announced with a
-- sequence, and may be announced ahead of their day. Each row's timeline (migration
-- 20261130000005) was folded one announcement at a time as events arrived, and an announcement
-- older than the row's latest was dropped. Events can arrive out of order (intake replicas
-- sharing the consumer, a redelivery), so an older announcement about earlier days was lost:
-- "disqualified from 03-04" (seq 2) arriving after "qualified from 03-06" (seq 3) left the
-- enterprise qualified on 03-04.
--
-- Every announcement is now kept, and a row's timeline is the fold of its announcements in
-- sequence order (`rm_announced`, as before), whatever order they arrived in, on top of the
-- timeline the row had when this migration ran (`base_*`; announcements older than that are
-- not known and still drop). The latest columns (status, day, sequence, `*_before`) are still
-- those of the highest sequence, for an earlier intake after a rollback.

create table rm_announcements (
    kind      text not null check (kind in ('credit_village', 'qualification')),
    key       text not null,
    sequence  bigint not null,
    day       date,
    status    boolean not null,
    primary key (kind, key, sequence)
);

alter table rm_credit_villages
    add column base_from date[] not null default '{}',
    add column base_status boolean[] not null default '{}',
    add column base_sequence bigint not null default 0;
alter table rm_qualified_enterprises
    add column base_from date[] not null default '{}',
    add column base_status boolean[] not null default '{}',
    add column base_sequence bigint not null default 0;

-- Rows already here start from the timeline they have (their legacy columns' when they have
-- none). Only when there are any: every write to these tables takes a read-model version.
do $$
begin
    if exists (select 1 from rm_credit_villages) then
        update rm_credit_villages
           set base_from = coalesce(timeline_from,
                                    rm_legacy_froms(effective_from, credit_village_before)),
               base_status = coalesce(timeline_status,
                                      rm_legacy_statuses(effective_from, credit_village,
                                                         credit_village_before)),
               base_sequence = sequence;
    end if;
    if exists (select 1 from rm_qualified_enterprises) then
        update rm_qualified_enterprises
           set base_from = coalesce(timeline_from,
                                    rm_legacy_froms(effective_from, qualified_before)),
               base_status = coalesce(timeline_status,
                                      rm_legacy_statuses(effective_from, qualified,
                                                         qualified_before)),
               base_sequence = sequence;
    end if;
end $$;

-- The timeline of `base` with the announcements of (`kind`, `key`) after `base_sequence`
-- folded in, in sequence order.
create function rm_folded(
    kind text, key text, base_from date[], base_status boolean[], base_sequence bigint,
    out froms date[], out statuses boolean[]
) language plpgsql stable as $$
declare
    a record;
begin
    froms := base_from;
    statuses := base_status;
    for a in select r.day, r.status from rm_announcements r
              where r.kind = rm_folded.kind and r.key = rm_folded.key
                and r.sequence > base_sequence
              order by r.sequence loop
        select n.new_froms, n.new_statuses into froms, statuses
          from rm_announced(froms, statuses, a.day, a.status) n;
    end loop;
end $$;

-- An announcement older than its row's latest (it arrived late; the upsert left the row as it
-- was): kept, and the row's timeline folded again from its base and every announcement kept.
-- A newer one needs no fold: the row's trigger announces it on top of the timeline, which is
-- the fold of everything before it, and `logged` below keeps it.
create function rm_announced_late(
    a_kind text, a_key text, a_sequence bigint, a_day date, a_status boolean
) returns void language plpgsql as $$
begin
    insert into rm_announcements (kind, key, sequence, day, status)
    values (a_kind, a_key, a_sequence, a_day, a_status)
    on conflict do nothing;
    if a_kind = 'credit_village' then
        update rm_credit_villages v
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded(a_kind, a_key, v.base_from, v.base_status, v.base_sequence) f)
         where v.village_code = a_key;
    else
        update rm_qualified_enterprises q
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded(a_kind, a_key, q.base_from, q.base_status, q.base_sequence) f)
         where q.uscc = a_key;
    end if;
end $$;

-- Writes that move a row to a later announcement log it, this version's and an earlier
-- intake's after a rollback (which writes the rows, not the log) alike, so a later fold loses
-- nothing.
create function rm_credit_village_logged() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' or new.sequence > old.sequence then
        insert into rm_announcements (kind, key, sequence, day, status)
        values ('credit_village', new.village_code, new.sequence, new.effective_from,
                new.credit_village)
        on conflict do nothing;
    end if;
    return null;
end $$;

create function rm_qualification_logged() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' or new.sequence > old.sequence then
        insert into rm_announcements (kind, key, sequence, day, status)
        values ('qualification', new.uscc, new.sequence, new.effective_from, new.qualified)
        on conflict do nothing;
    end if;
    return null;
end $$;

create trigger logged after insert or update on rm_credit_villages
    for each row execute function rm_credit_village_logged();
create trigger logged after insert or update on rm_qualified_enterprises
    for each row execute function rm_qualification_logged();
