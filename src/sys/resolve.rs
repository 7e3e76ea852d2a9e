//! Name resolution that keeps working inside an EMPTY chroot.
//!
//! glibc's getaddrinfo() reads /etc/nsswitch.conf, /etc/hosts and
//! /etc/resolv.conf and loads NSS modules (libnss_files.so, libnss_dns.so)
//! on first use; inside an empty ServerRoot none of them exist and every
//! host name fails. So [`Resolver::load`] reads /etc/hosts and
//! /etc/resolv.conf BEFORE the chroot, and [`Resolver::lookup`] answers from
//! that cached data after it: first the hosts file (exact name,
//! case-insensitive, file order), then a minimal DNS query (A and AAAA over
//! UDP, recursion desired) to each cached nameserver in turn, with a short
//! timeout. Nothing after the chroot opens a file or loads a library.
//!
//! What it does not do (documented in the README): NSS sources other than
//! `files` and `dns` (LDAP, mdns, systemd-resolved's varlink), DNS over TCP
//! (a truncated answer is used as far as it goes), EDNS, DNSSEC. The
//! `search`/`domain` list is tried for names without a dot, like glibc's
//! default `ndots:1`.
//!
//! Guarantees: every read is bounded (file size, entries, packet size,
//! answers, time); an answer is taken only from the nameserver the query
//! went to (connected UDP socket), only with the query's random id, and only
//! when it repeats our question. Parsing never panics, for any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::limits;

/// Cached name-resolution data, read before the jail. The default value
/// knows no names and no nameservers: it resolves address literals only.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// /etc/hosts entries: lower-case name, address (file order).
    hosts: Vec<(String, IpAddr)>,
    nameservers: Vec<SocketAddr>,
    search: Vec<String>,
    timeout: Duration,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Not a syntactically valid host name.
    BadName,
    /// Neither the hosts file nor DNS knows it.
    NotFound,
    /// No nameserver answered in time (or none is configured).
    NoAnswer,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResolveError::BadName => "not a valid host name",
            ResolveError::NotFound => "host not found",
            ResolveError::NoAnswer => "no answer from the name servers",
        })
    }
}

/// Read a file, at most `limits::MAX_RESOLVER_FILE` bytes; "" when missing.
fn read_bounded(path: &str) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f
            .take(limits::MAX_RESOLVER_FILE as u64)
            .read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

impl Resolver {
    /// Read /etc/hosts and /etc/resolv.conf now, while they are reachable.
    /// Missing files mean "no entries" (and, like glibc, a missing
    /// resolv.conf means the nameserver on 127.0.0.1).
    pub fn load() -> Resolver {
        let resolv = if std::path::Path::new("/etc/resolv.conf").exists() {
            read_bounded("/etc/resolv.conf")
        } else {
            "nameserver 127.0.0.1\n".to_string()
        };
        Resolver::from_text(&read_bounded("/etc/hosts"), &resolv)
    }

    /// Build from the text of a hosts file and a resolv.conf (pure).
    /// /etc/hosts only, no DNS: the policy simulator sends nothing.
    pub fn hosts_only() -> Resolver {
        Resolver::from_text(&read_bounded("/etc/hosts"), "")
    }

