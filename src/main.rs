//! The ftpgate binary: flags -> ftpgate::run, one error line, exit status.

fn main() {
    let opts = match ftpgate::cli::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ftpgate: {e}");
            std::process::exit(2);
        }
    };
    match ftpgate::run(&opts) {
        Ok(status) => std::process::exit(status),
        Err(e) => {
            eprintln!("ftpgate: {e:#}");
            std::process::exit(1);
        }
    }
}
