#[tracekit::log_errors(reraise = false)]
fn flush_cache(keys: &[u32]) {
    let _ = keys;
}

fn main() {
    flush_cache(&[1]);
}
