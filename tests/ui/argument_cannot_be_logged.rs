struct Connection;

#[tracekit::log_performance(log_args = true)]
fn query(conn: &Connection, sql: &str) -> usize {
    let _ = conn;
    sql.len()
}

fn main() {
    let _ = query(&Connection, "select 1");
}
