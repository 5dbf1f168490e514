trait Scorer {
    #[tracekit::log_errors]
    fn score(&self) -> Result<f64, std::fmt::Error>;
}

fn main() {}
