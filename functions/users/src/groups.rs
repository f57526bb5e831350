//! `/api/v1/groups*`: teams and departments, nested at most `MAX_GROUP_DEPTH` levels deep. A
//! member holds the roles of their group and of every ancestor, so moving or deleting a group,
//! changing its roles or its members changes access: each of those goes through
//! `AccessChange`, stays within the caller's own grants, and never leaves no active Admin.

use std::collections::BTreeSet;

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
    extract::{AuthUser, Json, List, Page, PageQuery, Path, Query, nullable},
    validate::{self, Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::{self, AccessChange, MAX_GROUP_DEPTH, Named},
    profiles::{RoleIds, dedup, ensure_exist, like_pattern},
    roles::{MemberCursor, NameCursor, paginate_keyed},
    state::AppState,
};

/// A group as lists show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `null` for a top-level group.
    pub parent_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// Direct members.
    pub member_count: i64,
    /// Direct subgroups.
    pub child_count: i64,
}

const GROUP_COLUMNS: &str = "g.id, g.name, g.description, g.parent_id, g.created_by, g.created_at, \
     g.updated_at, (SELECT count(*) FROM users.user_groups ug WHERE ug.group_id = g.id), \
     (SELECT count(*) FROM users.groups c WHERE c.parent_id = g.id)";

fn group(row: &tokio_postgres::Row) -> Group {
    Group {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        parent_id: row.get(3),
        created_by: row.get(4),
        created_at: row.get(5),
        updated_at: row.get(6),
        member_count: row.get(7),
        child_count: row.get(8),
    }
}

async fn load_group(db: &impl GenericClient, id: Uuid) -> ApiResult<Group> {
    let sql = format!("SELECT {GROUP_COLUMNS} FROM users.groups g WHERE g.id = $1");
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| group(&r))
        .ok_or(ApiError::NotFound)
}

/// The group, its row locked for the rest of the transaction; 404 when absent.
async fn lock_group(tx: &Transaction<'_>, id: Uuid) -> ApiResult<Group> {
    tx.query_opt(
        &tx.prepare_cached("SELECT 1 FROM users.groups WHERE id = $1 FOR UPDATE")
            .await?,
        &[&id],
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    load_group(tx, id).await
}

/// A group with its place in the tree and its own roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupDetail {
    #[serde(flatten)]
    pub group: Group,
    /// The ancestors, from the top-level group down to the parent.
    pub path: Vec<Named>,
    /// The direct subgroups, by name.
    pub children: Vec<Named>,
    /// The roles the group itself holds (its members also hold the ancestors' roles).
    pub roles: Vec<Named>,
}

const PATH_SQL: &str = "
WITH RECURSIVE up AS (
    SELECT parent_id AS id, 1 AS depth FROM users.groups WHERE id = $1 AND parent_id IS NOT NULL
  UNION ALL
    SELECT g.parent_id, up.depth + 1 FROM users.groups g JOIN up ON g.id = up.id
    WHERE g.parent_id IS NOT NULL AND up.depth < 64
)
SELECT g.id, g.name FROM up JOIN users.groups g ON g.id = up.id ORDER BY up.depth DESC";

const CHILDREN_SQL: &str =
    "SELECT id, name FROM users.groups WHERE parent_id = $1 ORDER BY lower(name), id";

const OWN_ROLES_SQL: &str =
    "SELECT r.id, r.name FROM users.group_roles gr JOIN users.roles r ON r.id = gr.role_id
     WHERE gr.group_id = $1 ORDER BY lower(r.name), r.id";

async fn named(db: &impl GenericClient, sql: &str, id: Uuid) -> ApiResult<Vec<Named>> {
    Ok(db
        .query(&db.prepare_cached(sql).await?, &[&id])
        .await?
        .iter()
        .map(|r| Named {
            id: r.get(0),
            name: r.get(1),
        })
        .collect())
}

