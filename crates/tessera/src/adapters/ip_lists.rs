//! Identity Protection's address lists from the operator's files
//! (`risk_anonymous_ip_list`, `risk_malicious_ip_list`; the format is
//! `tessera_risk::iplist`'s). Read at start, where a list that cannot be read
//! stops the start with its file and line; then looked at every
//! [`RELOAD_EVERY`] and read again when its modification time or size changed.
//! A changed file that cannot be read is reported and the list in use stays.
//! Replace a list by writing a new file and renaming it over the old one, so
//! it is never read half written.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tessera_risk::iplist::IpList;
use tessera_service::risk::IpLists;

/// How often the files are looked at.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// The largest list file read (a few million ranges fit).
const MAX_FILE_BYTES: u64 = 256 << 20;

/// One list and the file it came from. The list is swapped whole: lookups
/// never wait for a file being read (only for the swap itself).
struct Watched {
    path: PathBuf,
    /// The modification time and size it was read at.
    seen: std::sync::Mutex<Option<(SystemTime, u64)>>,
    list: RwLock<Arc<IpList>>,
}

impl Watched {
    fn open(path: &Path) -> Result<Watched, String> {
        let (list, seen) = read(path)?;
        Ok(Watched {
            path: path.to_path_buf(),
            seen: std::sync::Mutex::new(Some(seen)),
            list: RwLock::new(Arc::new(list)),
        })
    }

    /// Reads the file again if it changed; says what happened.
    fn refresh(&self) -> Option<Result<usize, String>> {
        let now = stamp(&self.path).ok();
        let seen = self.seen.lock().ok().and_then(|s| *s);
        if now.is_none() || now == seen {
            return None;
        }
        // Read and parsed with no lock held.
        Some(read(&self.path).map(|(list, read_at)| {
            let ranges = list.len();
            if let Ok(mut current) = self.list.write() {
                *current = Arc::new(list);
            }
            if let Ok(mut seen) = self.seen.lock() {
                *seen = Some(read_at);
            }
            ranges
        }))
    }

    fn current(&self) -> Option<Arc<IpList>> {
        self.list.read().ok().map(|list| list.clone())
    }
}

fn stamp(path: &Path) -> std::io::Result<(SystemTime, u64)> {
    let meta = std::fs::metadata(path)?;
    Ok((meta.modified()?, meta.len()))
}

fn read(path: &Path) -> Result<(IpList, (SystemTime, u64)), String> {
    let seen = stamp(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if seen.1 > MAX_FILE_BYTES {
        return Err(format!(
            "{} is larger than {} MiB",
            path.display(),
            MAX_FILE_BYTES >> 20
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let list = IpList::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((list, seen))
}

/// The operator's lists, reloaded when their files change.
pub struct FileLists {
    anonymous: Option<Watched>,
    malicious: Option<Watched>,
}

impl FileLists {
    /// Reads the lists named (either may be absent).
    pub fn open(anonymous: Option<&Path>, malicious: Option<&Path>) -> Result<FileLists, String> {
        let open = |path: Option<&Path>| -> Result<Option<Watched>, String> {
            path.map(Watched::open).transpose()
        };
        Ok(FileLists {
            anonymous: open(anonymous)?,
            malicious: open(malicious)?,
        })
    }

    /// Looks at the files and reads those that changed.
    pub fn refresh(&self) {
        for watched in [&self.anonymous, &self.malicious].into_iter().flatten() {
            match watched.refresh() {
                Some(Ok(ranges)) => {
                    tracing::info!(path = %watched.path.display(), ranges, "IP list reloaded")
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "IP list not reloaded; the list in use stays")
                }
                None => {}
            }
        }
    }

    /// Refreshes the lists every [`RELOAD_EVERY`] for as long as they are used.
    pub fn watch(lists: &Arc<FileLists>) {
        let weak = Arc::downgrade(lists);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(lists) = weak.upgrade() else { return };
                // File reads off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || lists.refresh()).await;
            }
        });
    }

    fn find(watched: &Option<Watched>, ip: IpAddr) -> Option<String> {
        let list = watched.as_ref()?.current()?;
        list.find(ip).map(str::to_string)
    }
}

impl IpLists for FileLists {
    fn anonymous(&self, ip: IpAddr) -> Option<String> {
        FileLists::find(&self.anonymous, ip)
    }

    fn malicious(&self, ip: IpAddr) -> Option<String> {
        FileLists::find(&self.malicious, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_load_and_reload_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tor.txt");
        std::fs::write(&path, "185.220.101.7 tor\n").unwrap();
        let lists = FileLists::open(Some(&path), None).unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert_eq!(lists.anonymous(ip("185.220.101.7")).as_deref(), Some("tor"));
        assert_eq!(lists.malicious(ip("185.220.101.7")), None);
        // A bad change is reported and the list in use stays.
        std::fs::write(&path, "185.220.101.7 tor\nnot an address at all\n").unwrap();
        lists.refresh();
        assert_eq!(lists.anonymous(ip("185.220.101.7")).as_deref(), Some("tor"));
        // A good change is taken.
        std::fs::write(&path, "203.0.113.0/24 vpn provider\n").unwrap();
        lists.refresh();
        assert_eq!(lists.anonymous(ip("185.220.101.7")), None);
        assert_eq!(
            lists.anonymous(ip("203.0.113.200")).as_deref(),
            Some("vpn provider")
        );
        // A bad file at start stops the start, naming the line.
        std::fs::write(&path, "1.2.3.4\n1.2.3.999\n").unwrap();
        let refused = FileLists::open(Some(&path), None).err().unwrap();
        assert!(refused.contains("line 2"), "{refused}");
    }
}
