-- R-IN-4: which step entry a transition started (the application's step sequence number), so
-- a deadline counted later (left pending for want of a calendar) is filled in on the
-- transition that entered that step, found by number rather than by time (replicas' clocks
-- differ). Null for moves that enter no step, and for transitions recorded before this.
alter table transitions add column step_seq integer;
