#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpgate::ldap::ber::check_decode(data));
