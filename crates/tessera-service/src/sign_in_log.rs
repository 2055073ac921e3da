//! Group commit for the sign-in log: every sign-in (user or workload) hands its entry
//! to one writer task and waits until the batch holding it is durably committed, so
//! nothing acknowledged is lost, while many concurrent sign-ins share one commit.
//! Idle, a batch is one entry and adds no delay; busy, entries that arrive during a
//! commit go together into the next.

use std::sync::{Arc, OnceLock};

use tessera_core::TenantId;
use tessera_store::{SignInRow, Store};
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
        let rows: Vec<(TenantId, SignInRow)> =
            batch.iter().map(|(t, r, _)| (*t, r.clone())).collect();
        let outcome = store
            .sign_in_append_batch(&rows)
            .await
            .map_err(|e| e.to_string());
        for (_, _, done) in batch {
            let _ = done.send(outcome.clone());
        }
    }
}
