#[tracekit::log_performance(log_arg = true)]
fn rank(n: u32) -> u32 {
    n
}

fn main() {
    rank(1);
}
