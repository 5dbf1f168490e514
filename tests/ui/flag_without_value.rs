#[tracekit::log_performance(log_result)]
fn rank(n: u32) -> u32 {
    n
}

fn main() {
    let _ = rank(1);
}
