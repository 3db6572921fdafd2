-- R-IN-5: an upheld objection rejects the application, and the objections still open beside it
-- can no longer be resolved on their own (the application is no longer on hold). They are
-- closed with it as 'superseded', naming the upheld objection, instead of staying open for good.
alter table objections drop constraint objections_state_check;
alter table objections add constraint objections_state_check
    check (state in ('open', 'upheld', 'dismissed', 'superseded'));
