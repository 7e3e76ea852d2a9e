#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpgate::config::check_parse(data));
