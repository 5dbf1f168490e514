#[tracekit::log_performance]
struct Ranker {
    depth: u32,
}

fn main() {
    let _ = Ranker { depth: 1 }.depth;
}
