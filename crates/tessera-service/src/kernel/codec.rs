//! Turning domain objects into store records and back, cursors, and pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tessera_core::{TenantId, Timestamp};
use tessera_store::{Cursor, Kind, Link, ListQuery, Reader, Record, Rel, WriteTx};
use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

/// A page of results and the cursor for the next page (absent on the last page).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub value: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of what `view` makes of each item (the first failure fails it).
    pub(crate) fn of<I>(
        items: &[I],
        next_cursor: Option<String>,
        view: impl FnMut(&I) -> ServiceResult<T>,
    ) -> ServiceResult<Page<T>> {
        let value = items.iter().map(view).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Page { value, next_cursor })
    }
}

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    /// Only objects whose display name starts with this (case-insensitive).
    pub search: Option<String>,
}

impl PageRequest {
    pub fn limit(&self) -> ServiceResult<u32> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(0) => Err(ServiceError::invalid("limit", "must be at least 1")),
            Some(n) if n > MAX_PAGE => Err(ServiceError::invalid(
                "limit",
                format!("must be at most {MAX_PAGE}"),
            )),
            Some(n) => Ok(n),
        }
    }
}

/// Paging of the logs kept beside the directory (sign-ins, risk detections):
/// newest first by `(time, id)`, 1 to 1000 entries a page (100 by default),
/// the cursor being the last entry's `time.id`.
pub(crate) struct LogPage {
    /// The page's size; the query asks for one more, to know if more follow.
    pub limit: u32,
    pub before: Option<(tessera_core::Timestamp, uuid::Uuid)>,
}

impl LogPage {
    pub(crate) fn read(limit: Option<u32>, cursor: Option<&str>) -> ServiceResult<LogPage> {
        let limit = match limit {
            None => 100,
            Some(n) if (1..=1000).contains(&n) => n,
            Some(_) => return Err(ServiceError::invalid("limit", "must be between 1 and 1000")),
        };
        let before = match cursor {
            None => None,
            Some(text) => Some(parse_log_cursor(text).ok_or_else(|| {
                ServiceError::invalid("cursor", "is not a cursor returned by this API")
            })?),
        };
        Ok(LogPage { limit, before })
    }

    /// Cuts the rows fetched (`limit + 1` at most) to the page; the next
    /// page's cursor when more follow.
    pub(crate) fn finish<R>(
        &self,
        rows: &mut Vec<R>,
        key: impl Fn(&R) -> (tessera_core::Timestamp, uuid::Uuid),
    ) -> Option<String> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        rows.last().filter(|_| more).map(|row| {
            let (time, id) = key(row);
            format!("{}.{id}", time.unix_micros())
        })
    }
}

fn parse_log_cursor(text: &str) -> Option<(tessera_core::Timestamp, uuid::Uuid)> {
    let (time, id) = text.split_once('.')?;
    Some((
        tessera_core::Timestamp::from_unix_micros(time.parse().ok()?),
        uuid::Uuid::parse_str(id).ok()?,
    ))
}

pub struct Keys {
    pub key1: Option<String>,
    pub key2: Option<String>,
    pub sort_key: String,
}

impl Keys {
    /// Keys of a record found by id only, sorted by its display name.
    pub(crate) fn named(display_name: &str) -> Keys {
        Keys {
            key1: None,
            key2: None,
            sort_key: sort_key(display_name),
        }
    }
}

pub(crate) fn sort_key(display_name: &str) -> String {
    display_name.to_lowercase()
}

fn to_json<D: Serialize>(data: &D) -> ServiceResult<String> {
    serde_json::to_string(data)
        .map_err(|e| ServiceError::Internal(format!("cannot encode an object: {e}")))
}

pub(crate) fn new_record<D: Serialize>(
    kind: Kind,
    id: Uuid,
    now: Timestamp,
    keys: Keys,
    data: &D,
) -> ServiceResult<Record> {
    Ok(Record {
        kind,
        id,
        version: 1,
        created: now,
        modified: now,
        key1: keys.key1,
        key2: keys.key2,
        sort_key: keys.sort_key,
        data: to_json(data)?,
    })
}

pub(crate) fn next_version<D: Serialize>(
    old: &Record,
    now: Timestamp,
    keys: Keys,
    data: &D,
) -> ServiceResult<Record> {
    Ok(Record {
        kind: old.kind,
        id: old.id,
        version: old.version + 1,
        created: old.created,
        modified: now.max(old.modified),
        key1: keys.key1,
        key2: keys.key2,
        sort_key: keys.sort_key,
        data: to_json(data)?,
    })
}

