-- Intake: applications, their workflow history, objections, complaints, and the read model of
-- other services' facts that admission needs (R-IN-3). No other service reads these tables.
--
-- R-CR-11: personal data is never stored in plain text. `*_enc` columns hold values sealed by
-- the service (XChaCha20-Poly1305, format and key id in the value, bound to column and row id;
-- see platform::pii); `*_idx` columns hold a keyed blind index (HMAC-SHA256) for lookups by
-- equality. Resident IDs, names and phones are personal; an organisation's USCC and name are
-- not, but share the applicant columns and are sealed with them.

create table applications (
    id                   uuid primary key,
    kind                 text not null check (kind in ('household', 'enterprise', 'cooperative')),
    applicant_id_enc     bytea not null,         -- resident ID or USCC, sealed
    applicant_id_idx     bytea not null check (octet_length(applicant_id_idx) = 32),
                                                 -- its blind index (read-model key)
    applicant_name_enc   bytea not null,         -- sealed
    phone_enc            bytea not null,         -- sealed; seals '' for organisations
    poor_household_number text not null default '',
    self_use             boolean not null default false,
    village_code         text check (village_code ~ '^[0-9]{12}$'),
    town_code            text check (town_code ~ '^[0-9]{9}$'),
    area_code            text not null,          -- most specific area of the applicant
    amount               numeric(18,2) not null check (amount > 0),
    term_months          integer not null check (term_months > 0),
    purpose              integer not null,
    project_description  text not null default '',
    status               text not null,
    returned_from        text,                   -- step a RETURNED application goes back to
    step_seq             integer not null default 1,   -- increments on every step entry
    step_started_on      date,
    step_due_on          date,                   -- R-IN-4 deadline of the current step
    overdue_alerted_seq  integer,                -- step_seq for which the overdue alert was raised
    notice_ends_on       date,                   -- R-IN-5 last day of the public notice
    bank_id              text,
    recommended_on       date,
    decision             jsonb,
    disbursement         jsonb,
    loan_id              uuid,
    submitted_by         text not null,
    policy_version       text not null,
    submitted_at         timestamptz not null,
    updated_at           timestamptz not null,
    version              bigint not null default 1
);
create index applications_area on applications (area_code, id);
create index applications_status on applications (status, id);
create index applications_bank on applications (bank_id, id) where bank_id is not null;
create index applications_due on applications (step_due_on) where step_due_on is not null;

-- R-IN-2: every transition, who, when, why.
create table transitions (
    id             uuid primary key,
    application_id uuid not null references applications (id),
    from_status    text,
    to_status      text not null,
    action         text not null,
    actor          text not null,
    actor_role     text not null,
    reason         text not null default '',
    at             timestamptz not null
);
create index transitions_app on transitions (application_id, id);

-- R-IN-5: objections during public notice.
create table objections (
    id             uuid primary key,
    application_id uuid not null references applications (id),
    objector_enc   bytea not null,             -- sealed name of the objector
    content        text not null,
    state          text not null check (state in ('open', 'upheld', 'dismissed')),
    resolution     text not null default '',
    filed_by       text not null,
    filed_at       timestamptz not null,
    resolved_by    text,
    resolved_at    timestamptz
);
create index objections_open on objections (application_id) where state = 'open';

-- R-IN-7: complaints.
create table complaints (
    id             uuid primary key,
    complainant_enc bytea not null,            -- sealed name of the complainant
    content        text not null,
    area_code      text not null,
    application_id uuid,
    assigned_to    text,
    answer         text,
    lodged_by      text not null,
    lodged_at      timestamptz not null,
    lodged_on      date not null,
    due_on         date not null,
    answered_by    text,
    answered_at    timestamptz,
    overdue_alerted boolean not null default false
);
create index complaints_due on complaints (due_on) where answer is null;

-- Read model fed by events (ARCHITECTURE "each consuming service keeps its own read model").
-- Events carry plain resident IDs; the consumer keeps only their blind index (`subject_idx`,
-- same key and domain as applications.applicant_id_idx), which is all admission looks up by.
create table rm_credit_ratings (
    subject_idx    bytea primary key check (octet_length(subject_idx) = 32),
    subject_kind   integer not null,
    village_code   text not null,
    grade          text not null,
    veto           boolean not null,
    credit_line    numeric(18,2) not null,
    effective_from date,
    expires_on     date,
    policy_version text not null,
    sequence       bigint not null
);

create table rm_credit_villages (
    village_code   text primary key,
    credit_village boolean not null,
    effective_from date,
    sequence       bigint not null
);

create table rm_blacklist (
    entry_id     text primary key,
    subject_idx  bytea not null check (octet_length(subject_idx) = 32),
    subject_kind integer not null,
    reason       text not null,
    active       boolean not null
);
create index rm_blacklist_subject on rm_blacklist (subject_idx) where active;

create table rm_suspended_areas (
    area_code  text primary key,
    suspended  boolean not null,
    npl_ratio  text not null,
    sequence   bigint not null
);

-- USCCs are public registry data (not personal), so this table keeps them as they are.
create table rm_qualified_enterprises (
    uscc      text primary key,
    qualified boolean not null,
    reason    text not null,
    sequence  bigint not null
);

-- R-CR-11: every response that shows personal data unmasked is recorded, one row per
-- application or complaint it showed, with the response fields that were unmasked.
create table pii_access_log (
    id             bigserial primary key,
    at             timestamptz not null,
    caller         text not null,
    role           text not null,
    application_id uuid,                       -- the applicant's or an objector's data
    complaint_id   uuid,                       -- the complainant's name
    rpc            text not null,
    fields         text[] not null check (
        cardinality(fields) > 0
        and fields <@ array['applicant_id', 'applicant_name', 'applicant_phone', 'objector',
                            'complainant']::text[]),
    check (num_nonnulls(application_id, complaint_id) = 1)
);
