-- R-IN-4, R-X-4: the deadline a move into a step set, kept with the transition. It was kept
-- only on the application, which the next move overwrites: a step finished on time left no
-- record of its deadline (only a late one's alert kept it). Transitions recorded before this
-- migration have none.
alter table transitions add column step_due_on date;
