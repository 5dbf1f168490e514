#[tracekit::log_performance(skip(conection))]
fn query(connection: u32, sql: &str) -> usize {
    let _ = connection;
    sql.len()
}

fn main() {
    let _ = query(1, "select 1");
}
