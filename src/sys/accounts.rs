//! User and group names from /etc/passwd and /etc/group, read directly.
//!
//! ftpgate is linked statically (see README "Static binary"). A static glibc
//! looks names up through NSS by loading the system's shared NSS modules
//! into a process that has no dynamic loader of its own, and that crashes
//! (seen in libnss_systemd for a name missing from /etc/passwd). So User and
//! Group are read from the two files, as musl and busybox do; accounts
//! that only LDAP or sssd know cannot be used. Called before the chroot.
#![forbid(unsafe_code)]

use std::io;

use crate::limits;

/// The uid and primary gid of user `name`, from /etc/passwd.
pub fn user(name: &str) -> io::Result<Option<(u32, u32)>> {
    Ok(find_user(&read("/etc/passwd")?, name))
}

/// The primary gid of the account with user id `uid`, from /etc/passwd
/// (None when no line has that id).
pub fn primary_gid(uid: u32) -> io::Result<Option<u32>> {
    Ok(find_primary_gid(&read("/etc/passwd")?, uid))
}

/// The gid of group `name`, from /etc/group.
pub fn group(name: &str) -> io::Result<Option<u32>> {
    Ok(find_group(&read("/etc/group")?, name))
}

fn read(path: &str) -> io::Result<String> {
    let bytes = std::fs::read(path)?;
    if bytes.len() > limits::MAX_ACCOUNTS_FILE {
        return Err(io::Error::other(format!(
            "{path} is larger than {} bytes",
            limits::MAX_ACCOUNTS_FILE
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `name:password:uid:gid:...` lines; the first line naming `name` counts
/// (as with glibc's files source). Comments, blank lines, NIS `+`/`-`
/// entries and lines with a non-numeric id are skipped.
fn find_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    fields(passwd, name).and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
}

/// The gid field of the first usable passwd line whose uid is `uid`.
fn find_primary_gid(passwd: &str, uid: u32) -> Option<u32> {
    entries(passwd)
        .filter(|f| f.len() >= 4 && f[2].parse() == Ok(uid))
        .find_map(|f| f[3].parse().ok())
}

/// `name:password:gid:members` lines, as [`find_user`].
fn find_group(group: &str, name: &str) -> Option<u32> {
    fields(group, name).and_then(|f| f.get(2)?.parse().ok())
}

/// The first entry named `name` (see [`entries`]).
fn fields<'a>(text: &'a str, name: &str) -> Option<Vec<&'a str>> {
    if name.is_empty() {
        return None;
    }
    entries(text).find(|f| f.len() >= 3 && f[0] == name)
}

/// The colon-separated fields of each line, skipping comments and NIS
/// `+`/`-` entries.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.starts_with('#') && !l.starts_with('+') && !l.starts_with('-'))
        .map(|l| l.split(':').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
# a comment
+nisuser::::::
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
ftpgate:x:999:998::/var/empty:/usr/sbin/nologin
ftpgate:x:1234:1234:second entry is ignored:/:/bin/false
broken:x:notanumber:1::/:
";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nftpgate:x:998:alice,bob\n";

    #[test]
    fn users_resolve_to_uid_and_primary_gid_first_entry_wins() {
        assert_eq!(find_user(PASSWD, "root"), Some((0, 0)));
        assert_eq!(find_user(PASSWD, "nobody"), Some((65534, 65534)));
        assert_eq!(find_user(PASSWD, "ftpgate"), Some((999, 998)));
    }

    #[test]
    fn unknown_odd_and_partial_names_do_not_resolve() {
        for name in [
            "",
            "nobod",
            "nobody2",
            "NOBODY",
            "broken",
            "+nisuser",
            "nisuser",
            "# a comment",
        ] {
            assert_eq!(find_user(PASSWD, name), None, "{name:?}");
        }
        assert_eq!(find_user("", "root"), None);
    }

    #[test]
    fn a_user_id_resolves_to_its_primary_group() {
        assert_eq!(find_primary_gid(PASSWD, 65534), Some(65534));
        assert_eq!(find_primary_gid(PASSWD, 999), Some(998));
        assert_eq!(find_primary_gid(PASSWD, 4242), None);
        assert_eq!(primary_gid(0).unwrap(), Some(0));
    }

    #[test]
    fn groups_resolve_to_gid() {
        assert_eq!(find_group(GROUP, "nogroup"), Some(65534));
        assert_eq!(find_group(GROUP, "ftpgate"), Some(998));
        assert_eq!(find_group(GROUP, "alice"), None);
        assert_eq!(find_group(GROUP, "nosuch"), None);
    }

    #[test]
    fn the_real_files_know_root() {
        assert_eq!(user("root").unwrap(), Some((0, 0)));
        assert_eq!(group("root").unwrap(), Some(0));
    }
}
