//! Operator actions outside the API: the first Admin of a fresh installation (nobody holds
//! users.manage yet to hand the role out), run by the devstack (`LECTERN_ADMIN_EMAIL`) and by
//! the migrate function (`{"grant_admin": "ops@example.com"}`).

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use crate::{access::AccessChange, state::AppState};

/// Gives the account with this email the system role `role` (directly), and publishes the new
/// access summary. The account must have a profile (sign up first). Answers its id.
pub async fn grant_role(state: &AppState, email: &str, role: &str) -> anyhow::Result<Uuid> {
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, None).await?;
    let user_id: Uuid = tx
        .query_opt(
            "SELECT id FROM users.users WHERE email = $1",
            &[&email.trim().to_lowercase()],
        )
        .await?
        .with_context(|| format!("no profile has the email {email}; sign up first"))?
        .get(0);
    let role_id: Uuid = tx
        .query_opt(
            "SELECT id FROM users.roles WHERE lower(name) = lower($1)",
            &[&role],
        )
        .await?
        .with_context(|| format!("there is no role {role}"))?
        .get(0);
    let added = tx
        .execute(
            "INSERT INTO users.user_roles (id, user_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&Uuid::now_v7(), &user_id, &role_id],
        )
        .await?;
    if added == 1 {
        change.emit(
            "role.assigned",
            json!({ "user_id": user_id, "role_id": role_id, "role_name": role, "assigned_by": null }),
        );
    }
    change.affects([user_id]);
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(user_id)
}
