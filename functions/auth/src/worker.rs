//! The auth worker: applies what the users service says about users.
//!
//! - `user.invited`: an admin created a user. The identity is created with the same id and no
//!   password, and an invitation link that sets the password is mailed.
//! - `user.updated` with a `status`: the account's status; leaving ACTIVE ends every session.
//! - `user.deleted`: the identity and everything auth holds about it is erased.
//! - `user.access_changed`: the access summary that login and refresh sign into access tokens.
//!
//! Mail goes out as a handler's last step, inside the transaction that claims the event: a
//! failed send fails the message (nothing is kept and SQS redelivers it), and once the claim
//! has committed a redelivery sends nothing. Only a crash between the send and the commit
//! can send a mail twice.

use std::time::Duration;

use anyhow::Context;
use aws_types::SdkConfig;
use deadpool_postgres::Transaction;
use lectern_shared::{
    authz::Access,
    aws::LazySdk,
    config::Env,
    events::Envelope,
    sqs::{Consumer, EventHandler},
    tokens,
    validate::Email,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::{
    accounts::AccountStatus,
    config::AuthWorkerConfig,
    mail::{Invitation, Mailer},
    sessions::revoke_all,
    state::SCHEMA,
};

/// The auth worker as a queue consumer.
pub type Worker = Consumer<AuthEvents>;

/// The auth worker from its environment (the Lambda binary): the AWS configuration loads
/// when the first invitation mail goes out, not at init.
pub async fn from_env(env: &dyn Env) -> anyhow::Result<Worker> {
    build_with(env, LazySdk::from_env(env))
}

/// The auth worker from its environment and an AWS configuration already loaded (the
/// devstack shares one between every function).
pub fn build(env: &dyn Env, sdk: &SdkConfig) -> anyhow::Result<Worker> {
    build_with(env, LazySdk::ready(sdk))
}

fn build_with(env: &dyn Env, sdk: LazySdk) -> anyhow::Result<Worker> {
    let config = AuthWorkerConfig::from_env(env)?;
    let mailer = Mailer::lazy(sdk, config.mail_from, config.public_base_url);
    Consumer::from_env(env, AuthEvents::new(mailer, config.invitation_ttl))
}

/// What the auth worker needs beyond its transaction: the mailer and the invitations' life.
#[derive(Debug, Clone)]
pub struct AuthEvents {
    mailer: Mailer,
    invitation_ttl: Duration,
}

impl AuthEvents {
    pub fn new(mailer: Mailer, invitation_ttl: Duration) -> Self {
        Self {
            mailer,
            invitation_ttl,
        }
    }
}

#[derive(Debug, Deserialize)]
struct AccessChanged {
    user_id: Uuid,
    access: Access,
}

#[derive(Debug, Deserialize)]
struct UserInvited {
    user_id: Uuid,
    email: String,
    first_name: String,
    #[serde(default)]
    invited_by: Option<Uuid>,
}

/// Only the status matters here; the profile fields belong to the users service.
#[derive(Debug, Deserialize)]
struct UserUpdated {
    user_id: Uuid,
    #[serde(default)]
    status: Option<AccountStatus>,
}

#[derive(Debug, Deserialize)]
struct UserDeleted {
    user_id: Uuid,
}

impl EventHandler for AuthEvents {
    const SCHEMA: &'static str = SCHEMA;

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        event: &Envelope,
    ) -> anyhow::Result<Vec<Envelope>> {
        match event.type_.as_str() {
            "user.access_changed" => store_access(tx, event).await?,
            "user.invited" => {
                self.invite(tx, event).await?;
                // The invitation carries the new user's access summary: a user.access_changed
                // that overtook it found no identity to attach to.
                if event.data.get("access").is_some() {
                    store_access(tx, event).await?;
                }
            }
            "user.updated" => update_status(tx, event).await?,
            "user.deleted" => erase(tx, event).await?,
            other => tracing::warn!(kind = other, "the auth worker ignores this event type"),
        }
        Ok(Vec::new())
    }
}

#[tracing::instrument(skip_all, fields(event_id = %event.id))]
async fn store_access(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: AccessChanged = event.data_as()?;
    let access = serde_json::to_value(&data.access)?;
    let stored = tx
        .execute(
            "INSERT INTO auth.user_access (user_id, access, computed_at)
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM auth.users WHERE id = $1)
             ON CONFLICT (user_id) DO UPDATE
             SET access = EXCLUDED.access, computed_at = EXCLUDED.computed_at, updated_at = now()
             WHERE auth.user_access.computed_at < EXCLUDED.computed_at",
            &[&data.user_id, &access, &event.occurred_at],
        )
        .await
        .context("storing the access summary")?;
    if stored == 0 {
        tracing::info!(user_id = %data.user_id, "kept a newer access summary (or the user is gone)");
    }
    Ok(())
}

