//! Migrations: every `down.sql` undoes its `up.sql`, and re-applying works.

use diesel::RunQueryDsl;
use diesel::sql_types::Text;
use latchkey::store::url::DatabaseUrl;
use latchkey::store::{DbConnection, Store, revert_all_migrations, run_migrations};

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

    let applied = run_migrations(&mut conn).unwrap();
    assert!(!applied.is_empty());
    let after_up = tables(&mut conn);
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

    run_migrations(&mut conn).unwrap();
    assert_eq!(tables(&mut conn), after_up);
}
