-- R-CR-8, R-ID-4: an unnumbered announcement (sequence 0) of credit-village status or of an
-- enterprise's qualification that created its row was logged (migration 20261130000012) but
-- never folded again: `rm_folded` folds only sequences above the row's base, which is 0 for
-- rows created since. So a second unnumbered announcement (README: "two unnumbered ones for
-- the same village or enterprise keep the first"), or a numbered one arriving late, refolded
-- the timeline without the first: emptied, the village was no credit village and the
-- enterprise not qualified.
--
-- A row without a base (created since 0012) now folds its logged unnumbered announcement
-- first, as the oldest. An unnumbered announcement that arrives once its row exists changes
-- nothing and is no longer logged (here too, for an earlier intake after a rollback), so the
-- one logged from now on is the row's first.

create or replace function rm_announced_late(
    a_kind text, a_key text, a_sequence bigint, a_day date, a_status boolean
) returns void language plpgsql as $$
begin
    if a_sequence = 0 then
        return;
    end if;
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

create or replace function rm_folded(
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
                and (r.sequence > base_sequence
                     or (r.sequence = 0 and cardinality(base_status) = 0))
              order by r.sequence loop
        select n.new_froms, n.new_statuses into froms, statuses
          from rm_announced(froms, statuses, a.day, a.status) n;
    end loop;
end $$;

-- Every row without a base that has an unnumbered announcement logged is folded again, so
-- the result does not wait on a later late announcement: a row a second unnumbered
-- announcement emptied, or a late numbered one refolded without its first, gets it back.
-- (Before this migration an unnumbered announcement arriving after numbered ones was logged
-- too, and cannot be told from a row's first: such a row now counts it as its oldest, which
-- can set the status for the days before its first numbered announcement's day.) Only when
-- there are any: every write to these tables takes a read-model version, and a new database
-- starts at version 0.
do $$
begin
    if exists (select 1 from rm_credit_villages v
                where cardinality(v.base_status) = 0
                  and exists (select 1 from rm_announcements a
                               where a.kind = 'credit_village' and a.key = v.village_code
                                 and a.sequence = 0)) then
        update rm_credit_villages v
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded('credit_village', v.village_code, v.base_from, v.base_status,
                                 v.base_sequence) f)
         where cardinality(v.base_status) = 0
           and exists (select 1 from rm_announcements a
                        where a.kind = 'credit_village' and a.key = v.village_code
                          and a.sequence = 0);
    end if;
    if exists (select 1 from rm_qualified_enterprises q
                where cardinality(q.base_status) = 0
                  and exists (select 1 from rm_announcements a
                               where a.kind = 'qualification' and a.key = q.uscc
                                 and a.sequence = 0)) then
        update rm_qualified_enterprises q
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded('qualification', q.uscc, q.base_from, q.base_status,
                                 q.base_sequence) f)
         where cardinality(q.base_status) = 0
           and exists (select 1 from rm_announcements a
                        where a.kind = 'qualification' and a.key = q.uscc and a.sequence = 0);
    end if;
end $$;
