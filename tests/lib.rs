//! Helpers for the end-to-end suite live here; the tests are in `tests/e2e/`.
