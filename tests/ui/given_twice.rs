#[tracekit::log_performance]
#[tracekit::log_performance(log_args = false)]
fn rank(n: u32) -> u32 {
    n
}

fn main() {
    let _ = rank(1);
}
