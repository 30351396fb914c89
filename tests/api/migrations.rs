//! Migrations: every `down.sql` undoes its `up.sql` exactly (the whole schema is compared, not
//! just table names), and re-applying gives the same schema again.

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use latchkey::store::url::DatabaseUrl;
use latchkey::store::{
    DbConnection, Store, revert_all_migrations, revert_last_migration, run_migrations,
    run_next_migration,
};

use crate::helpers::{TestDatabase, backend};

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    name: String,
}

fn tables(conn: &mut DbConnection) -> Vec<String> {
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "SELECT table_name AS name FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY 1"
        }
        DbConnection::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    diesel::sql_query(sql)
        .load::<TableName>(conn)
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .filter(|n| n != "__diesel_schema_migrations")
        .collect()
}

#[test]
fn down_undoes_up_and_up_is_repeatable() {
    let db = TestDatabase::create(backend());
    let store = Store::connect(&DatabaseUrl::parse(&db.url()).unwrap(), 1).unwrap();
    let mut conn = store.conn().unwrap();

    let empty = schema(&mut conn);
    let applied = run_migrations(&mut conn).unwrap();
    assert!(!applied.is_empty());
    let after_up = tables(&mut conn);
    let schema_after_up = schema(&mut conn);
    for expected in [
        "api_keys",
        "audit_events",
        "keyspaces",
        "memberships",
        "root_keys",
        "tenants",
        "usage_rollups",
        "users",
    ] {
        assert!(after_up.iter().any(|t| t == expected), "missing {expected}");
    }
    assert!(run_migrations(&mut conn).unwrap().is_empty(), "idempotent");

    revert_all_migrations(&mut conn).unwrap();
    assert_eq!(tables(&mut conn), Vec::<String>::new());
    assert_eq!(
        schema(&mut conn),
        empty,
        "reverting all leaves nothing behind"
    );

    run_migrations(&mut conn).unwrap();
    assert_eq!(tables(&mut conn), after_up);
    assert_eq!(schema(&mut conn), schema_after_up, "the same schema again");
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SchemaLine {
    #[diesel(sql_type = Text)]
    line: String,
}

/// The schema as lines to compare, exactly: every relation (tables, indexes, sequences, views
/// with their definitions), every column (its place among its table's columns, its type with
/// modifiers such as a length or a precision, nullability, default, identity and generation),
/// every index and constraint with its definition, and every trigger, function and type the
/// migrations made. On SQLite each table's `CREATE` text is compared too (it holds column
/// order and CHECK constraints), with views and triggers. Diesel's own table is left out.
fn schema(conn: &mut DbConnection) -> Vec<String> {
    let queries: &[&str] = match conn {
        DbConnection::Postgres(_) => &[
            "SELECT 'relation ' || c.relname || ' kind=' || c.relkind::text || \
             coalesce(' view=' || pg_get_viewdef(c.oid), '') AS line \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' \
             AND position('__diesel_schema_migrations' in c.relname) <> 1",
            "SELECT 'column ' || c.relname || '.' || a.attname || \
             ' #' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) || \
             ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull || \
             ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || \
             ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text AS line \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
             AND a.attnum > 0 AND NOT a.attisdropped \
             AND c.relname <> '__diesel_schema_migrations'",
            "SELECT 'index ' || indexname || ': ' || indexdef AS line FROM pg_indexes \
             WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'",
            "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ': ' || \
             pg_get_constraintdef(oid) AS line FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace \
             AND conrelid::regclass::text <> '__diesel_schema_migrations'",
            "SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname || ': ' || \
             pg_get_triggerdef(t.oid) AS line FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal",
            "SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || \
             '): ' || pg_get_functiondef(p.oid) AS line FROM pg_proc p \
             WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')",
            "SELECT 'type ' || t.typname || ' kind=' || t.typtype::text || ' ' || \
             coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
             FROM pg_enum e WHERE e.enumtypid = t.oid), '') AS line FROM pg_type t \
             WHERE t.typnamespace = 'public'::regnamespace AND (t.typtype IN ('e', 'd') \
             OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))",
        ],
        DbConnection::Sqlite(_) => &[
            "SELECT 'column ' || m.name || '.' || c.name || ' #' || c.cid || ' ' || c.type || \
             ' notnull=' || c.\"notnull\" || ' default=' || coalesce(c.dflt_value, '-') || \
             ' pk=' || c.pk AS line \
             FROM sqlite_master m JOIN pragma_table_info(m.name) c \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND m.name <> '__diesel_schema_migrations'",
            "SELECT 'index ' || name || ' on ' || tbl_name || ': ' || coalesce(sql, 'implicit') \
             AS line FROM sqlite_master WHERE type = 'index' \
             AND tbl_name <> '__diesel_schema_migrations'",
            // The definitions carry what the pragmas do not: CHECK constraints, column order,
            // views and triggers.
            "SELECT type || ' ' || name || ': ' || coalesce(sql, '') AS line FROM sqlite_master \
             WHERE type IN ('table', 'view', 'trigger') AND name NOT LIKE 'sqlite_%' \
             AND name <> '__diesel_schema_migrations'",
            "SELECT 'foreign key ' || m.name || '.' || f.\"from\" || ' -> ' || f.\"table\" || '.' || \
             f.\"to\" || ' on delete ' || f.on_delete || ' on update ' || f.on_update AS line \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        ],
    };
    let mut lines: Vec<String> = queries
        .iter()
        .flat_map(|sql| diesel::sql_query(*sql).load::<SchemaLine>(conn).unwrap())
        .map(|l| l.line)
        .collect();
    lines.sort();
    lines
}

