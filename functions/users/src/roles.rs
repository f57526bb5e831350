//! `/api/v1/roles*`: named sets of permissions. The four system roles (Admin, Editor,
//! Moderator, Viewer) keep their names and cannot be deleted, and Admin keeps every
//! permission; custom roles are the installation's own. Whatever a role gains or loses is
//! within the caller's own grants, and reaches its holders' tokens through `AccessChange`.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    error::unique_violation,
    events::Envelope,
    extract::{AuthUser, Json, List, PageQuery, Path, Query, nullable},
    validate::{self, Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::{self, AccessChange, Named},
    permissions::{self, Permission},
    profiles::{dedup, ensure_exist, like_pattern},
    state::{AppState, EVENT_SOURCE},
};

/// A role as lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// Admin, Editor, Moderator and Viewer: they keep their names and cannot be deleted.
    pub is_system: bool,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// How many users hold the role directly.
    pub member_count: i64,
}

const ROLE_COLUMNS: &str = "r.id, r.name, r.description, r.is_system, r.created_at, r.updated_at, \
     (SELECT count(*) FROM users.user_roles ur WHERE ur.role_id = r.id)";

fn role(row: &tokio_postgres::Row) -> Role {
    Role {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        is_system: row.get(3),
        created_at: row.get(4),
        updated_at: row.get(5),
        member_count: row.get(6),
    }
}

async fn load_role(db: &impl GenericClient, id: Uuid) -> ApiResult<Role> {
    let sql = format!("SELECT {ROLE_COLUMNS} FROM users.roles r WHERE r.id = $1");
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| role(&r))
        .ok_or(ApiError::NotFound)
}

/// The role row, locked for the rest of the transaction; 404 when absent.
async fn lock_role(tx: &Transaction<'_>, id: Uuid) -> ApiResult<Role> {
    let sql = format!("SELECT {ROLE_COLUMNS} FROM users.roles r WHERE r.id = $1 FOR UPDATE");
    tx.query_opt(&tx.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| role(&r))
        .ok_or(ApiError::NotFound)
}

fn is_admin(role: &Role) -> bool {
    role.is_system && role.name == "Admin"
}

/// A role with what it grants.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDetail {
    #[serde(flatten)]
    pub role: Role,
    pub permissions: Vec<Permission>,
    /// What the permissions grant together: module → letters of `vcedpm`.
    #[schema(value_type = BTreeMap<String, String>)]
    pub grants: BTreeMap<String, String>,
}

async fn role_detail(db: &impl GenericClient, id: Uuid) -> ApiResult<RoleDetail> {
    let role = load_role(db, id).await?;
    let permissions = permissions::of_role(db, id).await?;
    Ok(RoleDetail {
        grants: permissions::grants_summary(&permissions),
        role,
        permissions,
    })
}

/// `true` or `false`; 422 naming `field` otherwise.
pub(crate) fn parse_bool(v: &mut Validator, field: &str, raw: Option<&str>) -> Option<bool> {
    match raw.map(str::trim) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            v.add(field, "must be true or false");
            None
        }
    }
}

/// Filters of `GET /roles`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoleFilter {
    /// Text that appears in the name.
    pub q: Option<String>,
    /// `true` for the system roles only, `false` for custom roles only.
    pub is_system: Option<String>,
}

/// Keyset position in a list ordered by `lower(name), id`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct NameCursor {
    pub name: String,
    pub id: Uuid,
}

/// [`List::paginate`] over rows that carry their sort key as PostgreSQL computed it (its
/// `lower()` and Rust's `to_lowercase()` disagree on a few letters); the key never reaches the
/// client.
pub(crate) fn paginate_keyed<T, K, C: Serialize>(
    rows: Vec<(T, K)>,
    limit: i64,
    cursor: impl Fn(&T, &K) -> C,
) -> List<T> {
    let page = List::paginate(rows, limit, |(item, key)| cursor(item, key));
    List {
        data: page.data.into_iter().map(|(item, _)| item).collect(),
        next_cursor: page.next_cursor,
    }
}

