//! Data addresses on the wire: PORT, EPRT, 227, 229 and the EPSV argument.
//!
//! Owns parsing and formatting of every data address the proxy reads or
//! writes. It never decides whether an address is acceptable (bounce and
//! theft checks are `policy`), and never does I/O. Every parser is strict,
//! never panics, for any input, and every format parses back to the same
//! address.
//!
//! Grammars:
//!
//! ```text
//! ; PORT argument, RFC 959 §4.1.2 (host-port)
//! port-arg  = number "," number "," number "," number "," number "," number
//! number    = 1*3DIGIT                       ; 0..=255
//!
//! ; EPRT argument, RFC 2428 §2
//! eprt-arg  = d family d address d tcp-port d
//! d         = %x21-2F / %x3A-7E              ; printable, not a digit, same all four times
//! family    = "1" / "2"                      ; other digits: UnsupportedFamily
//! address   = IPv4 dotted quad / IPv6 text   ; as std::net parses them (no zone)
//! tcp-port  = 1*5DIGIT                       ; 1..=65535
//!
//! ; 227 text (after "227 "), RFC 959 §4.1.2 and RFC 1123 §4.1.2.6
//! 227-text  = *any port-arg-run *any
//!   the first maximal run of numbers joined by single commas that has
//!   exactly six numbers; in parentheses or not. A six-number run with a
//!   number above 255 is Malformed (no further search).
//!
//! ; 229 text (after "229 "), RFC 2428 §3
//! 229-text  = *(any but "(") "(" d d d tcp-port d ")" *any
//!
//! ; EPSV argument, RFC 2428 §3
//! epsv-arg  = "" / "1" / "2" / "ALL"         ; ALL in any case
//! ```
//!
//! Decisions: PORT and 227 accept port 0 (the policy refuses it); EPRT and
//! 229 refuse port 0, which RFC 2428 cannot mean. EPRT and EPSV with a
//! family number other than 1 or 2 give `UnsupportedFamily` (reply 522);
//! everything else malformed gives `Malformed` (reply 501). Formatting drops
//! an IPv6 scope id and flow label: neither can cross the wire.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::ftp::reply::{ARG_SYNTAX_ERROR, EXT_PROTO_NOT_SUPPORTED};

/// Why bytes are not a data address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    Malformed,
    UnsupportedFamily,
}

impl AddrError {
    /// The reply for a bad address: 501 (syntax error in the argument), or
    /// 522 for a network protocol we do not speak (RFC 2428 §2).
    pub fn reply_code(&self) -> u16 {
        match self {
            AddrError::Malformed => ARG_SYNTAX_ERROR,
            AddrError::UnsupportedFamily => EXT_PROTO_NOT_SUPPORTED,
        }
    }
}

impl std::fmt::Display for AddrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddrError::Malformed => "malformed address",
            AddrError::UnsupportedFamily => "unsupported network protocol",
        })
    }
}

/// The argument of EPSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: any protocol.
    Any,
    /// "1": IPv4.
    V4,
    /// "2": IPv6.
    V6,
    /// "ALL": from now on only EPSV.
    All,
}

/// A decimal number of 1 to `max_digits` digits, the whole of `text`.
fn decimal(text: &[u8], max_digits: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_digits || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
}

/// A number 0..=255 of 1 to 3 digits.
fn octet(text: &[u8]) -> Option<u8> {
    decimal(text, 3).and_then(|n| u8::try_from(n).ok())
}

/// A TCP port 1..=65535 of 1 to 5 digits.
fn tcp_port(text: &[u8]) -> Option<u16> {
    decimal(text, 5)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&p| p != 0)
}

