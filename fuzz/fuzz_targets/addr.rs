#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpgate::ftp::addr::check_round_trip(data));