async fn group_detail(db: &impl GenericClient, id: Uuid) -> ApiResult<GroupDetail> {
    let group = load_group(db, id).await?;
    Ok(GroupDetail {
        group,
        path: named(db, PATH_SQL, id).await?,
        children: named(db, CHILDREN_SQL, id).await?,
        roles: named(db, OWN_ROLES_SQL, id).await?,
    })
}

/// How deep `id` sits (1 for a top-level group), or `None` if there is no such group.
async fn depth_of(db: &impl GenericClient, id: Uuid) -> ApiResult<Option<i32>> {
    let row = db
        .query_one(
            &db.prepare_cached(
                "WITH RECURSIVE up AS (
                     SELECT id, parent_id, 1 AS depth FROM users.groups WHERE id = $1
                   UNION ALL
                     SELECT g.id, g.parent_id, up.depth + 1 FROM users.groups g JOIN up ON g.id = up.parent_id
                     WHERE up.depth < 64
                 )
                 SELECT max(depth) FROM up",
            )
            .await?,
            &[&id],
        )
        .await?;
    Ok(row.get(0))
}

/// A group and everything below it.
struct Subtree {
    ids: Vec<Uuid>,
    /// Levels from the group down to its deepest descendant: 1 for a group without subgroups.
    height: i32,
}

async fn subtree(db: &impl GenericClient, id: Uuid) -> ApiResult<Subtree> {
    let rows = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE down AS (
                     SELECT id, 1 AS level FROM users.groups WHERE id = $1
                   UNION ALL
                     SELECT g.id, down.level + 1 FROM users.groups g JOIN down ON g.parent_id = down.id
                     WHERE down.level < 64
                 )
                 SELECT id, level FROM down",
            )
            .await?,
            &[&id],
        )
        .await?;
    Ok(Subtree {
        ids: rows.iter().map(|r| r.get(0)).collect(),
        height: rows.iter().map(|r| r.get::<_, i32>(1)).max().unwrap_or(0),
    })
}

fn too_deep() -> ApiError {
    ApiError::validation(
        "parent_id",
        format!("would nest groups more than {MAX_GROUP_DEPTH} levels deep"),
    )
}

fn missing_parent() -> ApiError {
    ApiError::validation("parent_id", "names a group that does not exist")
}

fn group_name_conflict(err: tokio_postgres::Error, name: &str) -> ApiError {
    if unique_violation(&err) == Some("groups_name_key") {
        ApiError::Conflict(format!(
            "A group named {name} exists at that level; sibling groups have distinct names."
        ))
    } else {
        err.into()
    }
}

/// Filters of `GET /groups`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupFilter {
    /// The subgroups of this group id, or `root` for the top-level groups.
    pub parent_id: Option<String>,
    /// Text that appears in the name.
    pub q: Option<String>,
}

/// Lists groups by name; keyset-paginated.
#[utoipa::path(
    get, path = "/api/v1/groups", tag = "groups",
    params(PageQuery, GroupFilter),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of groups (needs groups.view)", body = List<Group>))
)]
pub async fn list_groups(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(page): Query<PageQuery>,
    Query(filter): Query<GroupFilter>,
) -> ApiResult<Json<List<Group>>> {
    caller.require(Module::Groups, Action::View)?;
    let mut v = Validator::new();
    let (top_level, parent) = match filter.parent_id.as_deref().map(str::trim) {
        None | Some("") => (false, None),
        Some("root") => (true, None),
        Some(raw) => match raw.parse::<Uuid>() {
            Ok(id) => (false, Some(id)),
            Err(_) => {
                v.add("parent_id", "must be a group id or root");
                (false, None)
            }
        },
    };
    let q = filter
        .q
        .as_deref()
        .and_then(|s| v.check("q", short_text(s, 100)))
        .map(|q| like_pattern(&q));
    v.finish()?;
    let page = page.parse::<NameCursor>()?;
    let (after_name, after_id) = match &page.after {
        Some(c) => (Some(c.name.as_str()), Some(c.id)),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {GROUP_COLUMNS}, lower(g.name) FROM users.groups g
         WHERE (NOT $1 OR g.parent_id IS NULL)
           AND ($2::uuid IS NULL OR g.parent_id = $2)
           AND ($3::text IS NULL OR lower(g.name) LIKE $3)
           AND ($5::uuid IS NULL OR (lower(g.name), g.id) > ($4, $5))
         ORDER BY lower(g.name), g.id
         LIMIT $6"
    );
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(&sql).await?,
            &[
                &top_level,
                &parent,
                &q,
                &after_name,
                &after_id,
                &(page.limit + 1),
            ],
        )
        .await?;
    let data = rows.iter().map(|r| (group(r), r.get(9))).collect();
    Ok(Json(paginate_keyed(
        data,
        page.limit,
        |g: &Group, name: &String| NameCursor {
            name: name.clone(),
            id: g.id,
        },
    )))
}

