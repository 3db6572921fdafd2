-- R-ID-4, R-IN-3 "currently qualified": industry announces a qualification or disqualification
-- with the day it takes effect (`EnterpriseQualificationChanged.effective_from`), possibly ahead
-- of it. Until that day the qualification in force before it applies, so the read model keeps
-- it beside the announced one (as rm_credit_villages does for credit-village status).
alter table rm_qualified_enterprises
    add column effective_from date,
    add column qualified_before boolean;