impl AuthEvents {
    /// Creates the invited identity (no password, email not yet verified) and mails it a
    /// link to set its password. An identity that exists already is left alone, except that
    /// an invited one that never set its password gets a fresh link.
    #[tracing::instrument(skip_all, fields(event_id = %event.id))]
    async fn invite(&self, tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
        let data: UserInvited = event.data_as()?;
        let email = Email::parse(&data.email)
            .map_err(|m| anyhow::anyhow!("user.invited {}: the email {m}", event.id))?;
        if is_erased(tx, data.user_id).await? {
            tracing::info!(user_id = %data.user_id, "the user was deleted; ignoring the invitation");
            return Ok(());
        }
        let created = tx
            .execute(
                "INSERT INTO auth.users (id, email, status, status_changed_at) VALUES ($1, $2, 'ACTIVE', $3)
                 ON CONFLICT DO NOTHING",
                &[&data.user_id, &email.as_str(), &event.occurred_at],
            )
            .await
            .context("creating the invited identity")?;
        if created == 0 {
            let existing = tx
                .query_opt(
                    "SELECT email = $2 AND password_hash IS NULL AND status = 'ACTIVE'
                     FROM auth.users WHERE id = $1",
                    &[&data.user_id, &email.as_str()],
                )
                .await
                .context("looking up the existing identity")?;
            match existing.map(|row| row.get::<_, bool>(0)) {
                None => {
                    tracing::warn!(
                        user_id = %data.user_id,
                        "the invited email belongs to another account; nothing created, nothing sent"
                    );
                    return Ok(());
                }
                Some(false) => {
                    tracing::info!(
                        user_id = %data.user_id,
                        "the identity exists and is set up (or disabled); no invitation sent"
                    );
                    return Ok(());
                }
                Some(true) => {
                    tracing::info!(user_id = %data.user_id, "invited again; mailing a fresh link");
                }
            }
        }
        let token = tokens::generate();
        tx.execute(
            "INSERT INTO auth.password_reset_tokens (id, user_id, token_hash, expires_at, purpose)
             VALUES ($1, $2, $3, now() + make_interval(secs => $4), 'invitation')",
            &[
                &Uuid::now_v7(),
                &data.user_id,
                &tokens::hash(&token),
                &self.invitation_ttl.as_secs_f64(),
            ],
        )
        .await
        .context("storing the invitation token")?;
        let inviter: Option<String> = match data.invited_by {
            Some(id) => tx
                .query_opt("SELECT email FROM auth.users WHERE id = $1", &[&id])
                .await
                .context("looking up the inviter")?
                .map(|row| row.get(0)),
            None => None,
        };
        let invitation = Invitation {
            to: email.as_str(),
            first_name: data.first_name.trim(),
            invited_by: inviter.as_deref(),
        };
        // The last step: the event's claim commits only once the mail has gone.
        self.mailer
            .send_invitation(&invitation, &token, self.invitation_ttl)
            .await
    }
}

/// Sets the status the users service decided, unless a newer decision is already applied;
/// an account that may no longer sign in loses every session at once.
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
async fn update_status(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: UserUpdated = event.data_as()?;
    let Some(status) = data.status else {
        return Ok(());
    };
    let applied = tx
        .execute(
            "UPDATE auth.users SET status = $2, status_changed_at = $3, updated_at = now()
             WHERE id = $1 AND (status_changed_at IS NULL OR status_changed_at < $3)",
            &[&data.user_id, &status.as_str(), &event.occurred_at],
        )
        .await
        .context("setting the status")?;
    if applied == 0 {
        tracing::info!(user_id = %data.user_id, "kept a newer status (or the user is unknown)");
        return Ok(());
    }
    if !status.can_sign_in() {
        let revoked = revoke_all(tx, data.user_id, None, "account_disabled")
            .await
            .context("ending the sessions of a disabled account")?;
        tracing::info!(user_id = %data.user_id, status = status.as_str(), revoked, "account disabled");
    }
    Ok(())
}

/// Erases the identity: the account, its sessions and refresh tokens, its reset, invitation
/// and verification tokens, its access summary (all cascade from `auth.users`), and the
/// outbox's events about it, which carry its address, IPs and devices. Only the bare id is
/// kept, so that a late invitation cannot bring it back.
#[tracing::instrument(skip_all, fields(event_id = %event.id))]
async fn erase(tx: &Transaction<'_>, event: &Envelope) -> anyhow::Result<()> {
    let data: UserDeleted = event.data_as()?;
    tx.execute(
        "INSERT INTO auth.erased_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&data.user_id],
    )
    .await
    .context("recording the erasure")?;
    let email: Option<String> = tx
        .query_opt(
            "DELETE FROM auth.users WHERE id = $1 RETURNING email",
            &[&data.user_id],
        )
        .await
        .context("deleting the identity")?
        .map(|row| row.get(0));
    let events = tx
        .execute(
            "DELETE FROM auth.outbox
             WHERE actor_id = $1 OR data->>'user_id' = ($1::uuid)::text
                OR ($2::text IS NOT NULL AND data->>'email' = $2::text)",
            &[&data.user_id, &email],
        )
        .await
        .context("erasing the outbox's events about the user")?;
    tracing::info!(user_id = %data.user_id, existed = email.is_some(), events, "user erased");
    Ok(())
}

async fn is_erased(tx: &Transaction<'_>, user_id: Uuid) -> anyhow::Result<bool> {
    Ok(tx
        .query_opt(
            "SELECT 1 FROM auth.erased_users WHERE user_id = $1",
            &[&user_id],
        )
        .await
        .context("looking for an erasure")?
        .is_some())
}