/// One group with its ancestors, subgroups and roles.
#[utoipa::path(
    get, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group (needs groups.view)", body = GroupDetail),
        (status = 404, description = "No such group"),
    )
)]
pub async fn get_group(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GroupDetail>> {
    caller.require(Module::Groups, Action::View)?;
    let db = state.pool.get().await?;
    Ok(Json(group_detail(&db, id).await?))
}

/// A new group, at the top level or under `parent_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    pub description: Option<String>,
    pub parent_id: Option<Uuid>,
}

/// Creates a group (needs groups.create).
#[utoipa::path(
    post, path = "/api/v1/groups", tag = "groups",
    request_body = NewGroup,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the group", body = GroupDetail,
         headers(("Location" = String, description = "The new group's URL"))),
        (status = 409, description = "A sibling group has this name"),
    )
)]
pub async fn create_group(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<NewGroup>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Groups, Action::Create)?;
    let mut v = Validator::new();
    let name = v.check("name", short_text(&body.name, 100));
    let description = body
        .description
        .as_deref()
        .and_then(|d| v.check("description", validate::long_text(d, 1000)))
        .flatten();
    v.finish()?;
    let name = name.expect("validated");

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    // Nobody joins a new group, but the tree must not change under the depth check.
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    if let Some(parent) = body.parent_id {
        let depth = depth_of(&tx, parent).await?.ok_or_else(missing_parent)?;
        if depth + 1 > MAX_GROUP_DEPTH {
            return Err(too_deep());
        }
    }
    let id = Uuid::now_v7();
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO users.groups (id, name, description, parent_id, created_by)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?,
        &[&id, &name, &description, &body.parent_id, &caller.id()],
    )
    .await
    .map_err(|e| group_name_conflict(e, &name))?;
    let created = group_detail(&tx, id).await?;
    change.emit(
        "group.created",
        json!({
            "group_id": id,
            "name": created.group.name,
            "description": created.group.description,
            "parent_id": created.group.parent_id,
        }),
    );
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/groups/{id}"))],
        Json(created),
    ))
}

/// A group update: only the fields present change. `parent_id: null` moves the group to the
/// top level; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_id: Option<Option<Uuid>>,
}

/// The roles members of a group under `parent` inherit from it and its ancestors.
async fn roles_from_parent(
    db: &impl GenericClient,
    parent: Option<Uuid>,
) -> ApiResult<BTreeSet<Uuid>> {
    Ok(match parent {
        Some(parent) => access::roles_through_group(db, parent)
            .await?
            .into_iter()
            .collect(),
        None => BTreeSet::new(),
    })
}

