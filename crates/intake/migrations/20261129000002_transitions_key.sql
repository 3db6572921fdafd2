-- A transition is only ever read through its application (history, in id order), so the
-- primary key leads with the application: one index serves both uniqueness and the history
-- listing, and every transition written (one per submission and per step) maintains one index
-- instead of two.
alter table transitions drop constraint transitions_pkey;
alter table transitions add primary key (application_id, id);
drop index transitions_app;
