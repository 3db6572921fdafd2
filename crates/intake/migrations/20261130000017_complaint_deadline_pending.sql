-- R-IN-7: a complaint lodged while the working-day calendar cannot count its answer deadline
-- (the next year's file not yet deployed) is recorded with its deadline pending (`due_on`
-- null) instead of being refused: a complaint must not wait for reference data to be heard.
-- The deadline scan counts it once the calendar is there (intake reads calendars at start).
alter table complaints alter column due_on drop not null;
create index complaints_deadline_pending on complaints (id) where due_on is null;