/// Renames, describes or moves a group (needs groups.edit). A move changes what the members
/// of the moved subtree inherit: the roles gained and lost must be within the caller's grants.
#[utoipa::path(
    put, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id")),
    request_body = GroupUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated group", body = GroupDetail),
        (status = 404, description = "No such group"),
        (status = 409, description = "A sibling has this name, or the move would leave no active Admin"),
    )
)]
pub async fn update_group(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<GroupUpdate>,
) -> ApiResult<Json<GroupDetail>> {
    caller.require(Module::Groups, Action::Edit)?;
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
    let before = lock_group(&tx, id).await?;
    let new_parent = body.parent_id.filter(|p| *p != before.parent_id);
    if let Some(new_parent) = new_parent {
        if let Some(parent) = new_parent {
            let depth = depth_of(&tx, parent).await?.ok_or_else(missing_parent)?;
            let moved = subtree(&tx, id).await?;
            if moved.ids.contains(&parent) {
                return Err(ApiError::validation(
                    "parent_id",
                    "would create a cycle: a group cannot move under itself or one of its subgroups",
                ));
            }
            if depth + moved.height > MAX_GROUP_DEPTH {
                return Err(too_deep());
            }
        }
        let old_roles = roles_from_parent(&tx, before.parent_id).await?;
        let new_roles = roles_from_parent(&tx, new_parent).await?;
        let changed: Vec<Uuid> = old_roles
            .symmetric_difference(&new_roles)
            .copied()
            .collect();
        let given = access::grants_of_roles(&tx, &changed).await?;
        access::ensure_within(
            &caller.claims.perms,
            &given,
            &format!(
                "the roles the group {} gains or loses by moving",
                before.name
            ),
        )?;
        change.affects(access::members_below(&tx, &[id]).await?);
    }
    let new_name = name.unwrap_or_else(|| before.name.clone());
    tx.execute(
        &tx.prepare_cached(
            "UPDATE users.groups SET name = $2,
                    description = CASE WHEN $3 THEN $4 ELSE description END,
                    parent_id = CASE WHEN $5 THEN $6 ELSE parent_id END,
                    updated_at = now()
             WHERE id = $1",
        )
        .await?,
        &[
            &id,
            &new_name,
            &description.is_some(),
            &description.clone().flatten(),
            &new_parent.is_some(),
            &new_parent.flatten(),
        ],
    )
    .await
    .map_err(|e| group_name_conflict(e, &new_name))?;
    let after = group_detail(&tx, id).await?;
    let changes: Vec<&str> = [
        ("name", before.name != after.group.name),
        ("description", before.description != after.group.description),
        ("parent_id", before.parent_id != after.group.parent_id),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(field, _)| field)
    .collect();
    if !changes.is_empty() {
        change.emit(
            "group.updated",
            json!({
                "group_id": id,
                "name": after.group.name,
                "description": after.group.description,
                "parent_id": after.group.parent_id,
                "changes": changes,
            }),
        );
    }
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(after))
}

/// What `DELETE /groups/{id}` does with what the group holds.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteGroup {
    /// `reparent`: the subgroups move up to this group's parent; `delete`: the whole subtree
    /// goes. Required when the group has subgroups.
    pub children: Option<String>,
    /// `remove`: the members (of every deleted group) lose the membership. Required when
    /// there are members.
    pub members: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Children {
    Keep,
    Reparent,
    Delete,
}

