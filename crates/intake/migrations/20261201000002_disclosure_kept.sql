-- R-CR-11: a submission over the caps is bad input (nothing kept with its request id) but is
-- told every other rule admission refuses, which discloses the applicant's credit facts like
-- a kept refusal. Its disclosure row says it was not kept, so an audit can tell a probe that
-- left no refusal behind from one that did. The default, true: every released version before
-- this column logged kept refusals only (the not-kept rows came with this column's release),
-- so rows before it and rows an older replica writes during a rolling upgrade were kept.
alter table admission_disclosures add column kept boolean not null default true;
