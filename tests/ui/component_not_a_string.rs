#[tracekit::trace_execution(component = serving)]
fn serve() {}

fn main() {
    serve();
}
