#[tracekit::trace_execution(component = "serving", level = "debug")]
#[tracekit::log_performance(level = "info")]
fn serve(n: u32) -> u32 {
    n
}

fn main() {
    let _ = serve(1);
}
