//! SPEC 7, LDAP user profiles and authentication, against a real OpenLDAP
//! `slapd` started here on a free loopback port with a temporary
//! directory (mdb backend, old-style slapd.conf, data loaded with slapadd)
//! and a real FTP server (pyftpdlib) behind the proxy.
//!
//! Against Debian's ftp-proxy (FTPGATE_TEST_BIN, README "The compatibility
//! suite") the tests that check ftpgate's log lines, limits and decisions
//! are skipped; ftp-proxy passes the others.
//!
//! slapd and slapadd come from Debian's `slapd` package, which
//! `scripts/install-deps` installs; without them these tests fail (never
//! skip) and say so.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const BASE: &str = "ou=ftp,dc=example,dc=org";

/// A running slapd serving dc=example,dc=org with `entries` under BASE.
struct Directory {
    port: u16,
    _daemon: Daemon,
    _dir: TempDir,
}

impl Directory {
    /// `entries`: LDIF of the entries below BASE (each separated by a
    /// blank line), `{BASE}` replaced. Anyone may bind and read.
    fn start(entries: &str) -> Directory {
        Directory::with_access(entries, "", "access to * by * read\n")
    }

    /// A directory that refuses anonymous binds and lets only a bound
    /// user read (passwords only for the bind itself), as many sites run
    /// theirs.
    fn closed(entries: &str) -> Directory {
        Directory::with_access(
            entries,
            "disallow bind_anon\n",
            "access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by * none\n",
        )
    }

    /// `global`: slapd.conf lines before the database; `access`: its
    /// access rules.
    fn with_access(entries: &str, global: &str, access: &str) -> Directory {
        for bin in [SLAPD, SLAPADD] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the LDAP tests need OpenLDAP's slapd; \
                 scripts/install-deps installs it (Debian packages slapd and ldap-utils)"
            );
        }
        let dir = TempDir::new("slapd");
        let db = dir.join("db");
        fs::create_dir_all(&db).unwrap();
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ftpproxy.schema");
        let conf = dir.join("slapd.conf");
        fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include {schema}\n\
                 {global}\
                 pidfile {pid}\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"dc=example,dc=org\"\n\
                 rootdn \"cn=admin,dc=example,dc=org\"\n\
                 rootpw adminpw\n\
                 directory {db}\n\
                 {access}",
                schema = schema.display(),
                pid = dir.join("slapd.pid").display(),
                db = db.display(),
            ),
        )
        .unwrap();
        let ldif = dir.join("data.ldif");
        fs::write(
            &ldif,
            format!(
                "dn: dc=example,dc=org\nobjectClass: dcObject\nobjectClass: organization\n\
                 dc: example\no: Example\n\n\
                 dn: {BASE}\nobjectClass: organizationalUnit\nou: ftp\n\n{}\n",
                entries.replace("{BASE}", BASE)
            ),
        )
        .unwrap();
        let mut add = Command::new(SLAPADD);
        add.arg("-f").arg(&conf).arg("-l").arg(&ldif);
        let ran = run_bounded(add, 30);
        assert!(ran.ok(), "slapadd failed: {}", ran.describe());
        let port = free_port();
        let mut cmd = Command::new(SLAPD);
        cmd.arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldap://[::1]:{port}/"))
            .arg("-d")
            .arg("0");
        let mut daemon = Daemon::spawn("slapd", cmd, dir.path());
        daemon.wait_listening(port);
        Directory {
            port,
            _daemon: daemon,
            _dir: dir,
        }
    }

    fn conf(&self) -> String {
        format!(
            "LDAPServer 127.0.0.1:{}\nLDAPBaseDN {BASE}\nLDAPObjectClass FTPProxyUser\n",
            self.port
        )
    }
}

/// USER, and the reply to it.
fn user(c: &mut Ctrl, name: &str) -> Reply {
    c.cmd(&format!("USER {name}"))
}

