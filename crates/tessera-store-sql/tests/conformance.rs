//! The storage conformance suite, once per backend.

tessera_testkit::conformance_tests!();
