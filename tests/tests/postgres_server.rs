//! The throwaway PostgreSQL server the PostgreSQL store's tests will run against: it starts
//! from Debian's binaries in a temporary directory, answers on its own loopback port, keeps
//! what it is given, and is gone when dropped.

use driftless_tests::postgres::PgServer;
use tokio_postgres::NoTls;

#[tokio::test]
async fn a_throwaway_server_starts_answers_and_stops() {
    let server = PgServer::start();
    assert_ne!(server.port, 5432, "never the system cluster's port");
    let (client, connection) = tokio_postgres::connect(&server.url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT NOT NULL)")
        .await
        .unwrap();
    client
        .execute("INSERT INTO t VALUES ($1, $2)", &[&"a", &41i64])
        .await
        .unwrap();
    let row = client
        .query_one("UPDATE t SET v = v + 1 WHERE k = 'a' RETURNING v", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    let data_dir = client
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert!(data_dir.contains("driftless-pg-"), "{data_dir}");
    drop(client);

    let port = server.port;
    drop(server);
    assert!(
        tokio_postgres::connect(
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            NoTls
        )
        .await
        .is_err(),
        "the server stops when dropped"
    );
}
