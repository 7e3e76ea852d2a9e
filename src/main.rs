//! The ftpgate binary: flags -> ftpgate::run, one error line, exit status.

fn main() {
    eprintln!("ftpgate: not built yet");
    std::process::exit(1);
}
