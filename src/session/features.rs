//! Small protocol decisions of the engine: which way a transfer flows,
//! which mode to use towards the server, what FEAT may advertise.
#![forbid(unsafe_code)]

use crate::config::TransferMode;
use crate::ftp::command;
use crate::ftp::reply::{self, Reply};
use crate::policy::filter::CommandFilter;

/// Which way the bytes of a data command flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// server -> client: RETR, LIST, NLST, MLSD
    Download,
    /// client -> server: STOR, STOU, APPE
    Upload,
}

/// The direction of a data command (any verb of `Kind::Data`).
pub fn direction(verb: &[u8]) -> Direction {
    match verb {
        b"STOR" | b"STOU" | b"APPE" => Direction::Upload,
        _ => Direction::Download,
    }
}

/// Who opens a data connection on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The proxy listens (client sent PASV/EPSV; or the server is told PORT).
    Passive,
    /// The proxy connects.
    Active,
}

/// The mode to use towards the server, given DestinationTransferMode and the
/// mode the client chose. Returns the mode as the SERVER sees it: `Passive`
/// means we send PASV/EPSV to the server and connect to it.
pub fn server_mode(configured: TransferMode, client: Side) -> Side {
    match configured {
        TransferMode::Passive => Side::Passive,
        TransferMode::Active => Side::Active,
        // The client's PASV makes it the active party towards us; "follow the
        // client" means: the server gets the same request the client made.
        TransferMode::Client => client,
    }
}

/// Features that ftpgate provides to clients itself, whatever the server has.
const OWN_FEATURES: &[&[u8]] = &[b"EPRT", b"EPSV"];

/// Features never taken from the server: the client leg's TLS is
/// ftpgate's own (SPEC 10), whatever the server has.
const HIDDEN_FEATURES: &[&[u8]] = &[
    b"AUTH", b"PBSZ", b"PROT", b"CCC", b"ADAT", b"MIC", b"CONF", b"ENC",
];

/// Map a FEAT line's first word to the command it stands for.
fn feature_command(word: &[u8]) -> &[u8] {
    match word {
        b"UTF8" => b"OPTS",
        b"MLST" => b"MLST",
        b"TVFS" => b"",
        other => other,
    }
}

/// Build the client's FEAT reply from the server's reply (None or not 211:
/// the server has no FEAT): server features minus hidden ones, minus those
/// named after commands ftpgate does not relay, and minus those the user's
/// ValidCommands refuse, plus ftpgate's own; with `tls` (ClientTLS is not
/// off) AUTH TLS, PBSZ and PROT too.
pub fn features(server: Option<&Reply>, filter: Option<&CommandFilter>, tls: bool) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    if let Some(r) = server.filter(|r| r.code == reply::SYSTEM_STATUS && r.lines.len() > 2) {
        for line in &r.lines[1..r.lines.len() - 1] {
            let feat = line.strip_prefix(b" ").unwrap_or(line);
            let word: Vec<u8> = feat
                .split(|&b| b == b' ')
                .next()
                .unwrap_or(b"")
                .to_ascii_uppercase();
            if word.is_empty()
                || HIDDEN_FEATURES.contains(&word.as_slice())
                || OWN_FEATURES.contains(&word.as_slice())
            {
                continue;
            }
            let cmd = feature_command(&word);
            // A feature named after a command ftpgate does not know (PRET,
            // ESTA, XCRC, ...) would be answered 500 by ftpgate itself.
            if !cmd.is_empty() && command::kind(cmd).is_none() {
                continue;
            }
            if let (Some(f), false) = (filter, cmd.is_empty())
                && !f.allows(cmd)
            {
                continue;
            }
            lines.push(feat.to_vec());
        }
    }
    for own in OWN_FEATURES {
        if filter.is_none_or(|f| f.allows(own)) {
            lines.push(own.to_vec());
        }
    }
    if tls {
        lines.extend([b"AUTH TLS".to_vec(), b"PBSZ".to_vec(), b"PROT".to_vec()]);
    }
    let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
    reply::listing(reply::SYSTEM_STATUS, b"Features:", &refs, b"End")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_commands_ftpgate_does_not_know_are_not_advertised() {
        // pure-ftpd's FEAT (abridged).
        let lines = [
            "211-Extensions supported:",
            " UTF8",
            " IDLE",
            " MDTM",
            " REST STREAM",
            " MLSD",
            " PRET",
            " AUTH TLS",
            " TVFS",
            " ESTA",
            " PASV",
            " ESTP",
            "211 End.",
        ];
        let server = Reply {
            code: reply::SYSTEM_STATUS,
            lines: lines.iter().map(|l| l.as_bytes().to_vec()).collect(),
        };
        let out = features(Some(&server), None, false);
        let text = String::from_utf8_lossy(&out);
        for kept in [
            "UTF8",
            "MDTM",
            "REST STREAM",
            "MLSD",
            "TVFS",
            "PASV",
            "EPRT",
            "EPSV",
        ] {
            assert!(
                text.contains(&format!(" {kept}\r\n")),
                "{kept} missing: {text}"
            );
        }
        for dropped in ["IDLE", "PRET", "AUTH", "ESTA", "ESTP"] {
            assert!(!text.contains(dropped), "{dropped} advertised: {text}");
        }
    }

    #[test]
    fn uploads_and_downloads_are_told_apart() {
        assert_eq!(direction(b"RETR"), Direction::Download);
        assert_eq!(direction(b"LIST"), Direction::Download);
        assert_eq!(direction(b"MLSD"), Direction::Download);
        assert_eq!(direction(b"STOR"), Direction::Upload);
        assert_eq!(direction(b"APPE"), Direction::Upload);
        assert_eq!(direction(b"STOU"), Direction::Upload);
    }

    #[test]
    fn client_mode_follows_the_client_and_fixed_modes_do_not() {
        let cases = [
            (TransferMode::Client, Side::Passive, Side::Passive),
            (TransferMode::Client, Side::Active, Side::Active),
            (TransferMode::Active, Side::Passive, Side::Active),
            (TransferMode::Passive, Side::Active, Side::Passive),
        ];
        for (configured, client, expected) in cases {
            assert_eq!(
                server_mode(configured, client),
                expected,
                "{configured:?} {client:?}"
            );
        }
    }
}
