//! Migrations as operators run them: `.env` is read but the environment wins
//! over it, and every migration's `down.sql` undoes exactly what its
//! `up.sql` did.

use serde_json::Value;

use crate::harness::{TestDb, sql_column, unique};

#[tokio::test]
async fn environment_variables_win_over_dotenv() {
    let (in_dotenv, in_environment) = tokio::join!(TestDb::create(), TestDb::create());
    let all = in_environment.applied_versions().await;
    let dir = std::env::temp_dir().join(unique("customer-api-dotenv"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        format!("DATABASE_URL={}\nLOG_FORMAT=json\n", in_dotenv.url()),
    )
    .unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_customer-api"));
    command
        .args(["migrate", "--revert"])
        .current_dir(&dir)
        .env("DATABASE_URL", in_environment.url())
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    assert_eq!(
        in_environment.applied_versions().await,
        all[..all.len() - 1].to_vec(),
        "the environment's DATABASE_URL was used"
    );
    assert_eq!(
        in_dotenv.applied_versions().await,
        all,
        ".env's DATABASE_URL was not"
    );
    // A setting only `.env` has still applies.
    let reverted = stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "reverted migration");
    assert!(
        reverted.is_some(),
        "LOG_FORMAT=json from .env: logs are JSON lines:\n{stderr}"
    );
}

/// Everything a migration can create in `public`, one line per object, in
/// a fixed order, without OIDs.
const SCHEMA: &str = "
SELECT line FROM (
    SELECT format('relation %s kind=%s persistence=%s rls=%s acl=%s', c.relname, c.relkind,
                  c.relpersistence, c.relrowsecurity, c.relacl) AS line
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('column %s.%s #%s %s notnull=%s default=%s identity=%s generated=%s collation=%s',
                  c.relname, a.attname,
                  -- The column's place among live ones: a dropped and
                  -- re-added column gets a new attnum, but the same place.
                  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, co.collname)
      FROM pg_attribute a
      JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_collation co ON co.oid = a.attcollation
     WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s %s %s deferrable=%s validated=%s', conrelid::regclass, conname,
                  pg_get_constraintdef(oid), condeferrable, convalidated)
      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL
    SELECT format('function %s', pg_get_functiondef(p.oid))
      FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('type %s %s %s', t.typname, t.typtype,
                  (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                     FROM pg_enum e WHERE e.enumtypid = t.oid))
      FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
    UNION ALL
    SELECT format('extension %s %s', extname, extversion) FROM pg_extension WHERE extname <> 'plpgsql'
    UNION ALL
    SELECT format('comment %s: %s', pg_describe_object(classoid, objoid, objsubid), description)
      FROM pg_description WHERE objoid >= 16384
) schema ORDER BY line";

async fn schema_of(db: &tokio_postgres::Client) -> Vec<String> {
    sql_column(db, SCHEMA, &[]).await
}

fn assert_same_schema(actual: &[String], expected: &[String], what: &str) {
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|line| !b.contains(line)).cloned().collect()
    };
    assert!(
        actual == expected,
        "{what}: the schema differs\nunexpected: {:#?}\nmissing: {:#?}",
        only(actual, expected),
        only(expected, actual)
    );
}

type MigrationConnection =
    diesel_async::async_connection_wrapper::AsyncConnectionWrapper<diesel_async::AsyncPgConnection>;

/// Runs one step of diesel's (blocking) migration harness on a connection of its own.
async fn migration_step(url: &str, step: fn(&mut MigrationConnection) -> String) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <MigrationConnection as diesel::Connection>::establish(&url)
            .expect("connect for migrations");
        step(&mut conn)
    })
    .await
    .unwrap()
}

fn revert_last(conn: &mut MigrationConnection) -> String {
    use diesel_migrations::MigrationHarness;
    conn.revert_last_migration(customer_api::db::MIGRATIONS)
        .expect("down.sql runs")
        .to_string()
}

fn apply_next(conn: &mut MigrationConnection) -> String {
    use diesel_migrations::MigrationHarness;
    conn.run_next_migration(customer_api::db::MIGRATIONS)
        .expect("up.sql runs")
        .to_string()
}

#[tokio::test]
async fn every_migration_reverts_and_reapplies_to_the_same_schema() {
    let db = TestDb::create().await;
    let client = db.client().await;
    let mut versions = db.applied_versions().await;
    versions.reverse();
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(versions.len(), on_disk, "the database has every migration");

    // Down, newest first: each down.sql changes the schema, and re-applying
    // its up.sql right after gives back exactly the schema before it.
    let mut schemas = vec![schema_of(&client).await];
    for version in &versions {
        let above = schemas.last().unwrap().clone();
        assert_eq!(&migration_step(&db.url(), revert_last).await, version);
        let below = schema_of(&client).await;
        assert_ne!(below, above, "{version}: down.sql changed nothing");
        assert_eq!(&migration_step(&db.url(), apply_next).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            &above,
            &format!("{version} reverted and re-applied"),
        );
        assert_eq!(&migration_step(&db.url(), revert_last).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            &below,
            &format!("{version} reverted twice"),
        );
        schemas.push(below);
    }
    let leftovers: Vec<&String> = schemas
        .last()
        .unwrap()
        .iter()
        .filter(|line| !line.contains("__diesel_schema_migrations"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "with every migration reverted, only diesel's own table is left: {leftovers:#?}"
    );

    // Up again from nothing, oldest first: each step reaches the schema
    // seen at that step on the way down.
    for (version, expected) in versions.iter().rev().zip(schemas.iter().rev().skip(1)) {
        assert_eq!(&migration_step(&db.url(), apply_next).await, version);
        assert_same_schema(
            &schema_of(&client).await,
            expected,
            &format!("{version} applied from scratch"),
        );
    }
}