fn greeted(port: u16) -> Ctrl {
    let mut c = Ctrl::connect(port);
    assert_eq!(c.reply().code, 220);
    c
}

/// Entries of the profile tests: `test` goes to the server on
/// `server_port`; `anonymous` too, with ValidCommands; `broken` has an
/// invalid TimeOut.
fn profiles(server_port: u16) -> String {
    format!(
        "dn: cn=test,{{BASE}}\nobjectClass: FTPProxyUser\ncn: test\nuserPassword: secret\n\
         DestinationPort: {server_port}\nFTPEnabled: TRUE\n\n\
         dn: cn=anonymous,{{BASE}}\nobjectClass: FTPProxyUser\ncn: anonymous\n\
         userPassword: secret\nDestinationPort: {server_port}\n\
         ValidCommands: USER,PASS,QUIT\nValidCommands: PWD TYPE\nFTPEnabled: FALSE\n\n\
         dn: cn=broken,{{BASE}}\nobjectClass: FTPProxyUser\ncn: broken\nTimeOut: 0\n\n\
         dn: cn=other,{{BASE}}\nobjectClass: organizationalRole\ncn: other\n"
    )
}

#[test]
fn a_users_entry_chooses_the_server_port() {
    if skip_unless_ftpgate("a_users_entry_chooses_the_server_port") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    // The global DestinationPort leads nowhere: only the entry's works.
    let proxy = Proxy::start(dead_port(), &dir.conf());
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("user 'test' found in the directory: cn=test,ou=ftp,dc=example,dc=org"),
        "{log}"
    );
    drop(dir);
}

#[test]
fn a_users_entry_sets_valid_commands() {
    if skip_unless_ftpgate("a_users_entry_sets_valid_commands") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(dead_port(), &dir.conf());
    let mut c = Ctrl::login(proxy.port, "anonymous", "me@example.org");
    // Both values of the multi-valued attribute count.
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    assert_eq!(c.cmd("TYPE I").code, 200, "{}", proxy.output());
    let r = c.cmd("MKD x");
    assert_eq!(r.code, 502, "{r:?}\n{}", proxy.output());
    assert!(!server.root.join("x").exists());
    c.cmd("QUIT");
    assert!(
        proxy
            .log_text()
            .contains("command refused by ValidCommands: MKD x")
    );
}

#[test]
fn an_unknown_user_gets_the_global_values() {
    if skip_unless_ftpgate("an_unknown_user_gets_the_global_values") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(dead_port()));
    // `other` has an entry, but not of the object class: not a profile.
    let proxy = Proxy::start(
        server.port,
        &format!("{}ValidCommands USER,PASS,QUIT", dir.conf()),
    );
    let mut c = greeted(proxy.port);
    let r = user(&mut c, "other");
    assert_eq!(r.code, 331, "{r:?}\n{}", proxy.output());
    assert_eq!(c.cmd("PASS secret").code, 530);
    assert_eq!(c.cmd("PWD").code, 502, "global ValidCommands");
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("user 'other' not in the directory ((&(objectClass=FTPProxyUser)(CN=other))): the file's values apply"),
        "{log}"
    );
}

#[test]
fn an_unreachable_directory_ends_the_session_with_421() {
    if skip_unless_ftpgate("an_unreachable_directory_ends_the_session_with_421") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let ldap = dead_port();
    let proxy = Proxy::start(
        server.port,
        &format!("LDAPServer 127.0.0.1:{ldap}\nLDAPBaseDN {BASE}\n"),
    );
    let mut c = greeted(proxy.port);
    c.send_raw(b"USER test\r\n");
    let got = c
        .replies_until_eof(30)
        .unwrap_or_else(|| panic!("session still open\n{}", proxy.output()));
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    assert!(
        wait_until(10, || proxy.log_text().contains(&format!(
            "LDAP directory 127.0.0.1:{ldap} unusable: cannot connect"
        ))),
        "{}",
        proxy.output()
    );
    assert!(wait_until(10, || proxy.sessions().is_empty()));
}

