#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpgate::session::check::check_session(data, std::time::Instant::now()));