/// Lists roles by name; keyset-paginated.
#[utoipa::path(
    get, path = "/api/v1/roles", tag = "roles",
    params(PageQuery, RoleFilter),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of roles (needs roles.view)", body = List<Role>))
)]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(page): Query<PageQuery>,
    Query(filter): Query<RoleFilter>,
) -> ApiResult<Json<List<Role>>> {
    caller.require(Module::Roles, Action::View)?;
    let mut v = Validator::new();
    let q = filter
        .q
        .as_deref()
        .and_then(|s| v.check("q", short_text(s, 100)))
        .map(|q| like_pattern(&q));
    let is_system = parse_bool(&mut v, "is_system", filter.is_system.as_deref());
    v.finish()?;
    let page = page.parse::<NameCursor>()?;
    let (after_name, after_id) = match &page.after {
        Some(c) => (Some(c.name.as_str()), Some(c.id)),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {ROLE_COLUMNS}, lower(r.name) FROM users.roles r
         WHERE ($1::text IS NULL OR lower(r.name) LIKE $1)
           AND ($2::boolean IS NULL OR r.is_system = $2)
           AND ($4::uuid IS NULL OR (lower(r.name), r.id) > ($3, $4))
         ORDER BY lower(r.name), r.id
         LIMIT $5"
    );
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(&sql).await?,
            &[&q, &is_system, &after_name, &after_id, &(page.limit + 1)],
        )
        .await?;
    let data = rows.iter().map(|r| (role(r), r.get(7))).collect();
    Ok(Json(paginate_keyed(
        data,
        page.limit,
        |r: &Role, name: &String| NameCursor {
            name: name.clone(),
            id: r.id,
        },
    )))
}

/// One role with its permissions and what they grant.
#[utoipa::path(
    get, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role (needs roles.view)", body = RoleDetail),
        (status = 404, description = "No such role"),
    )
)]
pub async fn get_role(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RoleDetail>> {
    caller.require(Module::Roles, Action::View)?;
    let db = state.pool.get().await?;
    Ok(Json(role_detail(&db, id).await?))
}

/// A new custom role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    pub name: String,
    pub description: Option<String>,
    /// Permissions to start with; each must be within the caller's own grants.
    pub permission_ids: Option<Vec<Uuid>>,
}

const MAX_PERMISSION_IDS: usize = 500;

fn role_name_conflict(err: tokio_postgres::Error, name: &str) -> ApiError {
    if unique_violation(&err) == Some("roles_name_key") {
        ApiError::Conflict(format!("A role named {name} exists."))
    } else {
        err.into()
    }
}

/// Creates a custom role (needs roles.create; its permissions must be within the caller's).
#[utoipa::path(
    post, path = "/api/v1/roles", tag = "roles",
    request_body = NewRole,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the role", body = RoleDetail,
         headers(("Location" = String, description = "The new role's URL"))),
        (status = 409, description = "A role with this name exists"),
    )
)]
pub async fn create_role(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<NewRole>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Roles, Action::Create)?;
    let mut v = Validator::new();
    let name = v.check("name", short_text(&body.name, 100));
    let description = body
        .description
        .as_deref()
        .and_then(|d| v.check("description", validate::long_text(d, 1000)))
        .flatten();
    let permission_ids = dedup(body.permission_ids.as_deref().unwrap_or_default());
    if permission_ids.len() > MAX_PERMISSION_IDS {
        v.add(
            "permission_ids",
            format!("must hold at most {MAX_PERMISSION_IDS} ids"),
        );
    }
    v.finish()?;
    let name = name.expect("validated");

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    ensure_exist(&tx, "permissions", "permission_ids", &permission_ids).await?;
    let given = access::grants_of_permissions(&tx, &permission_ids).await?;
    access::ensure_within(&caller.claims.perms, &given, &format!("the role {name}"))?;
    let id = Uuid::now_v7();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO users.roles (id, name, description, is_system) VALUES ($1, $2, $3, false)",
        )
        .await?,
        &[&id, &name, &description],
    )
    .await
    .map_err(|e| role_name_conflict(e, &name))?;
    add_permissions(&tx, id, &permission_ids).await?;
    let created = role_detail(&tx, id).await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "role.created",
        Some(caller.id()),
        json!({
            "role_id": id,
            "name": created.role.name,
            "description": created.role.description,
            "permission_ids": permission_ids,
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/roles/{id}"))],
        Json(created),
    ))
}

