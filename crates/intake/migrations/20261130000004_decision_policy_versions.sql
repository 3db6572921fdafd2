-- R-X-4 "a decision records the policy version it used": every transition (a step's deadline,
-- the notice period, the caps checked) and every complaint (its answer deadline) records the
-- version of the intake policy it was decided under. `applications.policy_version` holds only
-- the latest. Rows written before this migration have ''.
alter table transitions add column policy_version text not null default '';
alter table complaints add column policy_version text not null default '';
