-- R-CR-3, R-CR-4, R-CR-5: a rating may be announced ahead of its effective day (a renewal
-- noticed before the rating in force expires). The row kept only the newest rating, so from
-- the announcement until its day the household had no effective rating and was refused,
-- although the rating it replaces was still in force. Each row now also keeps the ratings
-- that stay in force until the newest one's day (`earlier`: a JSON array of
-- {grade, veto, credit_line, effective_from, expires_on, village_code}, in increasing order of
-- effective_from, each before the newest one's; at most three, the latest). A rating "from day
-- D" replaces whatever was announced for D or later, as credit-village status and
-- qualification do (migration 20261130000005); one without a day replaces all of them.
-- `earlier_as_of` is the sequence of the rating `earlier` was folded for: readers use `earlier`
-- only while it equals the row's `sequence`, so a row an earlier intake updated after a
-- rollback (its upsert knows nothing of `earlier`) is read as its newest rating alone, never
-- with ratings that rating replaced.
alter table rm_credit_ratings
    add column earlier jsonb not null default '[]' check (jsonb_typeof(earlier) = 'array'),
    add column earlier_as_of bigint;
