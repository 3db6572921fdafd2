-- R-CR-8, R-ID-4: a timeline (migration 20261130000005) grew by one entry for every
-- announcement of a later day, even one that changed nothing (the status it announces is the
-- one in force from the day before). Such an announcement now adds nothing; the status on every
-- day is the same either way. Entries already stored stay as they are.
create or replace function rm_announced(
    froms date[], statuses boolean[], day date, status boolean,
    out new_froms date[], out new_statuses boolean[]
) language sql immutable as $$
    select case when unchanged then kept_froms else kept_froms || array[day] end,
           case when unchanged then kept_statuses else kept_statuses || array[status] end
      from (select kept_froms, kept_statuses,
                   cardinality(kept_statuses) > 0
                   and kept_statuses[cardinality(kept_statuses)] = status as unchanged
              from (select coalesce(array_agg(f order by o) filter (where kept), '{}')
                             as kept_froms,
                           coalesce(array_agg(s order by o) filter (where kept), '{}')
                             as kept_statuses
                      from (select f, s, o, day is not null and (f is null or f < day) as kept
                              from unnest(froms, statuses) with ordinality as u(f, s, o))
                           entries) k) t
$$;
