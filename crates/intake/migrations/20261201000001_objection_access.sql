-- R-CR-11: an unmasked read of an objector's name is logged with the objection it belongs to,
-- not only its application: an application may have several objections, and an audit must
-- tell whose name was shown. Null for every other read, and for objection reads logged before
-- this column (not known).
alter table pii_access_log add column objection_id uuid;