#[test]
fn an_invalid_profile_is_refused_with_530() {
    if skip_unless_ftpgate("an_invalid_profile_is_refused_with_530") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(server.port, &dir.conf());
    let mut c = greeted(proxy.port);
    let r = user(&mut c, "broken");
    assert_eq!(r.code, 530, "{r:?}");
    // The session stays open for another USER.
    assert_eq!(user(&mut c, "test").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 230);
    c.cmd("QUIT");
    assert!(
        proxy.log_text().contains("invalid profile"),
        "{}",
        proxy.output()
    );
}

#[test]
fn filter_metacharacters_in_a_login_cannot_widen_the_search() {
    if skip_unless_ftpgate("filter_metacharacters_in_a_login_cannot_widen_the_search") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    // Any name passes UserNameRule here; the global destination is dead,
    // so only a (wrongly) matched entry could reach the server.
    let proxy = Proxy::start(dead_port(), &format!("{}UserNameRule .*", dir.conf()));
    for name in [
        "*",
        "t*",
        "te*t",
        "*)(cn=*",
        "test)(cn=*",
        "\\74est",
        "tes\\2a",
        "(cn=test)",
    ] {
        let mut c = greeted(proxy.port);
        c.send_raw(format!("USER {name}\r\n").as_bytes());
        let got = c.replies_until_eof(30).unwrap_or_default();
        assert!(
            got.iter().all(|r| r.code != 331),
            "{name}: reached the server: {got:?}\n{}",
            proxy.output()
        );
    }
    let log = proxy.log_text();
    assert!(!log.contains("found in the directory"), "{log}");
    assert!(
        log.contains("(&(objectClass=FTPProxyUser)(CN=\\2a\\29\\28cn=\\2a))"),
        "{log}"
    );
}

fn auth_conf(dir: &Directory, extra: &str) -> String {
    format!("{}UserAuthType ldap\n{extra}", dir.conf())
}

#[test]
fn bind_authentication_lets_the_right_password_through() {
    if skip_unless_ftpgate("bind_authentication_lets_the_right_password_through") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(dead_port(), &auth_conf(&dir, ""));
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("user 'test' authenticated by the directory"),
        "{log}"
    );
    assert!(!log.contains("secret"), "password in the log: {log}");
}

#[test]
fn bind_authentication_refuses_a_wrong_password_before_the_server() {
    if skip_unless_ftpgate("bind_authentication_refuses_a_wrong_password_before_the_server") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(dead_port(), &auth_conf(&dir, ""));
    let mut c = greeted(proxy.port);
    // The proxy answers USER itself (the server is not contacted yet).
    let r = user(&mut c, "test");
    assert_eq!(r.code, 331, "{r:?}");
    assert!(r.text().contains("proxy authentication"), "{r:?}");
    assert_eq!(c.cmd("PASS wrongpass").code, 530);
    assert_eq!(user(&mut c, "test").code, 331);
    // An empty password is never sent as an (unauthenticated) bind.
    assert_eq!(c.cmd("PASS").code, 530);
    assert_eq!(user(&mut c, "nobody").code, 331);
    // The third failure ends the session.
    c.send_raw(b"PASS secret\r\n");
    let got = c.replies_until_eof(30).unwrap_or_default();
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    let log = proxy.log_text();
    assert!(
        log.contains("authentication failed for user 'test': wrong password"),
        "{log}"
    );
    assert!(log.contains("authentication failed for user 'test': empty password"));
    assert!(log.contains("authentication failed for user 'nobody': no such user"));
    assert!(!log.contains("wrongpass"), "password in the log: {log}");
    assert!(
        !log.contains("to server"),
        "the server was contacted: {log}"
    );
}

/// ftp-proxy's LDAPBindDN with `%s`: the proxy binds as the user with the
/// user's password (there is no other way into this directory).
fn bind_as_user_conf(dir: &Directory, extra: &str) -> String {
    auth_conf(
        dir,
        &format!("LDAPBindDN cn=%s,{BASE}\nLDAPBindPW unused\n{extra}"),
    )
}

