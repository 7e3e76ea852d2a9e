//! The jail: chroot into ServerRoot, drop to User/Group, and prove it.
//!
//! `enter` is the only way to build a [`Jailed`] value, and the relay needs
//! one: the session cannot start before the drop was attempted and verified.
//!
//! What the jail lacks is loaded by [`resolve`] while /etc is reachable: the
//! user and group ids and the name-resolution data ([`Resolver`]); the
//! `Jailed` proof carries the latter into the session, so that host names
//! (magic user, DestinationAddress) resolve inside an EMPTY ServerRoot.

use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::unistd::{self, Gid, Uid};

use super::accounts;
use super::resolve::Resolver;

/// Proof that the start-up steps that need privileges are over.
#[derive(Debug)]
pub struct Jailed {
    resolver: Resolver,
}

impl Jailed {
    /// Name resolution from the data cached before the chroot.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

/// What to become, and what to take along; resolved before the chroot
/// (needs /etc/passwd, /etc/group, /etc/hosts, /etc/resolv.conf).
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: Option<Uid>,
    pub gid: Option<Gid>,
}

impl Identity {
    /// SECURITY: User names root (by name, number or another account with
    /// uid 0): the session keeps root, which can leave a chroot jail; worth
    /// a warning at `-c` and at every session start.
    pub fn keeps_root(&self) -> bool {
        self.uid.is_some_and(|u| u.is_root())
    }
}

/// The warning for [`Identity::keeps_root`].
pub const ROOT_USER_WARNING: &str = "User is root (uid 0): the session keeps root, \
     which can escape the ServerRoot jail; set User to an unprivileged account";

/// Look up User and Group names (or numbers) while /etc is still reachable.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Identity> {
    // The user's primary group from /etc/passwd, for a User without Group.
    let (uid, primary) = match user {
        None => (None, None),
        Some(u) => match u.parse::<u32>() {
            Ok(n) => {
                let primary =
                    accounts::primary_gid(n).with_context(|| format!("looking up user id {n}"))?;
                (Some(Uid::from_raw(n)), primary)
            }
            Err(_) => {
                let (uid, gid) = accounts::user(u)
                    .with_context(|| format!("looking up user '{u}'"))?
                    .with_context(|| format!("no such user '{u}' in /etc/passwd"))?;
                (Some(Uid::from_raw(uid)), Some(gid))
            }
        },
    };
    let gid = match group {
        // SECURITY: a User without Group does not keep root's group (as
        // ftp-proxy did): it takes the account's primary group; a user id
        // that /etc/passwd does not know has none, and root's is no answer.
        None if uid.is_some() && primary.is_none() => {
            bail!(
                "user id {} has no entry in /etc/passwd to take its group from: set Group",
                user.unwrap_or_default()
            )
        }
        None => primary.map(Gid::from_raw),
        Some(g) => Some(match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => Gid::from_raw(
                accounts::group(g)
                    .with_context(|| format!("looking up group '{g}'"))?
                    .with_context(|| format!("no such group '{g}' in /etc/group"))?,
            ),
        }),
    };
    Ok(Identity { uid, gid })
}

/// Chroot (when `root` is given), drop groups, gid and uid (when given),
/// verify that root cannot be regained, forbid new privileges and core dumps.
/// `names` (/etc/hosts and /etc/resolv.conf, read before) goes along into
/// the jail.
pub fn enter(root: Option<&Path>, id: &Identity, names: Resolver) -> Result<Jailed> {
    if let Some(dir) = root {
        // SECURITY: confine the session's view of the file system; chdir so
        // that no directory handle outside the jail remains.
        unistd::chroot(dir).with_context(|| format!("chroot to {}", dir.display()))?;
        unistd::chdir("/").context("chdir to / in the jail")?;
    }
    if let Some(gid) = id.gid {
        // SECURITY: supplementary groups first, while we may still change them.
        unistd::setgroups(&[gid]).context("setgroups")?;
        unistd::setresgid(gid, gid, gid).with_context(|| format!("setting group id {gid}"))?;
    } else if id.uid.is_some() && Uid::effective().is_root() {
        unistd::setgroups(&[Gid::effective()]).context("setgroups")?;
    }
    if let Some(uid) = id.uid {
        unistd::setresuid(uid, uid, uid).with_context(|| format!("setting user id {uid}"))?;
        // SECURITY: fail closed if the drop can be undone.
        if !uid.is_root() && unistd::setuid(Uid::from_raw(0)).is_ok() {
            bail!("privilege drop failed: could regain root");
        }
        if let Some(gid) = id.gid
            && gid.as_raw() != 0
            && unistd::setgid(Gid::from_raw(0)).is_ok()
        {
            bail!("privilege drop failed: could regain group root");
        }
    }
    // SECURITY: no setuid program can give privileges back, and a crash
    // leaves no core with session data.
    nix::sys::prctl::set_no_new_privs().context("prctl(PR_SET_NO_NEW_PRIVS)")?;
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE)")?;
    Ok(Jailed { resolver: names })
}

/// True when the process runs with effective user id 0.
pub fn running_as_root() -> bool {
    Uid::effective().is_root()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn user_root_by_name_or_number_keeps_root_and_no_user_does_not_warn() {
        for user in ["root", "0"] {
            assert!(resolve(Some(user), None).unwrap().keeps_root(), "{user}");
        }
        assert!(!resolve(None, None).unwrap().keeps_root());
        assert!(!resolve(Some("65534"), Some("65534")).unwrap().keeps_root());
    }
}
