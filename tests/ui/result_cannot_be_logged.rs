struct Rows;

#[tracekit::log_performance(log_result = true)]
fn query(sql: &str) -> Result<Rows, std::fmt::Error> {
    let _ = sql;
    Ok(Rows)
}

fn main() {
    let _ = query("select 1");
}
