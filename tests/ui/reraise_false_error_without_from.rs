#[derive(Debug)]
struct StoreError;

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store error")
    }
}

impl std::error::Error for StoreError {}

#[tracekit::log_errors(reraise = false)]
fn fetch(key: u32) -> Result<u32, StoreError> {
    Ok(key)
}

fn main() {
    let _ = fetch(1);
}
