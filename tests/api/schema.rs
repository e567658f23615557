//! `schema.graphql` is generated from the code; this fails when they drift.
//! Run with `UPDATE_SCHEMA=1` to rewrite the file on purpose.

#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let generated = customer_api::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schema.graphql is out of date: run `UPDATE_SCHEMA=1 cargo test --test api schema` (or `cargo run -- print-schema > schema.graphql`) and commit it"
    );
}