/// Writes `data` as the next version of `existing`, or as a new record with `id`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn put<D: Serialize>(
    tx: &mut dyn tessera_store::WriteTx,
    tenant: TenantId,
    kind: Kind,
    existing: Option<&Record>,
    id: Uuid,
    now: Timestamp,
    keys: Keys,
    data: &D,
) -> ServiceResult<()> {
    match existing {
        Some(record) => {
            tx.update(tenant, &next_version(record, now, keys, data)?)
                .await?
        }
        None => {
            tx.insert(tenant, &new_record(kind, id, now, keys, data)?)
                .await?
        }
    }
    Ok(())
}

/// Writes a record made by [`new_record`] or [`next_version`]: an update when the
/// object `exists`.
pub(crate) async fn put_record(
    tx: &mut dyn tessera_store::WriteTx,
    tenant: TenantId,
    exists: bool,
    record: &Record,
) -> ServiceResult<()> {
    if exists {
        tx.update(tenant, record).await?;
    } else {
        tx.insert(tenant, record).await?;
    }
    Ok(())
}

pub(crate) fn data<D: DeserializeOwned>(record: &Record) -> ServiceResult<D> {
    serde_json::from_str(&record.data).map_err(|e| {
        ServiceError::Internal(format!(
            "stored {} {} cannot be read: {e}",
            record.kind.as_str(),
            record.id
        ))
    })
}

pub(crate) async fn load(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    id: Uuid,
) -> ServiceResult<Record> {
    reader
        .get(tenant, kind, id)
        .await?
        .ok_or_else(|| ServiceError::NotFound {
            kind: kind.as_str(),
            id: id.to_string(),
        })
}

/// The object a change or removal is for, with the version the client last read
/// (its `If-Match`), when it named one: the write is refused if the object has moved
/// on since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versioned<I = Uuid> {
    pub id: I,
    pub if_match: Option<i64>,
}

impl<I> Versioned<I> {
    pub fn new(id: I, if_match: Option<i64>) -> Versioned<I> {
        Versioned { id, if_match }
    }

    /// Whatever version is current (no precondition).
    pub fn any(id: I) -> Versioned<I> {
        Versioned { id, if_match: None }
    }

    /// A JSON merge patch on this object.
    pub fn patch(self, body: serde_json::Value) -> Patch<I> {
        Patch { at: self, body }
    }

    /// Refuses unless `record` is still at the version the client read.
    pub(crate) fn check(&self, record: &Record) -> ServiceResult<()> {
        check_if_match(record, self.if_match)
    }
}

/// A change a client asks for: a JSON merge patch (RFC 7396) on one object, at the
/// version it last read.
#[derive(Clone, Debug, PartialEq)]
pub struct Patch<I = Uuid> {
    pub at: Versioned<I>,
    pub body: serde_json::Value,
}

/// A whole new value for a tenant-wide setting, at the version the client last read
/// (its `If-Match`; a setting never set is at version 0), when it named one.
#[derive(Clone, Debug, PartialEq)]
pub struct Replacement {
    pub body: serde_json::Value,
    pub if_match: Option<i64>,
}

impl Replacement {
    pub fn new(body: serde_json::Value, if_match: Option<i64>) -> Replacement {
        Replacement { body, if_match }
    }

    /// Whatever version is current (no precondition).
    pub fn any(body: serde_json::Value) -> Replacement {
        Replacement {
            body,
            if_match: None,
        }
    }
}

impl Versioned<String> {
    pub fn as_deref(&self) -> Versioned<&str> {
        Versioned::new(self.id.as_str(), self.if_match)
    }
}

/// Refuses a write whose `If-Match` version is not the current one.
pub(crate) fn check_if_match(record: &Record, if_match: Option<i64>) -> ServiceResult<()> {
    match if_match {
        Some(sent) if sent != record.version => Err(ServiceError::VersionMismatch {
            sent,
            current: record.version,
        }),
        _ => Ok(()),
    }
}

fn encode_cursor(record: &Record) -> String {
    let raw = serde_json::json!([record.sort_key, record.id]).to_string();
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(text: &str) -> ServiceResult<Cursor> {
    let malformed = || ServiceError::invalid("cursor", "is not a cursor returned by this API");
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| malformed())?;
    let (sort_key, id): (String, Uuid) = serde_json::from_slice(&raw).map_err(|_| malformed())?;
    Ok(Cursor { sort_key, id })
}

