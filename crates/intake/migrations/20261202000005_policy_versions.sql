-- R-X-4: what each policy version id meant when it was first used. Decisions, deadlines and
-- events record a version id; the values behind it were only the policy file's, so a version
-- edited in place (or replicas running different files under one id) made a recorded id mean
-- two things, a new version dated back changed which one stood for days already decided, and
-- a version removed from the file left the deadlines pending under it uncounted for good.
-- Each start now checks the file against this table (fupin_kernel::PolicyHistory::register)
-- and refuses to start on any of those, naming the version.

create table policy_versions (
    policy text not null,
    id text not null,
    effective_from date not null,
    -- FNV-1a of the version's values as the file wrote them, keys sorted; empty when unknown.
    digest text not null,
    registered_at timestamptz not null default now(),
    primary key (policy, id)
);