#[test]
fn binding_as_the_user_works_with_a_directory_that_refuses_anonymous_binds() {
    if skip_unless_ftpgate(
        "binding_as_the_user_works_with_a_directory_that_refuses_anonymous_binds",
    ) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::closed(&profiles(server.port));
    let proxy = Proxy::start(dead_port(), &bind_as_user_conf(&dir, ""));
    // The profile (DestinationPort) is read as the user: the login reaches
    // the real server.
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    // A wrong password and an unknown user are failed logins (530), not
    // an unusable directory (421); the session goes on.
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "test").code, 331);
    assert_eq!(c.cmd("PASS wrongpass").code, 530);
    assert_eq!(user(&mut c, "nobody").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 530);
    assert_eq!(user(&mut c, "test").code, 331);
    let r = c.cmd("PASS secret");
    assert_eq!(r.code, 230, "{r:?}");
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(log.contains("user 'test' found in the directory"), "{log}");
    assert!(
        log.contains("user 'test' authenticated by the directory"),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for user 'nobody': wrong password"),
        "{log}"
    );
    assert!(!log.contains("unusable"), "{log}");
    assert!(!log.contains("wrongpass"), "password in the log: {log}");
}

#[test]
fn binding_as_the_user_with_user_auth_magic_binds_as_the_proxy_login() {
    if skip_unless_ftpgate("binding_as_the_user_with_user_auth_magic_binds_as_the_proxy_login") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::closed(&proxy_logins(server.port));
    let proxy = Proxy::start(
        dead_port(),
        &bind_as_user_conf(&dir, "UserAuthMagic @auth\n"),
    );
    // alice's entry (bound as alice) sends the login to the server; the
    // server gets test/secret.
    let mut c = Ctrl::login(proxy.port, "test@alice", "secret@alicepw");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "test@alice").code, 331);
    assert_eq!(c.cmd("PASS secret@secret").code, 530);
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("user 'alice' authenticated by the directory"),
        "{log}"
    );
    assert!(!log.contains("alicepw"), "password in the log: {log}");
}

#[test]
fn compare_authentication_checks_the_password_and_the_flag() {
    if skip_unless_ftpgate("compare_authentication_checks_the_password_and_the_flag") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(
        dead_port(),
        &auth_conf(
            &dir,
            "LDAPAuthPWAttr userPassword\nLDAPAuthPWType plain6\nLDAPAuthOKFlag FTPEnabled=true\n",
        ),
    );
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "test").code, 331);
    assert_eq!(c.cmd("PASS Secret").code, 530);
    // `anonymous` has the right password but FTPEnabled FALSE.
    assert_eq!(user(&mut c, "anonymous").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 530);
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("authentication failed for user 'test': wrong password"),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for user 'anonymous': LDAPAuthOKFlag not set"),
        "{log}"
    );
}

#[test]
fn the_check_option_prints_the_ldap_options() {
    let dir = TempDir::new("ldapconf");
    let conf = dir.join("ftpgate.conf");
    fs::write(
        &conf,
        "DestinationAddress 127.0.0.1\nLDAPServer ldap.example.org:3389\n\
         LDAPBaseDN ou=ftp,dc=example,dc=org\nLDAPBindDN cn=%s,ou=ftp,dc=example,dc=org\n\
         LDAPBindPW x\nUserAuthType ldap\n",
    )
    .unwrap();
    let mut cmd = Command::new(proxy_bin());
    cmd.arg("-c").arg("-f").arg(&conf);
    let ran = run_bounded(cmd, 20);
    assert!(ran.ok(), "{}", ran.describe());
    let out = ran.describe();
    for want in [
        "Config:        LDAPBaseDN               = 'ou=ftp,dc=example,dc=org'",
        "Config:        LDAPServer               = 'ldap.example.org:3389'",
        "Config:        UserAuthType             = 'ldap'",
    ] {
        assert!(out.contains(want), "{want}\n{out}");
    }
    if skip_unless_ftpgate("the_check_option_prints_the_ldap_options: unused LDAPBindPW") {
        return;
    }
    assert!(
        out.contains("warning: ") && out.contains("LDAPBindPW is not used"),
        "{out}"
    );
}