/// Each migration's `down.sql` restores exactly the schema before its `up.sql` (columns and
/// their types, nullability and defaults, indexes, constraints), and applying it again gives
/// exactly the schema it gave the first time.
#[test]
fn every_down_restores_the_exact_schema_before_its_up() {
    let db = TestDatabase::create(backend());
    let store = Store::connect(&DatabaseUrl::parse(&db.url()).unwrap(), 1).unwrap();
    let mut conn = store.conn().unwrap();
    let mut walked = Vec::new();
    loop {
        let before = schema(&mut conn);
        let Some(version) = run_next_migration(&mut conn).unwrap() else {
            break;
        };
        let after = schema(&mut conn);
        assert_ne!(after, before, "{version} changes the schema");
        assert_eq!(revert_last_migration(&mut conn).unwrap(), version);
        let reverted = schema(&mut conn);
        let missing: Vec<_> = before.iter().filter(|l| !reverted.contains(l)).collect();
        let extra: Vec<_> = reverted.iter().filter(|l| !before.contains(l)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{version}'s down.sql: not restored {missing:#?}, left over {extra:#?}"
        );
        assert_eq!(
            run_next_migration(&mut conn).unwrap().as_deref(),
            Some(version.as_str())
        );
        assert_eq!(schema(&mut conn), after, "{version} applied again");
        walked.push(version);
    }
    assert!(walked.len() >= 2, "walked {walked:?}");
}

#[derive(diesel::QueryableByName, Debug, PartialEq, Eq)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut DbConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// Dropping the uniqueness of tenant names rebuilds the table on SQLite: nothing that refers to
/// a tenant may go with the old table (foreign keys cascade), the references must still hold
/// afterwards, and going back makes repeated names unique again instead of failing.
#[test]
fn tenant_names_may_repeat_and_nothing_refers_to_a_lost_tenant() {
    const BEFORE: &str = "20261201000002";
    let db = TestDatabase::create(backend());
    let store = Store::connect(&DatabaseUrl::parse(&db.url()).unwrap(), 1).unwrap();
    let mut conn = store.conn().unwrap();
    while run_next_migration(&mut conn)
        .unwrap()
        .expect("reaches the one before")
        != BEFORE
    {}
    let at = "'2026-12-01 10:00:00'";
    for sql in [
        format!("INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'Acme', {at})"),
        format!("INSERT INTO tenants (id, name, created_at) VALUES ('t2', 'Hooli', {at})"),
        format!(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at) \
             VALUES ('u1', 'ada@example.com', 'x', {at}, {at})"
        ),
        format!(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) \
             VALUES ('t1', 'u1', 'owner', {at}), ('t2', 'u1', 'owner', {at})"
        ),
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    let same_name =
        format!("INSERT INTO tenants (id, name, created_at) VALUES ('t3', 'Acme', {at})");
    assert!(diesel::sql_query(&same_name).execute(&mut conn).is_err());

    assert!(run_next_migration(&mut conn).unwrap().is_some());
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM memberships"), 2);
    diesel::sql_query(&same_name).execute(&mut conn).unwrap();
    // The references still hold, to the new table: unknown tenants are refused, and deleting a
    // tenant takes its memberships.
    let stray = format!(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) \
         VALUES ('nowhere', 'u1', 'owner', {at})"
    );
    assert!(diesel::sql_query(stray).execute(&mut conn).is_err());
    diesel::sql_query("DELETE FROM tenants WHERE id = 't2'")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM memberships"), 1);

    // Back: the newer 'Acme' is renamed, the older keeps its name, the constraint is back.
    assert_eq!(
        revert_last_migration(&mut conn).unwrap().len(),
        BEFORE.len()
    );
    let acme = "SELECT COUNT(*) AS n FROM tenants WHERE name = 'Acme' AND id = 't1'";
    assert_eq!(count(&mut conn, acme), 1);
    let renamed = "SELECT COUNT(*) AS n FROM tenants WHERE name = 'Acme (t3)'";
    assert_eq!(count(&mut conn, renamed), 1);
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM memberships"), 1);
    let again = format!("INSERT INTO tenants (id, name, created_at) VALUES ('t4', 'Acme', {at})");
    assert!(diesel::sql_query(again).execute(&mut conn).is_err());
}
