-- R-CR-8, R-ID-4: an unnumbered announcement (sequence 0) of credit-village status or of an
-- enterprise's qualification that created its row was logged (migration 20261130000012) but
-- never folded again: `rm_folded` folds only sequences above the row's base, which is 0 for
-- rows created since. So a second unnumbered announcement (README: "two unnumbered ones for
-- the same village or enterprise keep the first"), or a numbered one arriving late, refolded
-- the timeline without the first: emptied, the village was no credit village and the
-- enterprise not qualified.
--
-- A row without a base (created since 0012) now folds its logged unnumbered announcement
-- first, as the oldest. Intake no longer logs an unnumbered announcement that arrives after
-- its row exists (it changes nothing), so the one logged is the row's first.

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

-- Rows a second unnumbered announcement emptied: folded again. (A row refolded without its
-- unnumbered first by a late numbered announcement cannot be told from one whose unnumbered
-- announcement came last; it is folded right at its next late announcement.) Only when there
-- are any: every write to these tables takes a read-model version, and a new database starts
-- at version 0.
do $$
begin
    if exists (select 1 from rm_credit_villages v
                where cardinality(v.base_status) = 0
                  and cardinality(v.timeline_status) = 0
                  and exists (select 1 from rm_announcements a
                               where a.kind = 'credit_village' and a.key = v.village_code
                                 and a.sequence = 0)) then
        update rm_credit_villages v
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded('credit_village', v.village_code, v.base_from, v.base_status,
                                 v.base_sequence) f)
         where cardinality(v.base_status) = 0
           and cardinality(v.timeline_status) = 0
           and exists (select 1 from rm_announcements a
                        where a.kind = 'credit_village' and a.key = v.village_code
                          and a.sequence = 0);
    end if;
    if exists (select 1 from rm_qualified_enterprises q
                where cardinality(q.base_status) = 0
                  and cardinality(q.timeline_status) = 0
                  and exists (select 1 from rm_announcements a
                               where a.kind = 'qualification' and a.key = q.uscc
                                 and a.sequence = 0)) then
        update rm_qualified_enterprises q
           set (timeline_from, timeline_status) =
               (select f.froms, f.statuses
                  from rm_folded('qualification', q.uscc, q.base_from, q.base_status,
                                 q.base_sequence) f)
         where cardinality(q.base_status) = 0
           and cardinality(q.timeline_status) = 0
           and exists (select 1 from rm_announcements a
                        where a.kind = 'qualification' and a.key = q.uscc and a.sequence = 0);
    end if;
end $$;
