-- R-CR-3, R-CR-5: a rating older than its row's newest (a lower sequence) that arrived late
-- was dropped, although ratings may be announced ahead of their day, so an older rating can
-- be about days before the newest's and decide them: with A from 01-01 (seq 1) and AA from
-- 07-01 (seq 3, announced ahead) stored, a downgrade to C from 02-01 (seq 2) delivered last
-- (a redelivery, a dead letter republished by hand, replicas sharing the consumer) was lost
-- and the household was admitted with A in March. Credit-village status and qualification
-- were fixed for this in 20261130000012; ratings now work the same way.
--
-- Every numbered rating is kept (`rm_rating_announcements`), and when one arrives late the
-- row's earlier ratings (migration 20261130000014) are folded again in sequence order from
-- the row's base: what the row held when this migration ran, or its latest unnumbered rating
-- (unnumbered ones apply in delivery order, before every numbered one). Ratings older than a
-- row's base are not known and still drop. The newest (highest sequence) stays the row's own
-- columns, as before, so an earlier intake after a rollback reads what it always did.

-- One rating as the row keeps it in `earlier`.
create function rm_rating_json(
    grade text, veto boolean, credit_line numeric, effective_from date, expires_on date,
    village_code text
) returns jsonb language sql immutable as $$
    select jsonb_build_object(
        'grade', grade,
        'veto', veto,
        'credit_line', credit_line::text,
        'effective_from', effective_from,
        'expires_on', expires_on,
        'village_code', village_code)
$$;

-- Of `ratings` (in increasing order of day), those still in force until a rating from
-- `next_from` takes effect: those before that day, at most `keep`, the latest. A rating
-- without a day replaces them all.
create function rm_ratings_kept(ratings jsonb, next_from date, keep bigint)
returns jsonb language sql immutable as $$
    select coalesce((
        select jsonb_agg(kept.e order by kept.day)
        from (select e, (e->>'effective_from')::date as day
              from jsonb_array_elements(ratings) e
              where (e->>'effective_from')::date < next_from
              order by day desc
              limit keep) kept), '[]'::jsonb)
$$;

create table rm_rating_announcements (
    subject_idx bytea not null,
    sequence    bigint not null check (sequence > 0),
    rating      jsonb not null,
    primary key (subject_idx, sequence)
);

alter table rm_credit_ratings
    add column base_earlier jsonb not null default '[]' check (jsonb_typeof(base_earlier) = 'array'),
    add column base_sequence bigint not null default 0;

-- Rows already here start from the ratings they hold. Only when there are any: every write to
-- the table takes a read-model version.
do $$
begin
    if exists (select 1 from rm_credit_ratings) then
        update rm_credit_ratings
           set base_earlier = case when earlier_as_of = sequence then earlier else '[]' end
                              || jsonb_build_array(rm_rating_json(grade, veto, credit_line,
                                                   effective_from, expires_on, village_code)),
               base_sequence = sequence;
    end if;
end $$;

-- An unnumbered rating (sequence 0 or below) is folded in delivery order, before every
-- numbered one: the row it leaves is the base numbered ones fold onto.
create function rm_rating_base() returns trigger language plpgsql as $$
begin
    if new.sequence <= 0 then
        new.base_earlier := case when new.earlier_as_of = new.sequence then new.earlier
                                 else '[]' end
                            || jsonb_build_array(rm_rating_json(new.grade, new.veto,
                                 new.credit_line, new.effective_from, new.expires_on,
                                 new.village_code));
        new.base_sequence := new.sequence;
    end if;
    return new;
end $$;

create trigger based before insert or update on rm_credit_ratings
    for each row execute function rm_rating_base();

-- Writes that move a row to a newer numbered rating keep it, this version's and an earlier
-- intake's after a rollback alike, so a later fold loses nothing.
create function rm_rating_logged() returns trigger language plpgsql as $$
begin
    if new.sequence > 0 and (tg_op = 'INSERT' or new.sequence > old.sequence) then
        insert into rm_rating_announcements (subject_idx, sequence, rating)
        values (new.subject_idx, new.sequence,
                rm_rating_json(new.grade, new.veto, new.credit_line, new.effective_from,
                               new.expires_on, new.village_code))
        on conflict do nothing;
    end if;
    return null;
end $$;

create trigger logged after insert or update on rm_credit_ratings
    for each row execute function rm_rating_logged();

-- A numbered rating older than its row's newest (the upsert left the row as it was, locked):
-- kept, and the row's earlier ratings folded again from its base and every rating kept since,
-- in sequence order, keeping at most `keep` of them. The same sequence twice is one rating
-- (the first kept). The row is written only when its earlier ratings change.
create function rm_rating_arrived_late(
    a_subject bytea, a_sequence bigint, a_rating jsonb, keep bigint
) returns void language plpgsql as $$
declare
    r record;
    row_ rm_credit_ratings%rowtype;
    folded jsonb;
    last_sequence bigint;
begin
    if a_sequence <= 0 then
        return;
    end if;
    insert into rm_rating_announcements (subject_idx, sequence, rating)
    values (a_subject, a_sequence, a_rating)
    on conflict do nothing;
    select * into row_ from rm_credit_ratings where subject_idx = a_subject;
    if not found or a_sequence <= row_.base_sequence then
        return;
    end if;
    folded := row_.base_earlier;
    last_sequence := row_.base_sequence;
    for r in select a.sequence, a.rating from rm_rating_announcements a
              where a.subject_idx = a_subject and a.sequence > row_.base_sequence
              order by a.sequence loop
        folded := rm_ratings_kept(folded, (r.rating->>'effective_from')::date, keep)
                  || jsonb_build_array(r.rating);
        last_sequence := r.sequence;
    end loop;
    -- The fold ends with the row's own (newest) rating; what precedes it is `earlier`.
    if last_sequence = row_.sequence then
        folded := folded - (jsonb_array_length(folded) - 1);
        update rm_credit_ratings
           set earlier = folded, earlier_as_of = sequence
         where subject_idx = a_subject
           and (earlier is distinct from folded or earlier_as_of is distinct from sequence);
    end if;
end $$;
