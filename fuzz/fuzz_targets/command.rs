#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpgate::ftp::command::check_round_trip(data));