/// Deletes a group (needs groups.delete); subgroups and members only as the query says.
#[utoipa::path(
    delete, path = "/api/v1/groups/{id}", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id"), DeleteGroup),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such group"),
        (status = 409, description = "Subgroups or members the query does not dispose of, or no active Admin would remain"),
    )
)]
pub async fn delete_group(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(options): Query<DeleteGroup>,
) -> ApiResult<StatusCode> {
    caller.require(Module::Groups, Action::Delete)?;
    let mut v = Validator::new();
    let children = match options.children.as_deref().map(str::trim) {
        None | Some("") => Children::Keep,
        Some("reparent") => Children::Reparent,
        Some("delete") => Children::Delete,
        Some(_) => {
            v.add("children", "must be reparent or delete");
            Children::Keep
        }
    };
    let remove_members = match options.members.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("remove") => true,
        Some(_) => {
            v.add("members", "must be remove");
            false
        }
    };
    v.finish()?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let target = lock_group(&tx, id).await?;
    let deleted: Vec<Uuid> = match children {
        Children::Delete => subtree(&tx, id).await?.ids,
        _ => vec![id],
    };
    let members: Vec<Uuid> = tx
        .query(
            &tx.prepare_cached(
                "SELECT DISTINCT user_id FROM users.user_groups WHERE group_id = ANY ($1) ORDER BY user_id",
            )
            .await?,
            &[&deleted],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut refusals = Vec::new();
    if target.child_count > 0 && children == Children::Keep {
        refusals.push(format!(
            "it has {} subgroups (pass children=reparent to move them up to its parent, or children=delete to delete them too)",
            target.child_count
        ));
    }
    if !members.is_empty() && !remove_members {
        refusals.push(format!(
            "{} users would lose their membership (pass members=remove to allow it)",
            members.len()
        ));
    }
    if !refusals.is_empty() {
        return Err(ApiError::Conflict(format!(
            "The group {} was not deleted: {}.",
            target.name,
            refusals.join("; ")
        )));
    }
    let affected = access::members_below(&tx, &[id]).await?;
    if !affected.is_empty() {
        let roles = access::roles_through_group(&tx, id).await?;
        let taken = access::grants_of_roles(&tx, &roles).await?;
        access::ensure_within(
            &caller.claims.perms,
            &taken,
            &format!("the roles members of {} hold through it", target.name),
        )?;
    }
    change.affects(affected);
    if children == Children::Reparent {
        tx.execute(
            &tx.prepare_cached(
                "UPDATE users.groups SET parent_id = $2, updated_at = now() WHERE parent_id = $1",
            )
            .await?,
            &[&id, &target.parent_id],
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) == Some("groups_name_key") {
                ApiError::Conflict(format!(
                    "A subgroup of {} has the name of a group it would move next to; rename one first.",
                    target.name
                ))
            } else {
                e.into()
            }
        })?;
    }
    tx.execute(
        &tx.prepare_cached("DELETE FROM users.groups WHERE id = ANY ($1)")
            .await?,
        &[&deleted],
    )
    .await?;
    change.emit(
        "group.deleted",
        json!({
            "group_id": id,
            "name": target.name,
            "deleted_group_ids": deleted,
            "children": match children {
                Children::Keep => None,
                Children::Reparent => Some("reparent"),
                Children::Delete => Some("delete"),
            },
            "removed_user_ids": members,
        }),
    );
    for user_id in &members {
        change.emit(
            "user.updated",
            json!({ "user_id": user_id, "changes": ["groups"] }),
        );
    }
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupMember {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub status: String,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub joined_at: DateTime<Utc>,
    /// The group the user is a member of: this one, or with `include=descendants` the
    /// nearest subgroup.
    pub group: Named,
}

/// Which members `GET /groups/{id}/members` lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupMemberFilter {
    /// `descendants` also lists the members of every subgroup, once each.
    pub include: Option<String>,
}

/// One row per user: their membership nearest to the group (itself first).
const GROUP_MEMBERS_SQL: &str = "
WITH RECURSIVE down AS (
    SELECT id, name, 0 AS level FROM users.groups WHERE id = $1
  UNION ALL
    SELECT g.id, g.name, down.level + 1 FROM users.groups g JOIN down ON g.parent_id = down.id
    WHERE $2::boolean AND down.level < 64
), one AS (
    SELECT DISTINCT ON (ug.user_id) ug.user_id, ug.joined_at, down.id AS group_id, down.name AS group_name
    FROM users.user_groups ug JOIN down ON down.id = ug.group_id
    ORDER BY ug.user_id, down.level, lower(down.name), down.id
)
SELECT u.id, u.first_name, u.last_name, u.email, u.status, one.joined_at, one.group_id, one.group_name,
       lower(u.last_name), lower(u.first_name)
FROM one JOIN users.users u ON u.id = one.user_id
WHERE ($5::uuid IS NULL OR (lower(u.last_name), lower(u.first_name), u.id) > ($3, $4, $5))
ORDER BY lower(u.last_name), lower(u.first_name), u.id
LIMIT $6";

