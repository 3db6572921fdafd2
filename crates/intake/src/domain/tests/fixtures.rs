//! Shared test data for the domain tests.
