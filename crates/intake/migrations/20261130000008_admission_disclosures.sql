-- R-CR-11: a submission refused by admission tells the clerk about the applicant's credit facts
-- (rated or not, the grade's line, the blacklist), for any resident id the clerk types in. The
-- read model keeps those facts by blind index; every refusal that shows them is logged here,
-- as unmasked personal data is in pii_access_log, so probing shows up in an audit.
create table admission_disclosures (
    id         bigserial primary key,
    at         timestamptz not null,
    caller     text not null,
    role       text not null,
    rpc        text not null,
    request_id text not null,
    subject_idx bytea not null check (octet_length(subject_idx) = 32),
    rules      text[] not null check (cardinality(rules) > 0)
);
create index admission_disclosures_subject on admission_disclosures (subject_idx, at);
create index admission_disclosures_caller on admission_disclosures (caller, at);