async fn add_permissions(
    tx: &Transaction<'_>,
    role_id: Uuid,
    permission_ids: &[Uuid],
) -> ApiResult<()> {
    if permission_ids.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = permission_ids.iter().map(|_| Uuid::now_v7()).collect();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO users.role_permissions (id, role_id, permission_id)
             SELECT x.id, $1, x.permission_id FROM unnest($2::uuid[], $3::uuid[]) AS x (id, permission_id)
             ON CONFLICT (role_id, permission_id) DO NOTHING",
        )
        .await?,
        &[&role_id, &ids, &permission_ids],
    )
    .await?;
    Ok(())
}

/// A role update: only the fields present change; `null` clears the description.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleUpdate {
    /// System roles keep their names.
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Renames a role or changes its description (needs roles.edit).
#[utoipa::path(
    put, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id")),
    request_body = RoleUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated role", body = RoleDetail),
        (status = 404, description = "No such role"),
        (status = 409, description = "A system role keeps its name, or the name is taken"),
    )
)]
pub async fn update_role(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<RoleUpdate>,
) -> ApiResult<Json<RoleDetail>> {
    caller.require(Module::Roles, Action::Edit)?;
    let mut v = Validator::new();
    let name = body
        .name
        .as_deref()
        .and_then(|n| v.check("name", short_text(n, 100)));
    let description = v
        .change("description", body.description, |d| {
            validate::long_text(&d, 1000)
        })
        .map(Option::flatten);
    v.finish()?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let before = lock_role(&tx, id).await?;
    let renamed = name.as_ref().is_some_and(|n| *n != before.name);
    if renamed && before.is_system {
        return Err(ApiError::Conflict(format!(
            "{} is a system role and keeps its name; only its description may change.",
            before.name
        )));
    }
    let new_name = name.clone().unwrap_or_else(|| before.name.clone());
    tx.execute(
        &tx.prepare_cached(
            "UPDATE users.roles SET name = $2, description = CASE WHEN $3 THEN $4 ELSE description END,
                    updated_at = now()
             WHERE id = $1",
        )
        .await?,
        &[
            &id,
            &new_name,
            &description.is_some(),
            &description.clone().flatten(),
        ],
    )
    .await
    .map_err(|e| role_name_conflict(e, &new_name))?;
    let after = role_detail(&tx, id).await?;
    let mut changes = Vec::new();
    if renamed {
        changes.push("name");
        // Tokens carry role names: every holder's access summary changes.
        change.affects(access::holders_of(&tx, &[id]).await?);
    }
    if after.role.description != before.description {
        changes.push("description");
    }
    if !changes.is_empty() {
        change.emit(
            "role.updated",
            json!({
                "role_id": id,
                "name": after.role.name,
                "description": after.role.description,
                "changes": changes,
            }),
        );
    }
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(after))
}

/// How `DELETE /roles/{id}` treats a role someone still holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteRole {
    /// `true` removes the role from every user and group holding it; otherwise a held role is
    /// a 409.
    pub force: Option<String>,
}

/// Deletes a custom role (needs roles.delete).
#[utoipa::path(
    delete, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id"), DeleteRole),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such role"),
        (status = 409, description = "A system role, or one still held (without force=true)"),
    )
)]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(options): Query<DeleteRole>,
) -> ApiResult<StatusCode> {
    caller.require(Module::Roles, Action::Delete)?;
    let mut v = Validator::new();
    let force = parse_bool(&mut v, "force", options.force.as_deref()).unwrap_or(false);
    v.finish()?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let role = lock_role(&tx, id).await?;
    if role.is_system {
        return Err(ApiError::Conflict(format!(
            "{} is a system role and cannot be deleted.",
            role.name
        )));
    }
    let user_ids: Vec<Uuid> = column(
        &tx,
        "SELECT user_id FROM users.user_roles WHERE role_id = $1 ORDER BY user_id",
        id,
    )
    .await?;
    let group_ids: Vec<Uuid> = column(
        &tx,
        "SELECT group_id FROM users.group_roles WHERE role_id = $1 ORDER BY group_id",
        id,
    )
    .await?;
    if !(user_ids.is_empty() && group_ids.is_empty()) {
        if !force {
            return Err(ApiError::Conflict(format!(
                "The role {} is held by {} users and {} groups; pass ?force=true to take it from them and delete it.",
                role.name,
                user_ids.len(),
                group_ids.len()
            )));
        }
        let taken = access::grants_of_roles(&tx, &[id]).await?;
        access::ensure_within(
            &caller.claims.perms,
            &taken,
            &format!("the role {}", role.name),
        )?;
        change.affects(access::holders_of(&tx, &[id]).await?);
    }
    tx.execute(
        &tx.prepare_cached("DELETE FROM users.roles WHERE id = $1")
            .await?,
        &[&id],
    )
    .await?;
    change.emit(
        "role.deleted",
        json!({ "role_id": id, "name": role.name, "user_ids": user_ids, "group_ids": group_ids }),
    );
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn column(db: &impl GenericClient, sql: &str, id: Uuid) -> ApiResult<Vec<Uuid>> {
    Ok(db
        .query(&db.prepare_cached(sql).await?, &[&id])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// A role's permissions, by module and name.
#[utoipa::path(
    get, path = "/api/v1/roles/{id}/permissions", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role's permissions (needs roles.view)", body = List<Permission>),
        (status = 404, description = "No such role"),
    )
)]
pub async fn get_role_permissions(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<List<Permission>>> {
    caller.require(Module::Roles, Action::View)?;
    let db = state.pool.get().await?;
    load_role(&db, id).await?;
    Ok(Json(List {
        data: permissions::of_role(&db, id).await?,
        next_cursor: None,
    }))
}

/// The complete set of a role's permissions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionIds {
    pub permission_ids: Vec<Uuid>,
}

