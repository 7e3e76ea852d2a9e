//! SPEC 11: policy by client network. Every test client here connects
//! from a loopback address of its own (127.0.0.1 or 127.0.0.2), so one
//! proxy sees an "internal" and an "external" client.

mod common;

use common::*;

/// Connect from `source`, log in as USER `login`, send each command, and
/// print one line per reply: `code text`.
const SCRIPT: &str = r#"
import ftplib, sys
port, source, login, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
f = ftplib.FTP(timeout=10, source_address=(source, 0))
f.connect('127.0.0.1', port)
try:
    print(f.sendcmd('USER ' + login))
    print(f.sendcmd('PASS ' + password))
except ftplib.Error as e:
    print(e)
for cmd in sys.argv[5:]:
    try:
        print(f.sendcmd(cmd))
    except ftplib.Error as e:
        print(e)
f.close()
"#;

fn session(port: u16, source: &str, login: &str, pass: &str, cmds: &[&str]) -> Vec<String> {
    let mut args = vec![port.to_string(), source.into(), login.into(), pass.into()];
    args.extend(cmds.iter().map(|c| c.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = python_script(SCRIPT, &args);
    assert!(r.ok(), "{}", r.describe());
    r.stdout.lines().map(str::to_string).collect()
}

fn code(line: &str) -> &str {
    line.get(..3).unwrap_or("")
}

#[test]
fn internal_clients_get_the_class_commands_and_external_ones_the_global_ones() {
    if skip_unless_ftpgate("internal_clients_get_the_class_commands") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    server.put("gone.txt", b"x");
    let proxy = Proxy::start(
        server.port,
        "ClientClass internal 127.0.0.1/32\n\
         ValidCommands USER,PASS,PWD,QUIT\n\
         [-Class-internal-]\n\
         ValidCommands USER,PASS,PWD,QUIT,DELE\n",
    );
    let (user, pass) = (server.user(), server.pass());
    let outside = session(proxy.port, "127.0.0.2", user, pass, &["DELE gone.txt"]);
    assert_eq!(code(&outside[1]), "230", "{outside:?}\n{}", proxy.output());
    assert_eq!(code(&outside[2]), "502", "{outside:?}");
    assert!(server.file("gone.txt").exists());
    let inside = session(proxy.port, "127.0.0.1", user, pass, &["DELE gone.txt"]);
    assert_eq!(code(&inside[2]), "250", "{inside:?}\n{}", proxy.output());
    assert!(!server.file("gone.txt").exists());
    let log = proxy.log_text();
    assert!(log.contains("class internal"), "{log}");
    assert!(log.contains("class none"), "{log}");
}

/// Internal users may name servers (magic user); external ones may not.
#[test]
fn only_the_internal_class_may_choose_the_server() {
    if skip_unless_ftpgate("only_the_internal_class_may_choose_the_server") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(
        dead_port(),
        "ClientClass internal 127.0.0.1/32\n\
         [-Class-internal-]\n\
         AllowMagicUser yes\n\
         AllowedDestinations 127.0.0.1/32\n",
    );
    let magic = format!("{}@127.0.0.1:{}", server.user(), server.port);
    let inside = session(proxy.port, "127.0.0.1", &magic, server.pass(), &["PWD"]);
    assert_eq!(code(&inside[1]), "230", "{inside:?}\n{}", proxy.output());
    // Without AllowMagicUser the whole argument is the login name, which
    // the default UserNameRule refuses (':'), and nothing is connected.
    let outside = session(proxy.port, "127.0.0.2", &magic, server.pass(), &[]);
    assert_eq!(code(&outside[0]), "530", "{outside:?}\n{}", proxy.output());
}

/// The article's situation: a read-only public service, uploads for the
/// internal network only. The refused STOR never reaches the server.
#[test]
fn only_internal_clients_may_upload_and_a_refused_stor_never_reaches_the_server() {
    if skip_unless_ftpgate("only_internal_clients_may_upload") {
        return;
    }
    let server = FtpServer::pyftpdlib();
    let proxy = Proxy::start(
        server.port,
        "ClientClass internal 127.0.0.1/32\n\
         ValidCommands USER,PASS,TYPE,PASV,EPSV,RETR,LIST,NLST,PWD,CWD,QUIT\n\
         [-Class-internal-]\n\
         ValidCommands USER,PASS,TYPE,PASV,EPSV,RETR,LIST,NLST,PWD,CWD,QUIT,STOR\n",
    );
    const STORE: &str = r#"
import ftplib, io, sys
port, source, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
f = ftplib.FTP(timeout=10, source_address=(source, 0))
f.connect('127.0.0.1', port)
f.login('test', 'secret')
try:
    print(f.storbinary('STOR ' + name, io.BytesIO(b'payload')))
except ftplib.Error as e:
    print(e)
f.quit()
"#;
    let run = |source: &str, name: &str| {
        let r = python_script(STORE, &[&proxy.port.to_string(), source, name]);
        assert!(r.ok(), "{}", r.describe());
        r.stdout.trim().to_string()
    };
    let outside = run("127.0.0.2", "outside.txt");
    assert!(outside.starts_with("502"), "{outside}\n{}", proxy.output());
    assert!(!server.file("outside.txt").exists());
    let inside = run("127.0.0.1", "inside.txt");
    assert!(inside.starts_with("226"), "{inside}\n{}", proxy.output());
    assert_eq!(
        std::fs::read(server.file("inside.txt")).unwrap(),
        b"payload"
    );
    // Refused at the proxy, by the global rule (the class allows it).
    let log = proxy.log_text();
    assert!(
        log.contains("command refused by ValidCommands: STOR outside.txt")
            && log.contains("context global"),
        "{log}"
    );
}
