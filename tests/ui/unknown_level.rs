#[tracekit::log_performance(level = "loud")]
fn rank() {}

fn main() {
    rank();
}
