//! The `ferry` command-line program.

fn main() {
    eprintln!("ferry {}: the replication engine is not built yet", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