/// Replaces a role's permissions (needs roles.manage, and every permission added or removed
/// must be within the caller's own grants). Admin's permissions never change.
#[utoipa::path(
    put, path = "/api/v1/roles/{id}/permissions", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id")),
    request_body = PermissionIds,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The role's permissions now", body = List<Permission>),
        (status = 404, description = "No such role"),
        (status = 409, description = "The Admin role keeps every permission"),
    )
)]
pub async fn put_role_permissions(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<PermissionIds>,
) -> ApiResult<Json<List<Permission>>> {
    caller.require(Module::Roles, Action::Manage)?;
    let wanted = dedup(&body.permission_ids);
    if wanted.len() > MAX_PERMISSION_IDS {
        return Err(ApiError::validation(
            "permission_ids",
            format!("must hold at most {MAX_PERMISSION_IDS} ids"),
        ));
    }
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let role = lock_role(&tx, id).await?;
    if is_admin(&role) {
        return Err(ApiError::Conflict(
            "The Admin role holds every permission; its permissions cannot be changed.".into(),
        ));
    }
    ensure_exist(&tx, "permissions", "permission_ids", &wanted).await?;
    let current = column(
        &tx,
        "SELECT permission_id FROM users.role_permissions WHERE role_id = $1",
        id,
    )
    .await?;
    let added: Vec<Uuid> = wanted
        .iter()
        .filter(|p| !current.contains(p))
        .copied()
        .collect();
    let removed: Vec<Uuid> = current
        .iter()
        .filter(|p| !wanted.contains(p))
        .copied()
        .collect();
    let touched: Vec<Uuid> = added.iter().chain(&removed).copied().collect();
    let given = access::grants_of_permissions(&tx, &touched).await?;
    access::ensure_within(&caller.claims.perms, &given, "these permissions")?;
    if !touched.is_empty() {
        add_permissions(&tx, id, &added).await?;
        tx.execute(
            &tx.prepare_cached(
                "DELETE FROM users.role_permissions WHERE role_id = $1 AND permission_id = ANY ($2)",
            )
            .await?,
            &[&id, &removed],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached("UPDATE users.roles SET updated_at = now() WHERE id = $1")
                .await?,
            &[&id],
        )
        .await?;
        change.affects(access::holders_of(&tx, &[id]).await?);
        change.emit(
            "role.permissions_changed",
            json!({
                "role_id": id,
                "role_name": role.name,
                "added": added,
                "removed": removed,
                "permission_ids": wanted,
            }),
        );
    }
    let data = permissions::of_role(&tx, id).await?;
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// A user holding a role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleMember {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub status: String,
    /// When the role was assigned directly; for a role held only through a group, when the
    /// user joined that group.
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub assigned_at: DateTime<Utc>,
    /// `null` when the role is held directly; otherwise the group (the user is a member of)
    /// it comes through.
    pub via_group: Option<Named>,
}