#[test]
fn crypt_compare_authentication_verifies_the_hash() {
    let server = FtpServer::pyftpdlib();
    // `openssl passwd -6 -salt saltsalt secret`
    let hash = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
    let dir = Directory::start(&format!(
        "dn: cn=test,{{BASE}}\nobjectClass: FTPProxyUser\ncn: test\nuserPassword: {{CRYPT}}{hash}\n\
         DestinationPort: {}\n",
        server.port
    ));
    let proxy = Proxy::start(
        dead_port(),
        &auth_conf(
            &dir,
            "LDAPAuthPWAttr userPassword\nLDAPAuthPWType {crypt}\n",
        ),
    );
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "test").code, 331);
    assert_eq!(c.cmd("PASS secreT").code, 530);
    assert_eq!(user(&mut c, "test").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 230, "{}", proxy.output());
    c.cmd("QUIT");
}

/// `alice` is a proxy login only (the FTP server does not know her).
fn proxy_logins(server_port: u16) -> String {
    format!(
        "dn: cn=alice,{{BASE}}\nobjectClass: FTPProxyUser\ncn: alice\nuserPassword: alicepw\n\
         DestinationPort: {server_port}\n"
    )
}

#[test]
fn user_auth_magic_at_auth_carries_a_separate_proxy_login() {
    if skip_unless_ftpgate("user_auth_magic_at_auth_carries_a_separate_proxy_login") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&proxy_logins(server.port));
    let proxy = Proxy::start(dead_port(), &auth_conf(&dir, "UserAuthMagic @auth\n"));
    let mut c = Ctrl::login(proxy.port, "test@alice", "secret@alicepw");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    // An e-mail address as the anonymous password keeps its @.
    let mut c = Ctrl::login(proxy.port, "anonymous@alice", "me@example.org@alicepw");
    c.cmd("QUIT");
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "test@alice").code, 331);
    assert_eq!(c.cmd("PASS secret@wrong").code, 530);
    assert_eq!(user(&mut c, "test@alice").code, 331);
    assert_eq!(c.cmd("PASS secret").code, 530, "no proxy password");
    // No proxy login at all.
    assert_eq!(user(&mut c, "test").code, 530);
    c.cmd("QUIT");
    let log = proxy.log_text();
    assert!(
        log.contains("user 'alice' authenticated by the directory"),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for user 'alice': wrong password"),
        "{log}"
    );
    assert!(
        log.contains("authentication failed for user 'alice': no proxy password in PASS"),
        "{log}"
    );
    assert!(!log.contains("alicepw"), "password in the log: {log}");
}

#[test]
fn user_auth_magic_auth_at_puts_the_proxy_login_first() {
    if skip_unless_ftpgate("user_auth_magic_auth_at_puts_the_proxy_login_first") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&proxy_logins(server.port));
    let proxy = Proxy::start(dead_port(), &auth_conf(&dir, "UserAuthMagic auth@\n"));
    let mut c = Ctrl::login(proxy.port, "alice@test", "alicepw@secret");
    assert_eq!(c.cmd("PWD").code, 257);
    c.cmd("QUIT");
    let mut c = greeted(proxy.port);
    assert_eq!(user(&mut c, "alice@test").code, 331);
    // The FTP password is right, the proxy password wrong.
    assert_eq!(c.cmd("PASS secret@secret").code, 530);
    c.cmd("QUIT");
}