    pub fn from_text(hosts: &str, resolv: &str) -> Resolver {
        let mut r = Resolver {
            timeout: Duration::from_secs(limits::DNS_TIMEOUT_SECS),
            ..Resolver::default()
        };
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for name in words {
                if r.hosts.len() >= limits::MAX_HOSTS_ENTRIES {
                    break;
                }
                r.hosts.push((name.to_ascii_lowercase(), ip));
            }
        }
        for line in resolv.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // glibc uses at most three (MAXNS); a scope id (%eth0) is
                    // not supported and the entry is skipped.
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok())
                        && r.nameservers.len() < limits::MAX_NAMESERVERS
                    {
                        r.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") | Some("domain") => {
                    r.search = words
                        .take(limits::MAX_SEARCH_DOMAINS)
                        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|w| !w.is_empty())
                        .collect();
                }
                Some("options") => {
                    for opt in words {
                        if let Some(t) = opt.strip_prefix("timeout:")
                            && let Ok(t) = t.parse::<u64>()
                        {
                            r.timeout = Duration::from_secs(t.clamp(1, limits::DNS_TIMEOUT_SECS));
                        }
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// Addresses of `name`: an address literal as itself, else the hosts
    /// file, else DNS (A and AAAA). Never empty on success.
    pub fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if encode_name(&name).is_none() {
            return Err(ResolveError::BadName);
        }
        let from_hosts: Vec<IpAddr> = self
            .hosts
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, ip)| *ip)
            .collect();
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let mut candidates = vec![name.clone()];
        if !name.contains('.') {
            candidates.extend(self.search.iter().map(|d| format!("{name}.{d}")));
        }
        // SECURITY: one login may not hold the session for long, however
        // many nameservers and search domains there are.
        let deadline = Instant::now() + Duration::from_secs(limits::DNS_TOTAL_SECS);
        let mut last = ResolveError::NotFound;
        for candidate in &candidates {
            match self.query_dns(candidate, deadline) {
                Ok(ips) if !ips.is_empty() => return Ok(ips),
                Ok(_) => last = ResolveError::NotFound,
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Ask each nameserver in turn for A and AAAA records of `name`.
    fn query_dns(&self, name: &str, deadline: Instant) -> Result<Vec<IpAddr>, ResolveError> {
        if self.nameservers.is_empty() {
            return Err(ResolveError::NoAnswer);
        }
        let mut answered = false;
        for ns in &self.nameservers {
            let mut ips = Vec::new();
            let mut any = false;
            for qtype in [TYPE_A, TYPE_AAAA] {
                if let Some(found) = self.ask(*ns, name, qtype, deadline) {
                    any = true;
                    ips.extend(found);
                }
            }
            if any {
                answered = true;
                if !ips.is_empty() {
                    return Ok(ips);
                }
            }
        }
        if answered {
            Ok(Vec::new())
        } else {
            Err(ResolveError::NoAnswer)
        }
    }

    /// One query to one nameserver; None when it did not answer in time
    /// (its timeout, or the lookup's `total` deadline, whichever is first).
    fn ask(&self, ns: SocketAddr, name: &str, qtype: u16, total: Instant) -> Option<Vec<IpAddr>> {
        if Instant::now() >= total {
            return None;
        }
        let id = (super::random_u32() & 0xffff) as u16;
        let query = build_query(id, name, qtype)?;
        let bind: SocketAddr = match ns {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(bind).ok()?;
        // SECURITY: a connected UDP socket only receives datagrams from the
        // nameserver we asked, so an off-path sender must also guess the id.
        sock.connect(ns).ok()?;
        sock.send(&query).ok()?;
        let deadline = (Instant::now() + self.timeout).min(total);
        let mut buf = [0u8; limits::MAX_DNS_PACKET];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            sock.set_read_timeout(Some(left)).ok()?;
            let n = match sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            };
            match parse_response(&buf[..n], id, &query[12..], qtype) {
                Ok(ips) => return Some(ips),
                // Not our answer (wrong id, wrong question, garbage): keep
                // waiting for the real one until the deadline.
                Err(Malformed) => continue,
            }
        }
    }
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A name in DNS wire format: labels of 1..=63 bytes of letters, digits,
/// `-` and `_`, at most 255 bytes in all. None when the name is not valid.
fn encode_name(name: &str) -> Option<Vec<u8>> {
    // The one rule for names, also checked when the configuration loads.
    if name.ends_with('.') || !crate::config::options::is_host_name(name) {
        return None;
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Some(out)
}

/// A standard query: header (id, RD, one question), QNAME, QTYPE, IN.
fn build_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let qname = encode_name(name)?;
    let mut q = Vec::with_capacity(12 + qname.len() + 4);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&qname);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Some(q)
}

/// A response that is not an answer to our query.
#[derive(Debug, PartialEq, Eq)]
struct Malformed;

fn u16_at(p: &[u8], at: usize) -> Result<u16, Malformed> {
    let b = p.get(at..at + 2).ok_or(Malformed)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

/// Skip a (possibly compressed) name starting at `at`; the offset after it.
fn skip_name(p: &[u8], mut at: usize) -> Result<usize, Malformed> {
    for _ in 0..128 {
        let len = *p.get(at).ok_or(Malformed)?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => {
                p.get(at + 1).ok_or(Malformed)?;
                return Ok(at + 2);
            }
            l if l & 0xc0 == 0 => at += 1 + l as usize,
            _ => return Err(Malformed),
        }
    }
    Err(Malformed)
}

