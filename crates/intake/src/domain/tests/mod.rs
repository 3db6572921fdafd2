//! Given/when/then tests of the intake domain: no database, no network.

mod fixtures;

mod admission;
mod bank;
mod complaint;
mod deadlines;
mod form;
mod notice;
mod properties;
mod workflow;