/// Six numbers joined by commas -> address; `None` unless exactly that.
fn six_numbers(text: &[u8]) -> Option<SocketAddrV4> {
    let mut n = [0u8; 6];
    let mut parts = text.split(|&b| b == b',');
    for slot in &mut n {
        *slot = octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(SocketAddrV4::new(
        Ipv4Addr::new(n[0], n[1], n[2], n[3]),
        u16::from_be_bytes([n[4], n[5]]),
    ))
}

/// "h1,h2,h3,h4,p1,p2" for an address.
fn six_numbers_text(a: SocketAddrV4) -> String {
    let [h1, h2, h3, h4] = a.ip().octets();
    let [p1, p2] = a.port().to_be_bytes();
    format!("{h1},{h2},{h3},{h4},{p1},{p2}")
}

/// Parses a PORT argument "h1,h2,h3,h4,p1,p2". Never panics, for any input.
pub fn parse_port(arg: &[u8]) -> Result<SocketAddrV4, AddrError> {
    six_numbers(arg).ok_or(AddrError::Malformed)
}

/// Formats a PORT argument "h1,h2,h3,h4,p1,p2".
pub fn format_port(a: SocketAddrV4) -> String {
    six_numbers_text(a)
}

/// Parses an EPRT argument "|1|1.2.3.4|5|" or "|2|::1|5|" (any delimiter).
/// Never panics, for any input.
pub fn parse_eprt(arg: &[u8]) -> Result<SocketAddr, AddrError> {
    let (&d, _) = arg.split_first().ok_or(AddrError::Malformed)?;
    if !(0x21..=0x7e).contains(&d) || d.is_ascii_digit() {
        return Err(AddrError::Malformed);
    }
    // d family d address d port d  ->  "", family, address, port, ""
    let fields: Vec<&[u8]> = arg.split(|&b| b == d).collect();
    let [first, family, address, port, last] = fields.as_slice() else {
        return Err(AddrError::Malformed);
    };
    if !first.is_empty() || !last.is_empty() {
        return Err(AddrError::Malformed);
    }
    let port = tcp_port(port).ok_or(AddrError::Malformed)?;
    let address = std::str::from_utf8(address).map_err(|_| AddrError::Malformed)?;
    let ip = match *family {
        b"1" => IpAddr::V4(
            address
                .parse::<Ipv4Addr>()
                .map_err(|_| AddrError::Malformed)?,
        ),
        b"2" => IpAddr::V6(
            address
                .parse::<Ipv6Addr>()
                .map_err(|_| AddrError::Malformed)?,
        ),
        f if decimal(f, 3).is_some() => return Err(AddrError::UnsupportedFamily),
        _ => return Err(AddrError::Malformed),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Formats an EPRT argument with `|` as delimiter: "|1|1.2.3.4|5|".
pub fn format_eprt(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v4) => format!("|1|{}|{}|", v4.ip(), v4.port()),
        SocketAddr::V6(v6) => format!("|2|{}|{}|", v6.ip(), v6.port()),
    }
}

/// Parses the text of a 227 reply (after "227 "): the first maximal run of
/// six comma-joined numbers. Never panics, for any input.
pub fn parse_227(text: &[u8]) -> Result<SocketAddrV4, AddrError> {
    let is_run_byte = |b: &u8| b.is_ascii_digit() || *b == b',';
    let mut rest = text;
    while let Some(start) = rest.iter().position(u8::is_ascii_digit) {
        let run_len = rest[start..]
            .iter()
            .position(|b| !is_run_byte(b))
            .unwrap_or(rest.len() - start);
        let mut run = &rest[start..start + run_len];
        rest = &rest[start + run_len..];
        // A run may end in commas that join nothing: "(1,2,3,4,5,6),".
        while let Some(r) = run.strip_suffix(b",") {
            run = r;
        }
        let numbers = run.split(|&b| b == b',');
        if numbers.clone().count() == 6 && numbers.clone().all(|n| !n.is_empty()) {
            return six_numbers(run).ok_or(AddrError::Malformed);
        }
    }
    Err(AddrError::Malformed)
}

/// Formats a whole 227 reply line
/// "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).\r\n".
pub fn format_227(a: SocketAddrV4) -> Vec<u8> {
    format!("227 Entering Passive Mode ({}).\r\n", six_numbers_text(a)).into_bytes()
}

/// Parses the text of a 229 reply (after "229 "): the port of
/// "(|||port|)", any delimiter. Never panics, for any input.
pub fn parse_229(text: &[u8]) -> Result<u16, AddrError> {
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or(AddrError::Malformed)?;
    let inner = &text[open + 1..];
    let close = inner
        .iter()
        .position(|&b| b == b')')
        .ok_or(AddrError::Malformed)?;
    let inner = &inner[..close];
    let (&d, _) = inner.split_first().ok_or(AddrError::Malformed)?;
    if !(0x21..=0x7e).contains(&d) || d.is_ascii_digit() {
        return Err(AddrError::Malformed);
    }
    let port = inner
        .strip_prefix(&[d, d, d][..])
        .and_then(|r| r.strip_suffix(&[d][..]))
        .ok_or(AddrError::Malformed)?;
    tcp_port(port).ok_or(AddrError::Malformed)
}

/// Formats a whole 229 reply line
/// "229 Entering Extended Passive Mode (|||port|)\r\n".
pub fn format_229(port: u16) -> Vec<u8> {
    format!("229 Entering Extended Passive Mode (|||{port}|)\r\n").into_bytes()
}

/// Parses the argument of EPSV. Never panics, for any input.
pub fn parse_epsv_arg(arg: &[u8]) -> Result<EpsvArg, AddrError> {
    match arg {
        b"" => Ok(EpsvArg::Any),
        b"1" => Ok(EpsvArg::V4),
        b"2" => Ok(EpsvArg::V6),
        a if a.eq_ignore_ascii_case(b"ALL") => Ok(EpsvArg::All),
        a if decimal(a, 3).is_some() => Err(AddrError::UnsupportedFamily),
        _ => Err(AddrError::Malformed),
    }
}

/// Fuzz and property-test entry point: runs `data` through every address
/// parser (PORT, EPRT, 227, 229, EPSV) and checks that what parses formats
/// back to text that parses to the same address. Panics only when a round
/// trip fails.
#[doc(hidden)]
pub fn check_round_trip(data: &[u8]) {
    if let Ok(a) = parse_port(data) {
        assert!(
            parse_port(format_port(a).as_bytes()) == Ok(a),
            "PORT round trip"
        );
    }
    if let Ok(a) = parse_eprt(data) {
        assert!(
            parse_eprt(format_eprt(a).as_bytes()) == Ok(a),
            "EPRT round trip"
        );
    }
    if let Ok(a) = parse_227(data) {
        let wire = format_227(a);
        let text = wire
            .strip_prefix(b"227 ")
            .and_then(|t| t.strip_suffix(b"\r\n"))
            .unwrap_or(&[]);
        assert!(parse_227(text) == Ok(a), "227 round trip");
    }
    if let Ok(p) = parse_229(data) {
        let wire = format_229(p);
        let text = wire
            .strip_prefix(b"229 ")
            .and_then(|t| t.strip_suffix(b"\r\n"))
            .unwrap_or(&[]);
        assert!(parse_229(text) == Ok(p), "229 round trip");
    }
    if let Ok(arg) = parse_epsv_arg(data) {
        let _ = arg;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddrV6;

    fn v4(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn port_arguments_parse_strictly() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"192,168,1,2,4,1", Some("192.168.1.2:1025")),
            (b"0,0,0,0,0,0", Some("0.0.0.0:0")),
            (b"255,255,255,255,255,255", Some("255.255.255.255:65535")),
            (b"001,002,003,004,000,021", Some("1.2.3.4:21")),
            (b"256,1,1,1,1,1", None),
            (b"1,2,3,4,5", None),
            (b"1,2,3,4,5,6,7", None),
            (b"1,2,3,4,5,", None),
            (b" 1,2,3,4,5,6", None),
            (b"1,2,3,4,5,6 ", None),
            (b"1,2,3,4,5,0006", None),
            (b"(1,2,3,4,5,6)", None),
            (b"", None),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_port(arg).ok(), want.map(v4), "arg {arg:?}");
        }
    }

    #[test]
    fn eprt_arguments_parse_strictly() {
        let ok: &[(&[u8], &str)] = &[
            (b"|1|132.235.1.2|6275|", "132.235.1.2:6275"),
            (
                b"|2|1080::8:800:200C:417A|5282|",
                "[1080::8:800:200c:417a]:5282",
            ),
            (b"!1!10.0.0.1!21!", "10.0.0.1:21"),
            (b"|2|::ffff:10.0.0.1|21|", "[::ffff:10.0.0.1]:21"),
        ];
        for (arg, want) in ok {
            assert_eq!(parse_eprt(arg), Ok(want.parse().unwrap()), "arg {arg:?}");
        }
        let bad: &[(&[u8], AddrError)] = &[
            (b"|3|1.2.3.4|21|", AddrError::UnsupportedFamily),
            (b"|x|1.2.3.4|21|", AddrError::Malformed),
            (b"|1|1.2.3.4|0|", AddrError::Malformed),
            (b"|1|1.2.3.4|65536|", AddrError::Malformed),
            (b"|1|::1|21|", AddrError::Malformed),
            (b"|2|1.2.3.4|21|", AddrError::Malformed),
            (b"|2|fe80::1%eth0|21|", AddrError::Malformed),
            (b"|1|1.2.3.4|21", AddrError::Malformed),
            (b"|1|1.2.3.4|21||", AddrError::Malformed),
            (b"1|1.2.3.4|21|", AddrError::Malformed),
            (b" |1|1.2.3.4|21|", AddrError::Malformed),
            (b"|1|1.2.3|21|", AddrError::Malformed),
            (b"|1|01.2.3.4|21|", AddrError::Malformed),
            (b"", AddrError::Malformed),
        ];
        for (arg, want) in bad {
            assert_eq!(parse_eprt(arg), Err(want.clone()), "arg {arg:?}");
        }
    }

    #[test]
    fn reply_227_texts_give_the_first_six_number_run() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"Entering Passive Mode (192,168,0,1,195,149).",
                Some("192.168.0.1:50069"),
            ),
            (b"Entering Passive Mode 10,0,0,1,4,1", Some("10.0.0.1:1025")),
            (b"=127,0,0,1,4,1", Some("127.0.0.1:1025")),
            (b"Mode 2 ok (1,2,3,4,5,6)", Some("1.2.3.4:1286")),
            (b"(1,2,3,4,5,6,7) (8,9,10,11,12,13)", Some("8.9.10.11:3085")),
            (b"(1,2,3,4,5,6), then", Some("1.2.3.4:1286")),
            (b"(1,2,3,4,5,256)", None),
            (b"(1,2,3,4,5)", None),
            (b"(1,,2,3,4,5,6)", None),
            (b"Entering Passive Mode", None),
            (b"", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_227(text).ok(), want.map(v4), "text {text:?}");
        }
    }

    #[test]
    fn reply_229_texts_give_the_port() {
        let cases: &[(&[u8], Option<u16>)] = &[
            (b"Entering Extended Passive Mode (|||6446|)", Some(6446)),
            (b"ok (!!!21!) trailing", Some(21)),
            (b"(|||0|)", None),
            (b"(|||65536|)", None),
            (b"(||6446|)", None),
            (b"(|!|6446|)", None),
            (b"(|||6446|", None),
            (b"(|1|1.2.3.4|6446|)", None),
            (b"(111211)", None),
            (b"|||6446|", None),
            (b"", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_229(text).ok(), *want, "text {text:?}");
        }
    }

    #[test]
    fn epsv_arguments_are_empty_1_2_or_all() {
        let cases: &[(&[u8], Result<EpsvArg, AddrError>)] = &[
            (b"", Ok(EpsvArg::Any)),
            (b"1", Ok(EpsvArg::V4)),
            (b"2", Ok(EpsvArg::V6)),
            (b"ALL", Ok(EpsvArg::All)),
            (b"all", Ok(EpsvArg::All)),
            (b"3", Err(AddrError::UnsupportedFamily)),
            (b"ALL ", Err(AddrError::Malformed)),
            (b" 1", Err(AddrError::Malformed)),
            (b"x", Err(AddrError::Malformed)),
        ];
        for (arg, want) in cases {
            assert_eq!(parse_epsv_arg(arg), *want, "arg {arg:?}");
        }
    }

    #[test]
    fn address_errors_map_to_501_and_522() {
        assert_eq!(AddrError::Malformed.reply_code(), 501);
        assert_eq!(AddrError::UnsupportedFamily.reply_code(), 522);
    }

    #[test]
    fn formats_look_like_the_rfc_examples() {
        let a = v4("192.168.0.1:50069");
        assert_eq!(format_port(a), "192,168,0,1,195,149");
        assert_eq!(
            format_227(a),
            b"227 Entering Passive Mode (192,168,0,1,195,149).\r\n"
        );
        assert_eq!(format_eprt(SocketAddr::V4(a)), "|1|192.168.0.1|50069|");
        assert_eq!(
            format_eprt("[2001:db8::1]:21".parse().unwrap()),
            "|2|2001:db8::1|21|"
        );
        assert_eq!(
            format_229(6446),
            b"229 Entering Extended Passive Mode (|||6446|)\r\n"
        );
    }

    fn any_v4() -> impl Strategy<Value = SocketAddrV4> {
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddrV4::new(Ipv4Addr::from(ip), port))
    }

    fn any_socket() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<u32>(), 1u16..)
                .prop_map(|(ip, p)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), p))),
            (any::<u128>(), 1u16..).prop_map(|(ip, p)| SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                p,
                0,
                0
            ))),
        ]
    }

    /// Strip "ddd " and CR LF from a formatted reply line.
    fn reply_text(line: &[u8]) -> &[u8] {
        &line[4..line.len() - 2]
    }

    proptest! {
        #[test]
        fn port_format_parses_back(a in any_v4()) {
            prop_assert_eq!(parse_port(format_port(a).as_bytes()), Ok(a));
        }

        #[test]
        fn reply_227_format_parses_back(a in any_v4()) {
            prop_assert_eq!(parse_227(reply_text(&format_227(a))), Ok(a));
        }

        #[test]
        fn eprt_format_parses_back(a in any_socket()) {
            prop_assert_eq!(parse_eprt(format_eprt(a).as_bytes()), Ok(a));
        }

        #[test]
        fn reply_229_format_parses_back(port in 1u16..) {
            prop_assert_eq!(parse_229(reply_text(&format_229(port))), Ok(port));
        }

        #[test]
        fn address_parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_port(&bytes);
            let _ = parse_eprt(&bytes);
            let _ = parse_227(&bytes);
            let _ = parse_229(&bytes);
            let _ = parse_epsv_arg(&bytes);
        }

        #[test]
        fn address_parsers_never_panic_on_address_like_text(text in "[0-9,|()!:.a-f ]{0,40}") {
            let _ = parse_port(text.as_bytes());
            let _ = parse_eprt(text.as_bytes());
            let _ = parse_227(text.as_bytes());
            let _ = parse_229(text.as_bytes());
        }
    }

    proptest::proptest! {
        #[test]
        fn check_round_trip_holds_for_any_bytes(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..60)) {
            super::check_round_trip(&data);
        }
    }
}
