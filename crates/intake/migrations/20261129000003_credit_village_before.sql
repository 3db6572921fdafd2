-- R-CR-8: a credit-village status may be announced ahead of the day it takes effect, in
-- either direction. Until that day the status in force before it applies, so the read model
-- keeps it beside the announced one.
alter table rm_credit_villages add column credit_village_before boolean;
