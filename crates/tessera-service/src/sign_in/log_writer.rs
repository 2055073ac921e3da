//! Group commit for the sign-in log: every sign-in (user or workload) hands its entry
//! to one writer task and waits until the batch holding it is durably committed, so
//! nothing acknowledged is lost, while many concurrent sign-ins share one commit.
//! Idle, a batch is one entry and adds no delay; busy, entries that arrive during a
//! commit go together into the next.

use std::sync::{Arc, OnceLock};

use tessera_core::TenantId;
use tessera_store::{SignInRow, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ServiceError, ServiceResult};

/// Most entries in one commit.
const MAX_BATCH: usize = 512;

type Pending = (TenantId, SignInRow, oneshot::Sender<Result<(), String>>);

#[derive(Default)]
pub(crate) struct SignInLog {
    sender: OnceLock<mpsc::Sender<Pending>>,
}

impl SignInLog {
    fn sender(&self, store: &Arc<dyn Store>) -> &mpsc::Sender<Pending> {
        self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(16 * MAX_BATCH);
            tokio::spawn(write_batches(store.clone(), receiver));
            sender
        })
    }

    /// Appends an entry; returns once it is committed.
    pub async fn append(
        &self,
        store: &Arc<dyn Store>,
        tenant: TenantId,
        row: SignInRow,
    ) -> ServiceResult<()> {
        let (done, committed) = oneshot::channel();
        self.sender(store)
            .send((tenant, row, done))
            .await
            .map_err(|_| ServiceError::Unavailable("the sign-in log writer stopped".to_string()))?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                tracing::error!(%error, "sign-in log batch failed");
                Err(ServiceError::Unavailable(
                    "the sign-in log could not be written".to_string(),
                ))
            }
            Err(_) => Err(ServiceError::Unavailable(
                "the sign-in log writer stopped".to_string(),
            )),
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let rows: Vec<(TenantId, SignInRow)> = batch
            .iter()
            .map(|(t, r, _)| (*t, storable(r.clone())))
            .collect();
        match store.sign_in_append_batch(&rows).await {
            Ok(()) => {
                for (_, _, done) in batch {
                    let _ = done.send(Ok(()));
                }
            }
            // One entry a backend refuses must not fail the others: the batch is
            // written again entry by entry, so each request learns only its own fate.
            // An entry that fails for the database's own reasons (an outage, not its
            // data) ends the retry: the rest fail at once instead of each waiting
            // out the outage in turn.
            Err(_) if batch.len() > 1 => {
                let mut outage: Option<String> = None;
                for ((_, _, done), row) in batch.into_iter().zip(rows) {
                    let outcome = match &outage {
                        Some(error) => Err(error.clone()),
                        None => match store.sign_in_append(row.0, &row.1).await {
                            Ok(()) => Ok(()),
                            Err(StoreError::Backend(error)) => {
                                outage = Some(error.clone());
                                Err(error)
                            }
                            Err(error) => Err(error.to_string()),
                        },
                    };
                    let _ = done.send(outcome);
                }
            }
            Err(error) => {
                for (_, _, done) in batch {
                    let _ = done.send(Err(error.to_string()));
                }
            }
        }
    }
}

/// The entry with every text made storable on every backend: PostgreSQL's text
/// cannot hold NUL, and the log records what a client sent, whatever it was.
fn storable(mut row: SignInRow) -> SignInRow {
    fn clean(text: &mut String) {
        if text.contains('\0') {
            *text = text.replace('\0', "\u{FFFD}");
        }
    }
    clean(&mut row.user_name);
    clean(&mut row.result);
    clean(&mut row.correlation_id);
    clean(&mut row.body);
    for text in [&mut row.application, &mut row.failure_code]
        .into_iter()
        .flatten()
    {
        clean(text);
    }
    row
}
