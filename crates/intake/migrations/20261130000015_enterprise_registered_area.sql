-- R-ID-1, R-RK-9: the town or village an enterprise or cooperative is registered in, as the
-- industry service announces it with its qualification (`EnterpriseQualificationChanged.
-- area_code`). Its applications are held to that area, so that filing under another town
-- cannot escape the circuit breaker of its own. NULL: not announced (events before this
-- field), and the application's own area is taken as before.
alter table rm_qualified_enterprises add column area_code text
    check (area_code ~ '^[0-9]{9}([0-9]{3})?$');
