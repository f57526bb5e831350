//! `/api/v1/permissions*`: the catalogue roles are built from. A permission is one or more
//! flags on one module; the seeded ones are `module.action`, and an installation may add its
//! own (`articles.review_queue`). The roles module governs them (`roles.view`, `roles.manage`).

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Flags, Module},
    events::Envelope,
    extract::{AuthUser, Json, List, PageQuery, Query},
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::state::{AppState, EVENT_SOURCE};

/// One permission: a module and the flags it grants there.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Permission {
    pub id: Uuid,
    /// One of the 17 modules (`articles`, `users`, ...).
    pub module: String,
    /// Unique, lowercase and dotted: `articles.publish`.
    pub name: String,
    pub description: Option<String>,
    pub view: bool,
    pub create: bool,
    pub edit: bool,
    pub delete: bool,
    pub publish: bool,
    pub manage: bool,
}

impl Permission {
    pub(crate) fn flags(&self) -> Flags {
        let set = [
            self.view,
            self.create,
            self.edit,
            self.delete,
            self.publish,
            self.manage,
        ];
        let actions: Vec<Action> = Action::ALL
            .into_iter()
            .zip(set)
            .filter(|(_, on)| *on)
            .map(|(a, _)| a)
            .collect();
        Flags::of(&actions)
    }
}

pub(crate) const PERMISSION_COLUMNS: &str = "p.id, p.module, p.name, p.description, p.view_access, \
     p.create_access, p.edit_access, p.delete_access, p.publish_access, p.manage_access";

pub(crate) fn permission(row: &tokio_postgres::Row) -> Permission {
    Permission {
        id: row.get(0),
        module: row.get(1),
        name: row.get(2),
        description: row.get(3),
        view: row.get(4),
        create: row.get(5),
        edit: row.get(6),
        delete: row.get(7),
        publish: row.get(8),
        manage: row.get(9),
    }
}

/// What a set of permissions grants together, module → letters of `vcedpm`.
pub(crate) fn grants_summary(permissions: &[Permission]) -> BTreeMap<String, String> {
    let mut flags: BTreeMap<&str, Flags> = BTreeMap::new();
    for p in permissions {
        let entry = flags.entry(p.module.as_str()).or_default();
        *entry = entry.union(p.flags());
    }
    flags
        .into_iter()
        .map(|(module, flags)| (module.to_string(), flags.letters()))
        .collect()
}

pub(crate) fn parse_module(raw: &str) -> Result<Module, String> {
    raw.trim().parse::<Module>().map_err(|_| {
        let names: Vec<&str> = Module::ALL.iter().map(|m| m.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    })
}

/// Filters of `GET /permissions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PermissionFilter {
    /// Only this module's permissions.
    pub module: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PermissionCursor {
    module: String,
    name: String,
}

/// Lists permissions by module and name; keyset-paginated.
#[utoipa::path(
    get, path = "/api/v1/permissions", tag = "roles",
    params(PageQuery, PermissionFilter),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of permissions (needs roles.view)", body = List<Permission>))
)]
pub async fn list_permissions(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(page): Query<PageQuery>,
    Query(filter): Query<PermissionFilter>,
) -> ApiResult<Json<List<Permission>>> {
    caller.require(Module::Roles, Action::View)?;
    let mut v = Validator::new();
    let module = filter
        .module
        .as_deref()
        .and_then(|m| v.check("module", parse_module(m)))
        .map(Module::as_str);
    v.finish()?;
    let page = page.parse::<PermissionCursor>()?;
    let (after_module, after_name) = match &page.after {
        Some(c) => (Some(c.module.as_str()), Some(c.name.as_str())),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {PERMISSION_COLUMNS} FROM users.permissions p
         WHERE ($1::text IS NULL OR p.module = $1)
           AND ($2::text IS NULL OR (p.module, p.name) > ($2, $3))
         ORDER BY p.module, p.name
         LIMIT $4"
    );
    let db = state.pool.get().await?;
    let rows = db
        .query(
            &db.prepare_cached(&sql).await?,
            &[&module, &after_module, &after_name, &(page.limit + 1)],
        )
        .await?;
    let data = rows.iter().map(permission).collect();
    Ok(Json(List::paginate(data, page.limit, |p: &Permission| {
        PermissionCursor {
            module: p.module.clone(),
            name: p.name.clone(),
        }
    })))
}

/// One cell of the module grid: an action and the permissions that grant it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionPermissions {
    /// `view`, `create`, `edit`, `delete`, `publish` or `manage`.
    pub action: String,
    pub permission_ids: Vec<Uuid>,
}

/// One row of the module grid.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModulePermissions {
    pub module: String,
    /// Always the six actions, in the order view, create, edit, delete, publish, manage.
    pub actions: Vec<ActionPermissions>,
}

