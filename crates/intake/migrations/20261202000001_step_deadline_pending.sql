-- R-IN-4: a step entered while the working-day calendar cannot count its deadline (the next
-- year's file not yet deployed) is taken with its deadline pending (`step_due_on` null while
-- the status is a step) instead of being refused, so a calendar deployed late does not stop
-- the programme. The deadline scan counts it once the calendar is there (intake reads
-- calendars at start); this index finds the few such rows.
create index applications_step_deadline_pending on applications (id)
    where step_due_on is null
      and status in ('village_review', 'town_review', 'district_review', 'recommended');
