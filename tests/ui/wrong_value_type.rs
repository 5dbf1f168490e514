#[tracekit::log_errors(reraise = "no")]
fn load() -> Result<u32, std::num::ParseIntError> {
    "1".parse()
}

fn main() {
    let _ = load();
}
