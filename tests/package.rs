//! Debian packaging: build the .deb with cargo-deb (when installed) and check
//! what it holds with dpkg-deb: binary, manual pages, conffiles, xinetd
//! entry, systemd units, examples; the packaged binary runs and accepts the
//! packaged configuration.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Upper bound for a release build plus packaging on a 2-core machine.
const BUILD_SECS: u64 = 1200;

fn have_cargo_deb() -> bool {
    Command::new(env!("CARGO"))
        .args(["deb", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let mut cmd = Command::new("dpkg-deb");
    cmd.args(args).arg(deb);
    let ran = run_bounded(cmd, 60);
    assert!(ran.ok(), "dpkg-deb {args:?}: {}", ran.describe());
    ran.stdout
}

/// The Rust target the package is built for, as `scripts/release-build`
/// chooses it: musl when installed, else the host's (None).
fn release_target(manifest: &Path) -> Option<String> {
    let mut cmd = Command::new(manifest.join("scripts/release-build"));
    cmd.arg("--target");
    let ran = run_bounded(cmd, 60);
    assert!(
        ran.ok(),
        "scripts/release-build --target: {}",
        ran.describe()
    );
    match ran.stdout.trim() {
        "native" => None,
        t => Some(t.to_string()),
    }
}

#[test]
fn cargo_deb_builds_an_installable_package_with_everything_in_place() {
    if !have_cargo_deb() {
        eprintln!(
            "SKIP cargo_deb_builds_...: cargo-deb is not installed (scripts/install-deps installs it)"
        );
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = TempDir::new("deb");
    let target = release_target(manifest);
    let mut cmd = Command::new(env!("CARGO"));
    // A target directory of its own: the test runner may hold the lock on
    // the normal one, and the release build is kept between runs.
    cmd.current_dir(manifest)
        .env("CARGO_TARGET_DIR", manifest.join("target/deb-test"))
        .args(["deb", "--output"])
        .arg(out.path());
    if let Some(t) = &target {
        cmd.args(["--target", t]);
    }
    let ran = run_bounded(cmd, BUILD_SECS);
    assert!(ran.ok(), "cargo deb: {}", ran.describe());
    let deb = std::fs::read_dir(out.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb in the output directory");

    let contents = dpkg_deb(&["-c"], &deb);
    for (path, mode) in [
        ("./usr/sbin/ftpgate", "-rwxr-xr-x"),
        ("./usr/share/man/man8/ftpgate.8.gz", "-rw-r--r--"),
        ("./usr/share/man/man5/ftpgate.conf.5.gz", "-rw-r--r--"),
        ("./etc/ftpgate/ftpgate.conf", "-rw-r--r--"),
        ("./etc/xinetd.d/ftpgate", "-rw-r--r--"),
        ("./lib/systemd/system/ftpgate.socket", "-rw-r--r--"),
        ("./lib/systemd/system/ftpgate@.service", "-rw-r--r--"),
        ("./usr/share/doc/ftpgate/README.md", "-rw-r--r--"),
        ("./usr/share/doc/ftpgate/copyright", "-rw-r--r--"),
        (
            "./usr/share/doc/ftpgate/examples/ftpgate.conf",
            "-rw-r--r--",
        ),
        (
            "./usr/share/doc/ftpgate/examples/cluster/ftpgate-a.conf",
            "-rw-r--r--",
        ),
        (
            "./usr/share/doc/ftpgate/examples/cluster/keepalived.conf",
            "-rw-r--r--",
        ),
    ] {
        let line = contents
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{path} missing from the package:\n{contents}"));
        assert!(line.starts_with(mode), "{line}");
        assert!(line.contains(" 0/0 "), "not owned by root: {line}");
    }

    let info = dpkg_deb(&["-I"], &deb);
    for want in [
        "Package: ftpgate",
        "Section: net",
        "Architecture: amd64",
        "conffiles",
    ] {
        assert!(info.contains(want), "{want} missing from:\n{info}");
    }
    let conffiles = dpkg_deb(&["-f"], &deb);
    assert!(conffiles.contains("Version: "), "{conffiles}");
    let unpacked = TempDir::new("deb-x");
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("-R").arg(&deb).arg(unpacked.path());
    let ran = run_bounded(cmd, 60);
    assert!(ran.ok(), "{}", ran.describe());
    let listed = std::fs::read_to_string(unpacked.join("DEBIAN/conffiles")).unwrap();
    assert!(
        listed.lines().any(|l| l == "/etc/ftpgate/ftpgate.conf"),
        "{listed}"
    );
    assert!(
        listed.lines().any(|l| l == "/etc/xinetd.d/ftpgate"),
        "{listed}"
    );

    // The packaged binary runs and reads the packaged configuration.
    let bin = unpacked.join("usr/sbin/ftpgate");
    let mut cmd = Command::new(&bin);
    cmd.arg("-V");
    let ran = run_bounded(cmd, 20);
    assert!(ran.ok(), "{}", ran.describe());
    assert!(
        ran.stdout
            .starts_with(&format!("ftpgate {}", env!("CARGO_PKG_VERSION")))
    );
    let mut cmd = Command::new(&bin);
    cmd.arg("-c")
        .arg("-f")
        .arg(unpacked.join("etc/ftpgate/ftpgate.conf"));
    let ran = run_bounded(cmd, 20);
    assert!(ran.ok(), "packaged configuration: {}", ran.describe());

    // The release binary is static and never uses glibc's NSS (getpwnam,
    // getaddrinfo, ...): NSS would load the system's shared modules into
    // the static process, which can crash (src/sys/accounts.rs). glibc
    // links its NSS code only when such a function is called somewhere.
    let image = std::fs::read(&bin).unwrap();
    for needle in [&b"nsswitch.conf"[..], b"libnss_"] {
        assert!(
            !image.windows(needle.len()).any(|w| w == needle),
            "the packaged ftpgate contains {:?}: something calls glibc's NSS",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        !has_interpreter(&image),
        "the packaged ftpgate is dynamically linked (see .cargo/config.toml)"
    );
    // With Rust's musl target installed the package holds the musl build
    // (scripts/release-build): no glibc start-up code in it.
    if target.is_some() {
        let needle = b"GLIBC_TUNABLES";
        assert!(
            !image.windows(needle.len()).any(|w| w == needle),
            "the packaged ftpgate is linked against glibc, not musl"
        );
    }

    // The manual pages are the ones in man/, compressed.
    for (packed, source) in [
        ("usr/share/man/man8/ftpgate.8.gz", "man/ftpgate.8"),
        ("usr/share/man/man5/ftpgate.conf.5.gz", "man/ftpgate.conf.5"),
    ] {
        let mut cmd = Command::new("gzip");
        cmd.arg("-dc").arg(unpacked.join(packed));
        let ran = run_bounded(cmd, 20);
        assert!(ran.ok(), "{}", ran.describe());
        let want = std::fs::read_to_string(manifest.join(source)).unwrap();
        assert_eq!(ran.stdout, want, "{packed}");
    }
}

#[test]
fn the_manual_pages_document_every_option_and_flag() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let conf5 = std::fs::read_to_string(manifest.join("man/ftpgate.conf.5")).unwrap();
    for o in ftpgate::config::options::OPTIONS {
        assert!(
            conf5.contains(&format!(".TP\n.B {}\n", o.name)),
            "ftpgate.conf(5) has no entry for {}",
            o.name
        );
    }
    let man8 = std::fs::read_to_string(manifest.join("man/ftpgate.8")).unwrap();
    for flag in [
        "\\-c", "\\-d", "\\-i", "\\-f", "\\-n", "\\-v", "\\-V", "\\-h",
    ] {
        assert!(
            man8.contains(&format!(".BR {flag} ")),
            "ftpgate(8) lacks {flag}"
        );
    }
    for sig in [
        "SIGTERM",
        "SIGHUP",
        "SIGUSR1",
        "SIGCHLD",
        "EXIT STATUS",
        "FILES",
    ] {
        assert!(man8.contains(sig), "ftpgate(8) lacks {sig}");
    }
}

/// Whether a 64-bit little-endian ELF image names a program interpreter
/// (PT_INTERP): a dynamically linked executable does, a static one not.
fn has_interpreter(elf: &[u8]) -> bool {
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit LE ELF file"
    );
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let h = phoff + i * phentsize;
        u32::from_le_bytes(elf[h..h + 4].try_into().unwrap()) == 3
    })
}