/// Parse a response to the query with `id` whose question section is
/// `question`: the addresses of type `qtype` in the answer section (empty
/// for NXDOMAIN or no data). Grammar: RFC 1035 §4.1 (header, question,
/// answer RRs; names may use §4.1.4 compression). Never panics, for any input.
fn parse_response(
    p: &[u8],
    id: u16,
    question: &[u8],
    qtype: u16,
) -> Result<Vec<IpAddr>, Malformed> {
    if p.len() < 12 || u16_at(p, 0)? != id {
        return Err(Malformed);
    }
    let flags = u16_at(p, 2)?;
    // QR must be set (a response) and opcode 0 (standard query).
    if flags & 0x8000 == 0 || flags & 0x7800 != 0 {
        return Err(Malformed);
    }
    // SECURITY: the answer must repeat our question exactly (0x20-style
    // case is not used, we send lower case), so a stray or forged datagram
    // for another name is ignored.
    if u16_at(p, 4)? != 1 || p.get(12..12 + question.len()) != Some(question) {
        return Err(Malformed);
    }
    let rcode = flags & 0x000f;
    if rcode == 3 {
        return Ok(Vec::new()); // NXDOMAIN
    }
    if rcode != 0 {
        return Err(Malformed);
    }
    let ancount = u16_at(p, 6)? as usize;
    let mut at = 12 + question.len();
    let mut ips = Vec::new();
    for _ in 0..ancount.min(limits::MAX_DNS_ANSWERS) {
        at = skip_name(p, at)?;
        let rtype = u16_at(p, at)?;
        let class = u16_at(p, at + 2)?;
        let rdlen = u16_at(p, at + 8)? as usize;
        let rdata = p.get(at + 10..at + 10 + rdlen).ok_or(Malformed)?;
        at += 10 + rdlen;
        if class != CLASS_IN || rtype != qtype {
            continue; // CNAME records and the like: the addresses follow.
        }
        match (rtype, rdata.len()) {
            (TYPE_A, 4) => ips.push(IpAddr::V4(Ipv4Addr::new(
                rdata[0], rdata[1], rdata[2], rdata[3],
            ))),
            (TYPE_AAAA, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(rdata);
                ips.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => return Err(Malformed),
        }
    }
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "# comment\n127.0.0.1\tlocalhost  loopy # trailing\n::1 localhost ip6-localhost\n10.1.2.3 FtpServer.example.org ftpserver\nnot-an-ip foo\n";

    fn answer(id: u16, name: &str, qtype: u16, rrs: &[(u16, Vec<u8>)], rcode: u16) -> Vec<u8> {
        let q = build_query(id, name, qtype).unwrap();
        let mut p = q.clone();
        p[2] = 0x81;
        p[3] = 0x80 | rcode as u8;
        p[6..8].copy_from_slice(&(rrs.len() as u16).to_be_bytes());
        for (t, data) in rrs {
            p.extend_from_slice(&[0xc0, 12]);
            p.extend_from_slice(&t.to_be_bytes());
            p.extend_from_slice(&CLASS_IN.to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 60]);
            p.extend_from_slice(&(data.len() as u16).to_be_bytes());
            p.extend_from_slice(data);
        }
        p
    }

    #[test]
    fn hosts_file_names_match_case_insensitively_in_file_order() {
        let r = Resolver::from_text(HOSTS, "");
        assert_eq!(
            r.lookup("LocalHost").unwrap(),
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            r.lookup("ftpserver.example.org.").unwrap(),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(r.lookup("loopy").unwrap().len(), 1);
        assert_eq!(r.lookup("foo"), Err(ResolveError::NoAnswer));
    }

    #[test]
    fn address_literals_resolve_to_themselves() {
        let r = Resolver::default();
        assert_eq!(
            r.lookup("192.0.2.7").unwrap(),
            vec!["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn bad_names_are_refused_before_any_query() {
        let r = Resolver::from_text("", "nameserver 192.0.2.1\n");
        for bad in ["", "a..b", "-x y", "a/b", &"a".repeat(64), "x\0y"] {
            assert_eq!(r.lookup(bad), Err(ResolveError::BadName), "{bad:?}");
        }
    }

    #[test]
    fn resolv_conf_gives_nameservers_search_and_bounded_timeout() {
        let r = Resolver::from_text(
            "",
            "nameserver 10.0.0.1\nnameserver ::1\nnameserver fe80::1%eth0\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch Example.org. corp\noptions timeout:30 attempts:2\n",
        );
        assert_eq!(r.nameservers.len(), 3);
        assert_eq!(r.nameservers[1], "[::1]:53".parse().unwrap());
        assert_eq!(r.search, vec!["example.org", "corp"]);
        assert_eq!(r.timeout, Duration::from_secs(limits::DNS_TIMEOUT_SECS));
    }

    #[test]
    fn answers_give_addresses_of_the_asked_type_after_cnames() {
        let cname = {
            let mut v = vec![3];
            v.extend_from_slice(b"www");
            v.extend_from_slice(&[0xc0, 12]);
            v
        };
        let p = answer(
            7,
            "ftp.example.org",
            TYPE_A,
            &[
                (5, cname),
                (TYPE_A, vec![192, 0, 2, 1]),
                (TYPE_A, vec![192, 0, 2, 2]),
            ],
            0,
        );
        let q = build_query(7, "ftp.example.org", TYPE_A).unwrap();
        assert_eq!(
            parse_response(&p, 7, &q[12..], TYPE_A).unwrap(),
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
    }

    #[test]
    fn foreign_or_broken_answers_are_ignored() {
        let q = build_query(7, "ftp.example.org", TYPE_A).unwrap();
        let good = answer(
            7,
            "ftp.example.org",
            TYPE_A,
            &[(TYPE_A, vec![1, 2, 3, 4])],
            0,
        );
        // wrong id
        assert_eq!(parse_response(&good, 8, &q[12..], TYPE_A), Err(Malformed));
        // another question
        let other = answer(
            7,
            "evil.example.org",
            TYPE_A,
            &[(TYPE_A, vec![1, 2, 3, 4])],
            0,
        );
        assert_eq!(parse_response(&other, 7, &q[12..], TYPE_A), Err(Malformed));
        // a query, not a response
        assert_eq!(parse_response(&q, 7, &q[12..], TYPE_A), Err(Malformed));
        // truncated anywhere: never panics, never yields a wrong address
        for cut in 0..good.len() {
            assert!(parse_response(&good[..cut], 7, &q[12..], TYPE_A).is_err());
        }
        // A record of the wrong length
        let bad = answer(7, "ftp.example.org", TYPE_A, &[(TYPE_A, vec![1, 2, 3])], 0);
        assert_eq!(parse_response(&bad, 7, &q[12..], TYPE_A), Err(Malformed));
        // NXDOMAIN is an answer without addresses
        let nx = answer(7, "ftp.example.org", TYPE_A, &[], 3);
        assert_eq!(parse_response(&nx, 7, &q[12..], TYPE_A), Ok(vec![]));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser() {
        let q = build_query(1, "a.b", TYPE_A).unwrap();
        let mut seed = 0x1234_5678u32;
        for len in 0..600 {
            let mut p: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            if p.len() >= 2 {
                p[..2].copy_from_slice(&[0, 1]);
            }
            let _ = parse_response(&p, 1, &q[12..], TYPE_A);
        }
    }

    #[test]
    fn dns_queries_go_to_the_cached_nameserver() {
        // A fake nameserver on loopback answering A with 192.0.2.9 and
        // AAAA with nothing.
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let q = &buf[..n];
                let id = u16::from_be_bytes([q[0], q[1]]);
                let qtype = u16::from_be_bytes([q[n - 4], q[n - 3]]);
                // a forged answer first (wrong id), then the real one
                let forged = answer(id ^ 1, "ftp.test", qtype, &[(TYPE_A, vec![6, 6, 6, 6])], 0);
                server.send_to(&forged, from).unwrap();
                let rrs: Vec<(u16, Vec<u8>)> = if qtype == TYPE_A {
                    vec![(TYPE_A, vec![192, 0, 2, 9])]
                } else {
                    vec![]
                };
                server
                    .send_to(&answer(id, "ftp.test", qtype, &rrs, 0), from)
                    .unwrap();
            }
        });
        let mut r = Resolver::from_text("", "nameserver 127.0.0.1\n");
        r.nameservers[0].set_port(port);
        assert_eq!(
            r.lookup("FTP.test").unwrap(),
            vec!["192.0.2.9".parse::<IpAddr>().unwrap()]
        );
        t.join().unwrap();
    }

    #[test]
    fn a_lookup_is_bounded_in_total_however_many_servers_and_domains() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = Resolver::from_text(
            "",
            "nameserver 127.0.0.1\nnameserver 127.0.0.1\nsearch a b c d e f\n",
        );
        r.nameservers[0].set_port(a.local_addr().unwrap().port());
        r.nameservers[1].set_port(b.local_addr().unwrap().port());
        let t0 = Instant::now();
        assert_eq!(r.lookup("quiet"), Err(ResolveError::NoAnswer));
        assert!(t0.elapsed() < Duration::from_secs(limits::DNS_TOTAL_SECS + 2));
    }

    #[test]
    fn silent_nameservers_time_out() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut r = Resolver::from_text("", "nameserver 127.0.0.1\noptions timeout:1\n");
        r.nameservers[0].set_port(server.local_addr().unwrap().port());
        let t0 = Instant::now();
        assert_eq!(r.lookup("quiet.test"), Err(ResolveError::NoAnswer));
        assert!(t0.elapsed() < Duration::from_secs(10));
    }
}
