-- R-CR-11: the personal-data audit trails name who acted by the token's subject and role; two
-- banks' cores (or a clerk moved to another village) under one subject could not be told
-- apart. Each row now also records the caller's area and, for a bank, its bank id. Rows
-- written before have neither.
alter table pii_access_log add column if not exists caller_area text;
alter table pii_access_log add column if not exists caller_bank_id text;
alter table admission_disclosures add column if not exists caller_area text;
alter table admission_disclosures add column if not exists caller_bank_id text;
