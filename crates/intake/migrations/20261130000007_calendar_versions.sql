-- R-X-4 "policy values (... calendars) are versioned ...; a decision records the policy version
-- it used": a deadline counted in working days also records the version of the calendar data
-- that counted it (`<year>#<digest of its dates>`, one per year used, joined by `+`; see
-- fupin_kernel::WorkingDayCalendar::version). Null where no deadline was counted (a move that
-- starts no step) and on rows written before this migration.
alter table applications add column step_calendar text;
alter table transitions add column calendar_version text;
alter table complaints add column calendar_version text;