/// Which holders `GET /roles/{id}/members` lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoleMemberFilter {
    /// `inherited` also lists users holding the role through a group or an ancestor group.
    pub include: Option<String>,
}

/// Keyset position in a list of people ordered by `lower(last_name), lower(first_name), id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemberCursor {
    pub last: String,
    pub first: String,
    pub id: Uuid,
}

impl MemberCursor {
    /// The key from a row's columns `last`, `first` (lower-cased by PostgreSQL) and `id`.
    pub(crate) fn of(row: &tokio_postgres::Row, last: usize, first: usize, id: usize) -> Self {
        Self {
            last: row.get(last),
            first: row.get(first),
            id: row.get(id),
        }
    }

    /// The keyset parameters: `(last, first, id)`, all `None` on the first page.
    pub(crate) fn params(after: &Option<Self>) -> (Option<&str>, Option<&str>, Option<Uuid>) {
        match after {
            Some(c) => (Some(c.last.as_str()), Some(c.first.as_str()), Some(c.id)),
            None => (None, None, None),
        }
    }
}

/// One row per user: the direct assignment when there is one, otherwise the first group (by
/// name) through which the role comes.
const ROLE_MEMBERS_SQL: &str = "
WITH RECURSIVE down AS (
    SELECT gr.group_id AS id FROM users.group_roles gr WHERE gr.role_id = $1 AND $2::boolean
  UNION
    SELECT g.id FROM users.groups g JOIN down ON g.parent_id = down.id
), holding AS (
    SELECT ur.user_id, ur.created_at AS since, NULL::uuid AS group_id, NULL::text AS group_name
    FROM users.user_roles ur WHERE ur.role_id = $1
  UNION ALL
    SELECT ug.user_id, ug.joined_at, g.id, g.name
    FROM users.user_groups ug JOIN down ON down.id = ug.group_id JOIN users.groups g ON g.id = ug.group_id
), one AS (
    SELECT DISTINCT ON (user_id) user_id, since, group_id, group_name FROM holding
    ORDER BY user_id, group_id IS NOT NULL, lower(group_name), group_id
)
SELECT u.id, u.first_name, u.last_name, u.email, u.status, one.since, one.group_id, one.group_name,
       lower(u.last_name), lower(u.first_name)
FROM one JOIN users.users u ON u.id = one.user_id
WHERE ($5::uuid IS NULL OR (lower(u.last_name), lower(u.first_name), u.id) > ($3, $4, $5))
ORDER BY lower(u.last_name), lower(u.first_name), u.id
LIMIT $6";

/// The users holding a role directly (and with `include=inherited`, through groups);
/// keyset-paginated by name.
#[utoipa::path(
    get, path = "/api/v1/roles/{id}/members", tag = "roles",
    params(("id" = Uuid, Path, description = "The role id"), PageQuery, RoleMemberFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of holders (needs roles.view)", body = List<RoleMember>),
        (status = 404, description = "No such role"),
    )
)]
pub async fn list_role_members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
    Query(filter): Query<RoleMemberFilter>,
) -> ApiResult<Json<List<RoleMember>>> {
    caller.require(Module::Roles, Action::View)?;
    let inherited = match filter.include.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("inherited") => true,
        Some(_) => return Err(ApiError::validation("include", "must be inherited")),
    };
    let page = page.parse::<MemberCursor>()?;
    let db = state.pool.get().await?;
    load_role(&db, id).await?;
    let (last, first, after) = MemberCursor::params(&page.after);
    let rows = db
        .query(
            &db.prepare_cached(ROLE_MEMBERS_SQL).await?,
            &[&id, &inherited, &last, &first, &after, &(page.limit + 1)],
        )
        .await?;
    let data = rows
        .iter()
        .map(|r| {
            let member = RoleMember {
                id: r.get(0),
                first_name: r.get(1),
                last_name: r.get(2),
                email: r.get(3),
                status: r.get(4),
                assigned_at: r.get(5),
                via_group: r
                    .get::<_, Option<Uuid>>(6)
                    .map(|id| Named { id, name: r.get(7) }),
            };
            (member, MemberCursor::of(r, 8, 9, 0))
        })
        .collect();
    Ok(Json(paginate_keyed(
        data,
        page.limit,
        |_, key: &MemberCursor| key.clone(),
    )))
}
