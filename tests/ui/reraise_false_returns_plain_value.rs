#[tracekit::log_errors(reraise = false)]
fn count(keys: &[u32]) -> usize {
    keys.len()
}

fn main() {
    let _ = count(&[1]);
}