async fn group_members(
    db: &impl GenericClient,
    id: Uuid,
    descendants: bool,
    page: &Page<MemberCursor>,
) -> ApiResult<List<GroupMember>> {
    let (last, first, after) = MemberCursor::params(&page.after);
    let rows = db
        .query(
            &db.prepare_cached(GROUP_MEMBERS_SQL).await?,
            &[&id, &descendants, &last, &first, &after, &(page.limit + 1)],
        )
        .await?;
    let data = rows
        .iter()
        .map(|r| {
            let member = GroupMember {
                id: r.get(0),
                first_name: r.get(1),
                last_name: r.get(2),
                email: r.get(3),
                status: r.get(4),
                joined_at: r.get(5),
                group: Named {
                    id: r.get(6),
                    name: r.get(7),
                },
            };
            (member, MemberCursor::of(r, 8, 9, 0))
        })
        .collect();
    Ok(paginate_keyed(data, page.limit, |_, key: &MemberCursor| {
        key.clone()
    }))
}

/// A group's members by name (with `include=descendants`, its subgroups' too);
/// keyset-paginated.
#[utoipa::path(
    get, path = "/api/v1/groups/{id}/members", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id"), PageQuery, GroupMemberFilter),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of members (needs groups.view)", body = List<GroupMember>),
        (status = 404, description = "No such group"),
    )
)]
pub async fn list_group_members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(page): Query<PageQuery>,
    Query(filter): Query<GroupMemberFilter>,
) -> ApiResult<Json<List<GroupMember>>> {
    caller.require(Module::Groups, Action::View)?;
    let descendants = match filter.include.as_deref().map(str::trim) {
        None | Some("") => false,
        Some("descendants") => true,
        Some(_) => return Err(ApiError::validation("include", "must be descendants")),
    };
    let page = page.parse::<MemberCursor>()?;
    let db = state.pool.get().await?;
    load_group(&db, id).await?;
    Ok(Json(group_members(&db, id, descendants, &page).await?))
}

/// Who joins and who leaves a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberChanges {
    /// Users to add; each must exist.
    pub add: Option<Vec<Uuid>>,
    /// Users to remove; those who are not members are ignored.
    pub remove: Option<Vec<Uuid>>,
}

const MAX_MEMBER_CHANGES: usize = 500;

/// How many members `PUT /groups/{id}/members` answers with: the first page of the list.
const MEMBERS_ANSWERED: i64 = 100;