/// Every module with its six actions and the permissions granting each: what a role editor
/// draws as a grid.
#[utoipa::path(
    get, path = "/api/v1/permissions/modules", tag = "roles",
    security(("bearer" = [])),
    responses((status = 200, description = "The 17 modules (needs roles.view)", body = List<ModulePermissions>))
)]
pub async fn list_modules(
    State(state): State<AppState>,
    caller: AuthUser,
) -> ApiResult<Json<List<ModulePermissions>>> {
    caller.require(Module::Roles, Action::View)?;
    let db = state.pool.get().await?;
    let sql =
        format!("SELECT {PERMISSION_COLUMNS} FROM users.permissions p ORDER BY p.module, p.name");
    let permissions: Vec<Permission> = db
        .query(&db.prepare_cached(&sql).await?, &[])
        .await?
        .iter()
        .map(permission)
        .collect();
    let data = Module::ALL
        .iter()
        .map(|module| ModulePermissions {
            module: module.as_str().to_string(),
            actions: Action::ALL
                .iter()
                .map(|action| ActionPermissions {
                    action: action.as_str().to_string(),
                    permission_ids: permissions
                        .iter()
                        .filter(|p| p.module == module.as_str() && p.flags().allows(*action))
                        .map(|p| p.id)
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(List {
        data,
        next_cursor: None,
    }))
}

/// A new permission. At least one flag must be set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPermission {
    pub module: String,
    /// Lowercase words joined by dots, starting with the module: `articles.review_queue`.
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub view: bool,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub edit: bool,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub manage: bool,
}

/// `articles.review_queue`: lowercase words of letters, digits and `_`, joined by dots.
fn permission_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if name.len() <= 100 && name.contains('.') && name.split('.').all(word) {
        Ok(name.to_string())
    } else {
        Err("must be lowercase words joined by dots, like articles.review_queue (at most 100 characters)".into())
    }
}

/// Adds a permission to the catalogue (needs roles.manage). The Admin role receives it at once,
/// so that Admin keeps holding every permission; its grants do not change, since Admin holds
/// every flag on every module already.
#[utoipa::path(
    post, path = "/api/v1/permissions", tag = "roles",
    request_body = NewPermission,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; the permission", body = Permission,
         headers(("Location" = String, description = "The permission list of its module"))),
        (status = 409, description = "A permission with this name exists"),
    )
)]
pub async fn create_permission(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<NewPermission>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Roles, Action::Manage)?;
    let mut v = Validator::new();
    let module = v.check("module", parse_module(&body.module));
    let name = v.check("name", permission_name(&body.name));
    if let (Some(module), Some(name)) = (module, &name)
        && let Some((prefix, rest)) = name.split_once('.')
        && prefix != module.as_str()
    {
        v.add(
            "name",
            format!("must start with its module, like {module}.{rest}"),
        );
    }
    let description = body
        .description
        .as_deref()
        .and_then(|d| v.check("description", validate::long_text(d, 1000)))
        .flatten();
    let flags = [
        body.view,
        body.create,
        body.edit,
        body.delete,
        body.publish,
        body.manage,
    ];
    if !flags.iter().any(|f| *f) {
        v.add(
            "view",
            "at least one of view, create, edit, delete, publish and manage must be true",
        );
    }
    v.finish()?;
    let (module, name) = (module.expect("validated"), name.expect("validated"));

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let id = Uuid::now_v7();
    let sql = format!(
        "INSERT INTO users.permissions AS p (id, module, name, description, view_access, create_access,
                                          edit_access, delete_access, publish_access, manage_access)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT DO NOTHING
         RETURNING {PERMISSION_COLUMNS}"
    );
    let created = tx
        .query_opt(
            &tx.prepare_cached(&sql).await?,
            &[
                &id,
                &module.as_str(),
                &name,
                &description,
                &body.view,
                &body.create,
                &body.edit,
                &body.delete,
                &body.publish,
                &body.manage,
            ],
        )
        .await?
        .map(|r| permission(&r))
        .ok_or_else(|| ApiError::Conflict(format!("A permission named {name} exists.")))?;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO users.role_permissions (id, role_id, permission_id)
             SELECT $1, r.id, $2 FROM users.roles r WHERE r.name = 'Admin' AND r.is_system",
        )
        .await?,
        &[&Uuid::now_v7(), &id],
    )
    .await?;
    let event = Envelope::new(
        EVENT_SOURCE,
        "permission.created",
        Some(caller.id()),
        json!({
            "permission_id": id,
            "module": created.module,
            "name": created.name,
            "flags": created.flags().letters(),
        }),
    );
    state.outbox.commit(tx, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/permissions?module={}", module.as_str()),
        )],
        Json(created),
    ))
}

/// The permissions of `role_id`, by module and name.
pub(crate) async fn of_role(db: &impl GenericClient, role_id: Uuid) -> ApiResult<Vec<Permission>> {
    let sql = format!(
        "SELECT {PERMISSION_COLUMNS}
         FROM users.role_permissions rp JOIN users.permissions p ON p.id = rp.permission_id
         WHERE rp.role_id = $1
         ORDER BY p.module, p.name"
    );
    Ok(db
        .query(&db.prepare_cached(&sql).await?, &[&role_id])
        .await?
        .iter()
        .map(permission)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_are_lowercase_and_dotted() {
        assert_eq!(
            permission_name(" articles.review_queue ").unwrap(),
            "articles.review_queue"
        );
        for bad in [
            "",
            "articles",
            "Articles.view",
            "articles..view",
            "articles.view-all",
            ".view",
            "articles.1st",
            &format!("articles.{}", "a".repeat(100)),
        ] {
            assert!(permission_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_summary_unites_the_flags_per_module() {
        let p = |module: &str, view, publish| Permission {
            id: Uuid::nil(),
            module: module.into(),
            name: String::new(),
            description: None,
            view,
            create: false,
            edit: false,
            delete: false,
            publish,
            manage: false,
        };
        let summary = grants_summary(&[
            p("articles", true, false),
            p("articles", false, true),
            p("tags", true, false),
        ]);
        assert_eq!(summary["articles"], "vp");
        assert_eq!(summary["tags"], "v");
    }
}
