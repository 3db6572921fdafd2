-- One database per service (R-X-1: no service reads another's tables). The postgres image runs
-- this once, when its data volume is empty; each service applies its own migrations at start.
create database intake;
create database rating;
create database risk;
create database disbursement;
create database industry;
