-- R-IN-7: a complaint is assigned to an organisation, and may be assigned again (to another
-- organisation) until it is answered. Who assigned it and when are kept: the latest on the
-- complaint (shown with it), every assignment in complaint_assignments (the audit trail).
alter table complaints
    add column assigned_by text,
    add column assigned_at timestamptz;

create table complaint_assignments (
    id           bigserial primary key,
    complaint_id uuid not null references complaints (id),
    assigned_to  text not null,
    -- Null only for an assignment made before this trail existed: its organisation is known,
    -- not who made it or when.
    assigned_by  text,
    assigned_at  timestamptz,
    check ((assigned_by is null) = (assigned_at is null))
);
create index complaint_assignments_complaint on complaint_assignments (complaint_id, id);

insert into complaint_assignments (complaint_id, assigned_to)
select id, assigned_to from complaints where assigned_to is not null order by id;
