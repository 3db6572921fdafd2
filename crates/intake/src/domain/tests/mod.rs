//! Given/when/then tests of the intake domain: no database, no network.

mod fixtures;
