-- The outbox is append-then-update at the write rate of its service: analyse and vacuum it
-- early, so the relay's plans see its real size and the dead versions of published rows go.
alter table outbox set (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_insert_scale_factor = 0.01
);
