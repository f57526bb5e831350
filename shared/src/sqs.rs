//! The SQS batch runner every worker uses, and idempotent consumption.
//!
//! Each message is handled on its own; the answer lists only the messages that failed
//! (`ReportBatchItemFailures`), so SQS redelivers just those and, after the queue's
//! `maxReceiveCount`, moves them to the dead-letter queue.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use deadpool_postgres::GenericClient;

use crate::events::Envelope;

/// Runs `handle` for every record; answers the failures.
pub async fn run_batch<F, Fut>(event: SqsEvent, handle: F) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        let id = message.message_id.clone().unwrap_or_default();
        if let Err(err) = handle(message).await {
            tracing::error!(message_id = %id, error = ?err, "message failed; SQS will redeliver it");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// Reads the Lectern envelope out of an SQS message fed by an EventBridge rule.
pub fn envelope_of(message: &SqsMessage) -> anyhow::Result<Envelope> {
    let body = message.body.as_deref().unwrap_or_default();
    Envelope::from_eventbridge_json(body)
}

/// Records that `schema` has processed `event` inside the caller's transaction. Answers
/// false when it already had, in which case the caller does nothing and commits nothing.
pub async fn claim_event(
    tx: &impl GenericClient,
    schema: &str,
    event: &Envelope,
) -> Result<bool, tokio_postgres::Error> {
    let sql = format!(
        "INSERT INTO {schema}.processed_events (event_id, type) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING"
    );
    let inserted = tx.execute(&sql, &[&event.id, &event.type_]).await?;
    Ok(inserted == 1)
}