/// Adds and removes members (needs groups.manage, and the roles the group passes on must be
/// within the caller's own grants). Answers the first page of the direct members.
#[utoipa::path(
    put, path = "/api/v1/groups/{id}/members", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id")),
    request_body = MemberChanges,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group's direct members now (the first 100; page on with GET)", body = List<GroupMember>),
        (status = 404, description = "No such group"),
        (status = 409, description = "It would leave no active Admin"),
    )
)]
pub async fn put_group_members(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<MemberChanges>,
) -> ApiResult<Json<List<GroupMember>>> {
    caller.require(Module::Groups, Action::Manage)?;
    let add = dedup(body.add.as_deref().unwrap_or_default());
    let remove = dedup(body.remove.as_deref().unwrap_or_default());
    let mut v = Validator::new();
    if add.is_empty() && remove.is_empty() {
        v.add("add", "add or remove must name at least one user");
    }
    for (field, ids) in [("add", &add), ("remove", &remove)] {
        if ids.len() > MAX_MEMBER_CHANGES {
            v.add(field, format!("must hold at most {MAX_MEMBER_CHANGES} ids"));
        }
    }
    let both: Vec<String> = add
        .iter()
        .filter(|u| remove.contains(u))
        .map(Uuid::to_string)
        .collect();
    if !both.is_empty() {
        v.add(
            "remove",
            format!("names users that add names too: {}", both.join(", ")),
        );
    }
    v.finish()?;

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let target = lock_group(&tx, id).await?;
    ensure_exist(&tx, "users", "add", &add).await?;
    let roles = access::roles_through_group(&tx, id).await?;
    let passed_on = access::grants_of_roles(&tx, &roles).await?;
    access::ensure_within(
        &caller.claims.perms,
        &passed_on,
        &format!("membership of the group {}", target.name),
    )?;
    let ids: Vec<Uuid> = add.iter().map(|_| Uuid::now_v7()).collect();
    let added: Vec<Uuid> = tx
        .query(
            &tx.prepare_cached(
                "INSERT INTO users.user_groups (id, user_id, group_id)
                 SELECT x.id, x.user_id, $1 FROM unnest($2::uuid[], $3::uuid[]) AS x (id, user_id)
                 ON CONFLICT (user_id, group_id) DO NOTHING
                 RETURNING user_id",
            )
            .await?,
            &[&id, &ids, &add],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let removed: Vec<Uuid> = tx
        .query(
            &tx.prepare_cached(
                "DELETE FROM users.user_groups WHERE group_id = $1 AND user_id = ANY ($2) RETURNING user_id",
            )
            .await?,
            &[&id, &remove],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !(added.is_empty() && removed.is_empty()) {
        change.emit(
            "group.members_changed",
            json!({ "group_id": id, "group_name": target.name, "added": added, "removed": removed }),
        );
        for user_id in added.iter().chain(&removed) {
            change.emit(
                "user.updated",
                json!({ "user_id": user_id, "changes": ["groups"] }),
            );
        }
        change.affects(added.iter().chain(&removed).copied());
    }
    let first_page = Page {
        limit: MEMBERS_ANSWERED,
        after: None,
    };
    let members = group_members(&tx, id, false, &first_page).await?;
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(members))
}

/// A role a group holds itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRole {
    pub id: Uuid,
    pub name: String,
    pub is_system: bool,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub assigned_at: DateTime<Utc>,
}

/// A role a group's members hold through one of its ancestors.
#[derive(Debug, Serialize, ToSchema)]
pub struct InheritedGroupRole {
    pub id: Uuid,
    pub name: String,
    pub is_system: bool,
    /// The ancestor group that holds the role.
    pub group: Named,
}

/// The roles a group passes on to its members.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupRoles {
    pub group_id: Uuid,
    /// The group's own roles.
    pub roles: Vec<GroupRole>,
    /// Its ancestors' roles, nearest ancestor first.
    pub inherited: Vec<InheritedGroupRole>,
}

async fn group_roles(db: &impl GenericClient, id: Uuid) -> ApiResult<GroupRoles> {
    let roles = db
        .query(
            &db.prepare_cached(
                "SELECT r.id, r.name, r.is_system, gr.created_at
                 FROM users.group_roles gr JOIN users.roles r ON r.id = gr.role_id
                 WHERE gr.group_id = $1 ORDER BY lower(r.name), r.id",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| GroupRole {
            id: r.get(0),
            name: r.get(1),
            is_system: r.get(2),
            assigned_at: r.get(3),
        })
        .collect();
    let inherited = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE up AS (
                     SELECT parent_id AS id, 1 AS depth FROM users.groups WHERE id = $1 AND parent_id IS NOT NULL
                   UNION ALL
                     SELECT g.parent_id, up.depth + 1 FROM users.groups g JOIN up ON g.id = up.id
                     WHERE g.parent_id IS NOT NULL AND up.depth < 64
                 )
                 SELECT r.id, r.name, r.is_system, a.id, a.name
                 FROM up JOIN users.groups a ON a.id = up.id
                 JOIN users.group_roles gr ON gr.group_id = a.id
                 JOIN users.roles r ON r.id = gr.role_id
                 ORDER BY up.depth, lower(r.name), r.id",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| InheritedGroupRole {
            id: r.get(0),
            name: r.get(1),
            is_system: r.get(2),
            group: Named {
                id: r.get(3),
                name: r.get(4),
            },
        })
        .collect();
    Ok(GroupRoles {
        group_id: id,
        roles,
        inherited,
    })
}