#[test]
fn no_server_connection_before_user_with_a_directory() {
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(dead_port()));
    // `other` is not a profile: the global (working) destination applies.
    let proxy = Proxy::start(server.port, &dir.conf());
    let mut c = greeted(proxy.port);
    // The greeting went out after any early connect would have begun.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        connections_to(server.port),
        0,
        "server contacted before USER\n{}",
        proxy.output()
    );
    assert_eq!(user(&mut c, "other").code, 331, "{}", proxy.output());
    c.cmd("QUIT");
}

#[test]
fn a_directory_name_is_resolved_by_ftpgates_resolver() {
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(
        dead_port(),
        &format!(
            "LDAPServer localhost:{}\nLDAPBaseDN {BASE}\nLDAPObjectClass FTPProxyUser\n",
            dir.port
        ),
    );
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    c.cmd("QUIT");
}

#[test]
fn more_than_one_entry_for_a_name_ends_the_session_with_421() {
    if skip_unless_ftpgate("more_than_one_entry_for_a_name_ends_the_session_with_421") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&format!(
        "dn: ou=a,{{BASE}}\nobjectClass: organizationalUnit\nou: a\n\n\
         dn: ou=b,{{BASE}}\nobjectClass: organizationalUnit\nou: b\n\n\
         dn: cn=test,ou=a,{{BASE}}\nobjectClass: FTPProxyUser\ncn: test\nDestinationPort: {p}\n\n\
         dn: cn=test,ou=b,{{BASE}}\nobjectClass: FTPProxyUser\ncn: test\nDestinationPort: {p}\n",
        p = server.port
    ));
    let proxy = Proxy::start(server.port, &dir.conf());
    let mut c = greeted(proxy.port);
    c.send_raw(b"USER test\r\n");
    let got = c.replies_until_eof(30).unwrap_or_default();
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    assert!(
        wait_until(10, || proxy.log_text().contains("2 or more entries match")),
        "{}",
        proxy.output()
    );
}

