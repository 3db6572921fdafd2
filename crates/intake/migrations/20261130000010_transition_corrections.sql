-- R-IN-2 (退回补正): a resubmission may correct the amount, the term, the purpose, the project
-- and the applicant's data. Its transition records what changed, so the history shows that
-- the tiers which approved before the return saw other values. A JSON array of
-- {"field", "from", "to"} (personal data as {"field", "personal": true}, without values).
alter table transitions
    add column corrections jsonb not null default '[]'
        check (jsonb_typeof(corrections) = 'array');