/// One page of `kind`, optionally only records with `key2`.
pub(crate) async fn list_page(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    request: &PageRequest,
    key2: Option<String>,
) -> ServiceResult<(Vec<Record>, Option<String>)> {
    let limit = request.limit()?;
    let after = request.cursor.as_deref().map(decode_cursor).transpose()?;
    let prefix = request
        .search
        .as_deref()
        .map(str::to_lowercase)
        .filter(|s| !s.is_empty());
    let query = ListQuery {
        after,
        limit: limit + 1,
        prefix,
        key2,
    };
    let mut records = reader.list(tenant, kind, &query).await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next = if more {
        records.last().map(encode_cursor)
    } else {
        None
    };
    Ok((records, next))
}

/// One page of the links of `rel` from `source`, ordered by target; the cursor is the
/// last target's id.
pub(crate) async fn links_page(
    reader: &mut dyn Reader,
    tenant: TenantId,
    rel: Rel,
    source: Uuid,
    request: &PageRequest,
) -> ServiceResult<(Vec<Link>, Option<String>)> {
    let limit = request.limit()?;
    let after = request
        .cursor
        .as_deref()
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| {
                ServiceError::invalid("cursor", "is not a cursor returned by this API")
            })
        })
        .transpose()?;
    // One more than asked, to know whether there is a next page.
    let mut links = reader
        .links_from(tenant, rel, source, after, limit + 1)
        .await?;
    let more = links.len() > limit as usize;
    links.truncate(limit as usize);
    let next = if more {
        links.last().map(|l| l.target.to_string())
    } else {
        None
    };
    Ok((links, next))
}

/// Every record of `kind` with `key2` (for internal bookkeeping, e.g. all the role
/// assignments of a principal), page by page.
pub(crate) async fn list_all(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    key2: Option<String>,
) -> ServiceResult<Vec<Record>> {
    list_all_prefixed(reader, tenant, kind, key2, None).await
}

/// Every record of `kind` (with this `key2`, when given) whose sort key starts
/// with `prefix`, in sort order.
pub(crate) async fn list_all_prefixed(
    reader: &mut dyn Reader,
    tenant: TenantId,
    kind: Kind,
    key2: Option<String>,
    prefix: Option<String>,
) -> ServiceResult<Vec<Record>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let query = ListQuery {
            after: after.clone(),
            limit: 1000,
            prefix: prefix.clone(),
            key2: key2.clone(),
        };
        let page = reader.list(tenant, kind, &query).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor {
            sort_key: last.sort_key.clone(),
            id: last.id,
        });
        let full = page.len() == 1000;
        all.extend(page);
        if !full {
            break;
        }
    }
    Ok(all)
}

/// Deletes every record of `kind` whose second key is `owner` (an owner's secrets or
/// tokens) and returns their ids.
pub(crate) async fn delete_owned(
    tx: &mut dyn WriteTx,
    tenant: TenantId,
    kind: Kind,
    owner: Uuid,
) -> ServiceResult<Vec<Uuid>> {
    let owned = list_all(tx, tenant, kind, Some(owner.to_string())).await?;
    let mut removed = Vec::with_capacity(owned.len());
    for record in owned {
        tx.delete(tenant, kind, record.id, None).await?;
        removed.push(record.id);
    }
    Ok(removed)
}

/// Offset-free paging over an in-memory, id-sorted list (transitive memberships).
pub(crate) fn page_by_id<T>(
    mut items: Vec<(Uuid, T)>,
    request: &PageRequest,
) -> ServiceResult<Page<T>> {
    let limit = request.limit()? as usize;
    items.sort_by_key(|(id, _)| *id);
    let after = match &request.cursor {
        None => None,
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            ServiceError::invalid("cursor", "is not a cursor returned by this API")
        })?),
    };
    let start = after
        .map(|a| items.partition_point(|(id, _)| *id <= a))
        .unwrap_or(0);
    let rest: Vec<(Uuid, T)> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    let mut value = Vec::new();
    let mut last = None;
    for (id, item) in rest.into_iter().take(limit) {
        last = Some(id);
        value.push(item);
    }
    Ok(Page {
        value,
        next_cursor: if more {
            last.map(|id| id.to_string())
        } else {
            None
        },
    })
}

/// The record of `kind` whose `key1` is the hash of a bearer secret, the hash
/// compared again in constant time (defence in depth: the lookup was by hash).
pub(crate) async fn find_by_secret(
    reader: &mut dyn tessera_store::Reader,
    tenant: tessera_core::TenantId,
    kind: Kind,
    secret: &str,
) -> ServiceResult<Option<Record>> {
    let hash = tessera_core::crypto::secret_hash(secret);
    let Some(record) = reader.get_by_key1(tenant, kind, &hash).await? else {
        return Ok(None);
    };
    let same = record.key1.as_deref().is_some_and(|stored| {
        tessera_core::crypto::constant_time_eq(stored.as_bytes(), hash.as_bytes())
    });
    Ok(same.then_some(record))
}