#[test]
fn a_directory_that_never_answers_ends_the_session_with_421_in_bounded_time() {
    if skip_unless_ftpgate(
        "a_directory_that_never_answers_ends_the_session_with_421_in_bounded_time",
    ) {
        return;
    }
    let server = FtpServer::pyftpdlib();
    // Accepts connections (the kernel's backlog does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let proxy = Proxy::start(
        server.port,
        &format!("LDAPServer 127.0.0.1:{port}\nLDAPBaseDN {BASE}\n"),
    );
    let mut c = greeted(proxy.port);
    let started = std::time::Instant::now();
    c.send_raw(b"USER test\r\n");
    let got = c
        .replies_until_eof(60)
        .unwrap_or_else(|| panic!("session still open after 60s\n{}", proxy.output()));
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    assert!(started.elapsed().as_secs() < 45);
    assert!(
        wait_until(10, || proxy.log_text().contains("no answer in time")),
        "{}",
        proxy.output()
    );
    drop(silent);
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn a_jailed_session_uses_the_directory_by_name() {
    if skip_unless_ftpgate("a_jailed_session_uses_the_directory_by_name") {
        return;
    }
    if !is_root() {
        eprintln!("SKIP a_jailed_session_uses_the_directory_by_name: needs root");
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let jail = TempDir::new("jail");
    // An EMPTY ServerRoot, an unprivileged user, the directory by name
    // (resolved inside the jail from data cached before it), bind
    // authentication: two directory connections after the chroot.
    let proxy = Proxy::start(
        dead_port(),
        &format!(
            "User nobody\nGroup nogroup\nServerRoot {}\n\
             LDAPServer localhost:{}\nLDAPBaseDN {BASE}\nLDAPObjectClass FTPProxyUser\n\
             UserAuthType ldap\n",
            jail.path().display(),
            dir.port
        ),
    );
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    c.cmd("QUIT");
    assert_eq!(
        fs::read_dir(jail.path()).unwrap().count(),
        0,
        "jail not empty"
    );
    assert!(
        proxy
            .log_text()
            .contains("user 'test' authenticated by the directory"),
        "{}",
        proxy.output()
    );
}

#[test]
fn a_session_may_look_up_only_so_many_names() {
    if skip_unless_ftpgate("a_session_may_look_up_only_so_many_names") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let proxy = Proxy::start(server.port, &dir.conf());
    let mut c = greeted(proxy.port);
    for _ in 0..10 {
        assert_eq!(user(&mut c, "broken").code, 530);
    }
    c.send_raw(b"USER broken\r\n");
    let got = c.replies_until_eof(30).unwrap_or_default();
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    assert!(
        wait_until(10, || proxy
            .log_text()
            .contains("more than 10 logins in one session")),
        "{}",
        proxy.output()
    );
}

#[test]
fn user_contexts_in_the_file_apply_under_the_directory_entry() {
    if skip_unless_ftpgate("user_contexts_in_the_file_apply_under_the_directory_entry") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    // As in ftp-proxy: the file's [test] context, then test's entry on top
    // (its DestinationPort wins over the context's dead one; the context's
    // ValidCommands, which the entry does not set, still holds). `other`
    // has no profile: its [other*] context alone reaches the server.
    let proxy = Proxy::start(
        dead_port(),
        &format!(
            "{}[test]\nValidCommands USER,PASS,PWD,QUIT\nDestinationPort {}\n\
             [other*]\nDestinationPort {}\n",
            dir.conf(),
            dead_port(),
            server.port
        ),
    );
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    let r = c.cmd("MKD x");
    assert_eq!(
        r.code,
        502,
        "the file's ValidCommands: {r:?}\n{}",
        proxy.output()
    );
    c.cmd("QUIT");
    let mut c = greeted(proxy.port);
    let r = user(&mut c, "other");
    assert_eq!(
        r.code,
        331,
        "the file's [other*] port: {r:?}\n{}",
        proxy.output()
    );
    c.cmd("QUIT");
}

#[test]
fn a_big_attribute_ftpgate_does_not_use_does_not_break_the_lookup() {
    if skip_unless_ftpgate("a_big_attribute_ftpgate_does_not_use_does_not_break_the_lookup") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    // 300 KB: more than one LDAP message may carry (limits.rs), like a
    // jpegPhoto or a certificate in a real directory.
    let entry = format!(
        "dn: cn=test,{{BASE}}\nobjectClass: FTPProxyUser\ncn: test\n\
         DestinationPort: {}\ndescription: {}\n",
        server.port,
        "x".repeat(300_000)
    );
    let dir = Directory::start(&entry);
    let proxy = Proxy::start(dead_port(), &dir.conf());
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    c.cmd("QUIT");
}

#[test]
fn a_directory_at_an_ipv6_address_works_and_is_logged_in_brackets() {
    if skip_unless_ftpgate("a_directory_at_an_ipv6_address_works_and_is_logged_in_brackets") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let dir = Directory::start(&profiles(server.port));
    let conf = dir
        .conf()
        .replace("LDAPServer 127.0.0.1:", "LDAPServer [::1]:");
    let proxy = Proxy::start(dead_port(), &conf);
    let mut c = Ctrl::login(proxy.port, "test", "secret");
    assert_eq!(c.cmd("PWD").code, 257, "{}", proxy.output());
    c.cmd("QUIT");
    drop(dir);

    let ldap = dead_port();
    let proxy = Proxy::start(
        server.port,
        &format!("LDAPServer [::1]:{ldap}\nLDAPBaseDN {BASE}\n"),
    );
    let mut c = greeted(proxy.port);
    c.send_raw(b"USER test\r\n");
    let got = c.replies_until_eof(30).unwrap_or_default();
    assert!(got.iter().any(|r| r.code == 421), "{got:?}");
    assert!(
        wait_until(10, || proxy.log_text().contains(&format!(
            "LDAP directory [::1]:{ldap} unusable: cannot connect"
        ))),
        "{}",
        proxy.output()
    );
}