/// A group's own roles and those it inherits from its ancestors.
#[utoipa::path(
    get, path = "/api/v1/groups/{id}/roles", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Own and inherited roles (needs groups.view)", body = GroupRoles),
        (status = 404, description = "No such group"),
    )
)]
pub async fn get_group_roles(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<GroupRoles>> {
    caller.require(Module::Groups, Action::View)?;
    let db = state.pool.get().await?;
    load_group(&db, id).await?;
    Ok(Json(group_roles(&db, id).await?))
}

/// Replaces a group's own roles (needs groups.manage, and every role given or taken away must
/// be within the caller's own grants). Every member of the group and its subgroups is affected.
#[utoipa::path(
    put, path = "/api/v1/groups/{id}/roles", tag = "groups",
    params(("id" = Uuid, Path, description = "The group id")),
    request_body = RoleIds,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The group's roles now", body = GroupRoles),
        (status = 404, description = "No such group"),
        (status = 409, description = "It would leave no active Admin"),
    )
)]
pub async fn put_group_roles(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<RoleIds>,
) -> ApiResult<Json<GroupRoles>> {
    caller.require(Module::Groups, Action::Manage)?;
    if body.role_ids.len() > 100 {
        return Err(ApiError::validation(
            "role_ids",
            "must hold at most 100 ids",
        ));
    }
    let wanted = dedup(&body.role_ids);
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let target = lock_group(&tx, id).await?;
    ensure_exist(&tx, "roles", "role_ids", &wanted).await?;
    let current: Vec<Uuid> = tx
        .query(
            &tx.prepare_cached("SELECT role_id FROM users.group_roles WHERE group_id = $1")
                .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (added, removed) =
        access::role_changes(&tx, &caller.claims.perms, &current, &wanted).await?;
    let changed = !(added.is_empty() && removed.is_empty());
    if changed {
        let ids: Vec<Uuid> = added.iter().map(|_| Uuid::now_v7()).collect();
        let assigned = tx
            .query(
                &tx.prepare_cached(
                    "WITH added AS (
                         INSERT INTO users.group_roles (id, group_id, role_id)
                         SELECT x.id, $1, x.role_id FROM unnest($2::uuid[], $3::uuid[]) AS x (id, role_id)
                         ON CONFLICT (group_id, role_id) DO NOTHING
                         RETURNING role_id
                     )
                     SELECT r.id, r.name FROM added JOIN users.roles r ON r.id = added.role_id",
                )
                .await?,
                &[&id, &ids, &added],
            )
            .await?;
        for row in assigned {
            let (role_id, name): (Uuid, String) = (row.get(0), row.get(1));
            change.emit(
                "role.assigned",
                json!({ "group_id": id, "role_id": role_id, "role_name": name, "assigned_by": caller.id() }),
            );
        }
        let revoked = tx
            .query(
                &tx.prepare_cached(
                    "WITH gone AS (
                         DELETE FROM users.group_roles WHERE group_id = $1 AND role_id = ANY ($2)
                         RETURNING role_id
                     )
                     SELECT r.id, r.name FROM gone JOIN users.roles r ON r.id = gone.role_id",
                )
                .await?,
                &[&id, &removed],
            )
            .await?;
        for row in revoked {
            let (role_id, name): (Uuid, String) = (row.get(0), row.get(1));
            change.emit(
                "role.revoked",
                json!({ "group_id": id, "role_id": role_id, "role_name": name, "revoked_by": caller.id() }),
            );
        }
        tx.execute(
            &tx.prepare_cached("UPDATE users.groups SET updated_at = now() WHERE id = $1")
                .await?,
            &[&id],
        )
        .await?;
        change.affects(access::members_below(&tx, &[target.id]).await?);
    }
    let roles = group_roles(&tx, id).await?;
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(roles))
}
