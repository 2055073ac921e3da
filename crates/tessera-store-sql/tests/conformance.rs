//! The storage conformance suite, once per backend.

mod sqlite {
    tessera_store::conformance_tests!(tessera_store_sql::testing::sqlite_temp());
}

mod postgres {
    tessera_store::conformance_tests!(tessera_store_sql::testing::postgres_temp());
}
