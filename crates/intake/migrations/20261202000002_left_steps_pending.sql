-- A step left while its deadline was still pending (moved on before the calendar reached it)
-- is kept here until a calendar counts that deadline: if the step was left after it, the scan
-- raises its `ApplicationStepOverdue` then (R-IN-4: once per step), and deletes the row.
create table left_steps_pending (
    application_id uuid not null references applications (id),
    step_seq       integer not null,
    step           text not null,
    started_on     date not null,
    left_on        date not null,
    -- The intake policy version the step was entered under (its days count the deadline).
    policy_version text not null,
    area_code      text not null,
    bank_id        text,
    primary key (application_id, step_seq)
);
