//! `/api/v1/users*`: the directory. Profiles, invitations, deactivation and erasure, the
//! roles a user holds and the effective permissions that follow from them.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use lectern_shared::{
    ApiError, ApiResult,
    authz::{Action, Module},
    db::Binds,
    extract::{AuthUser, Json, JsonWriter, List, PageQuery, Path, Query, nullable},
    validate::{self, Email, Validator, short_text},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    access::{self, AccessChange, ModuleAccess, Named},
    state::AppState,
    worker::DEFAULT_ROLE,
};

/// A user's profile.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub email: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub bio: Option<String>,
    /// `ACTIVE`, `INACTIVE` or `SUSPENDED`.
    pub status: String,
    /// Set when an administrator created the account.
    #[serde(serialize_with = "lectern_shared::timestamp::serialize_option")]
    pub invited_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

pub(crate) const PROFILE_COLUMNS: &str = "u.id, u.email, u.first_name, u.last_name, u.avatar_url, u.phone, \
     u.job_title, u.department, u.bio, u.status, u.invited_at, u.created_at, u.updated_at";

pub(crate) fn profile(row: &tokio_postgres::Row) -> Profile {
    Profile {
        id: row.get(0),
        email: row.get(1),
        first_name: row.get(2),
        last_name: row.get(3),
        avatar_url: row.get(4),
        phone: row.get(5),
        job_title: row.get(6),
        department: row.get(7),
        bio: row.get(8),
        status: row.get(9),
        invited_at: row.get(10),
        created_at: row.get(11),
        updated_at: row.get(12),
    }
}

/// The profile of `id`, or 404.
pub(crate) async fn load_profile(db: &impl GenericClient, id: Uuid) -> ApiResult<Profile> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM users.users u WHERE u.id = $1");
    db.query_opt(&db.prepare_cached(&sql).await?, &[&id])
        .await?
        .map(|r| profile(&r))
        .ok_or(ApiError::NotFound)
}

/// A user may act on their own record; on anyone else's only with `users.<action>`.
pub(crate) fn ensure_self_or(caller: &AuthUser, id: Uuid, action: Action) -> ApiResult<()> {
    if caller.id() == id {
        Ok(())
    } else {
        caller.require(Module::Users, action)
    }
}

const STATUSES: [&str; 3] = ["ACTIVE", "INACTIVE", "SUSPENDED"];

fn parse_status(raw: &str) -> Result<String, String> {
    let status = raw.trim().to_uppercase();
    if STATUSES.contains(&status.as_str()) {
        Ok(status)
    } else {
        Err("must be one of ACTIVE, INACTIVE, SUSPENDED".into())
    }
}

fn parse_uuid(raw: &str) -> Result<Uuid, String> {
    raw.trim().parse().map_err(|_| "must be a UUID".to_string())
}

/// Filters and order of `GET /users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// `ACTIVE`, `INACTIVE` or `SUSPENDED`.
    pub status: Option<String>,
    /// Users holding this role id directly.
    pub role: Option<String>,
    /// Members of this group id.
    pub group: Option<String>,
    /// Exact department, ignoring case.
    pub department: Option<String>,
    /// Text that appears in the name or email address.
    pub q: Option<String>,
    /// `name` (default), `-name`, `created_at` or `-created_at`.
    pub sort: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum UserSort {
    Name,
    NameDesc,
    Created,
    CreatedDesc,
}

impl UserSort {
    fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::trim) {
            None | Some("") | Some("name") => Ok(Self::Name),
            Some("-name") => Ok(Self::NameDesc),
            Some("created_at") => Ok(Self::Created),
            Some("-created_at") => Ok(Self::CreatedDesc),
            Some(_) => Err("must be one of name, -name, created_at, -created_at".into()),
        }
    }

    /// The sort key the keyset compares, and the order.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Name => (
                "(lower(u.last_name), lower(u.first_name), u.id)",
                ">",
                "lower(u.last_name), lower(u.first_name), u.id",
            ),
            Self::NameDesc => (
                "(lower(u.last_name), lower(u.first_name), u.id)",
                "<",
                "lower(u.last_name) DESC, lower(u.first_name) DESC, u.id DESC",
            ),
            Self::Created => ("(u.created_at, u.id)", ">", "u.created_at, u.id"),
            Self::CreatedDesc => ("(u.created_at, u.id)", "<", "u.created_at DESC, u.id DESC"),
        }
    }

    /// The same order over a search's narrow hit rows (`h`: id, created_at, sort_last,
    /// sort_first), whose sort keys are computed once.
    fn hit_order(self) -> &'static str {
        match self {
            Self::Name => "h.sort_last, h.sort_first, h.id",
            Self::NameDesc => "h.sort_last DESC, h.sort_first DESC, h.id DESC",
            Self::Created => "h.created_at, h.id",
            Self::CreatedDesc => "h.created_at DESC, h.id DESC",
        }
    }

    fn by_name(self) -> bool {
        matches!(self, Self::Name | Self::NameDesc)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct UserCursor {
    sort: UserSort,
    last: String,
    first: String,
    created_at: DateTime<Utc>,
    id: Uuid,
}

/// `%`, `_` and `\` match themselves in a LIKE pattern.
pub(crate) fn like_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Lists users, filtered and ordered; keyset-paginated.
#[utoipa::path(
    get, path = "/api/v1/users", tag = "users",
    params(PageQuery, UserFilter),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of profiles (needs users.view)", body = List<Profile>))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(page): Query<PageQuery>,
    Query(filter): Query<UserFilter>,
) -> ApiResult<Json<List<Profile>>> {
    caller.require(Module::Users, Action::View)?;
    let mut v = Validator::new();
    let status = filter
        .status
        .as_deref()
        .and_then(|s| v.check("status", parse_status(s)));
    let role = filter
        .role
        .as_deref()
        .and_then(|s| v.check("role", parse_uuid(s)));
    let group = filter
        .group
        .as_deref()
        .and_then(|s| v.check("group", parse_uuid(s)));
    let department = filter
        .department
        .as_deref()
        .and_then(|s| v.check("department", short_text(s, 200)));
    let q = filter
        .q
        .as_deref()
        .and_then(|s| v.check("q", short_text(s, 100)))
        .map(|q| like_pattern(&q));
    // pg_trgm indexes three-character runs: shorter words are found faster in name order.
    let trigram_search = filter
        .q
        .as_deref()
        .is_some_and(|q| q.trim().chars().count() >= 3);
    let sort = v
        .check("sort", UserSort::parse(filter.sort.as_deref()))
        .unwrap_or(UserSort::Name);
    v.finish()?;
    let page = page.parse::<UserCursor>()?;
    if page.after.as_ref().is_some_and(|c| c.sort != sort) {
        return Err(ApiError::validation(
            "cursor",
            "belongs to a list in another order",
        ));
    }
    // Only the filters in use reach the statement, so each combination gets a plan that can
    // use its index (the trigram index for `q`, the name or creation order otherwise).
    let mut params = Binds::new();
    let mut conditions: Vec<String> = Vec::new();
    if let Some(status) = &status {
        conditions.push(format!("u.status = {}", params.bind(status)));
    }
    if let Some(role) = &role {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM users.user_roles ur WHERE ur.user_id = u.id AND ur.role_id = {})",
            params.bind(role)
        ));
    }
    if let Some(group) = &group {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM users.user_groups ug WHERE ug.user_id = u.id AND ug.group_id = {})",
            params.bind(group)
        ));
    }
    if let Some(department) = &department {
        conditions.push(format!(
            "lower(u.department) = lower({})",
            params.bind(department)
        ));
    }
    if let Some(q) = &q {
        conditions.push(format!(
            "lower(u.first_name || ' ' || u.last_name || ' ' || coalesce(u.email, '')) LIKE {}",
            params.bind(q)
        ));
    }
    let (key, comparison, order) = sort.sql();
    let after = page.after.as_ref();
    let (last, first, created_at, id) = (
        after.map(|c| c.last.clone()),
        after.map(|c| c.first.clone()),
        after.map(|c| c.created_at),
        after.map(|c| c.id),
    );
    if let (Some(last), Some(first), Some(created_at), Some(id)) = (&last, &first, &created_at, &id)
    {
        let position = if sort.by_name() {
            let (a, b) = (params.bind(last), params.bind(first));
            format!("({a}, {b}, {})", params.bind(id))
        } else {
            let a = params.bind(created_at);
            format!("({a}, {})", params.bind(id))
        };
        conditions.push(format!("{key} {comparison} {position}"));
    }
    let limit = page.limit + 1;
    let limit_param = params.bind(&limit);
    let filter = if conditions.is_empty() {
        "TRUE".to_string()
    } else {
        conditions.join(" AND ")
    };
    let sql = if trigram_search {
        // Find the matches through the trigram index first, then order them: walking the
        // name order and filtering would pass every non-matching name before the first hit.
        // Only the ids and sort keys of the matches are kept and sorted; the page's rows are
        // read afterwards.
        let hit_order = sort.hit_order();
        format!(
            "WITH hits AS MATERIALIZED (
                 SELECT u.id, u.created_at, lower(u.last_name) AS sort_last,
                        lower(u.first_name) AS sort_first
                 FROM users.users u WHERE {filter}),
             page AS (SELECT * FROM hits h ORDER BY {hit_order} LIMIT {limit_param})
             SELECT {PROFILE_COLUMNS}, h.sort_last, h.sort_first
             FROM page h JOIN users.users u ON u.id = h.id
             ORDER BY {hit_order}"
        )
    } else {
        format!(
            "SELECT {PROFILE_COLUMNS}, lower(u.last_name) AS sort_last, lower(u.first_name) AS sort_first
             FROM users.users u WHERE {filter} ORDER BY {order} LIMIT {limit_param}"
        )
    };
    let db = state.pool.get().await?;
    let rows = if q.is_some() {
        // A text search is planned for its pattern (an unnamed statement): a cached generic
        // plan cannot tell a rare word, which the trigram index finds, from a common one.
        db.query(sql.as_str(), params.values()).await?
    } else {
        db.query(&db.prepare_cached(&sql).await?, params.values())
            .await?
    };
    // The position is PostgreSQL's own lower(), which the keyset compares against.
    let rows: Vec<(Profile, String, String)> = rows
        .iter()
        .map(|r| (profile(r), r.get(13), r.get(14)))
        .collect();
    let page = List::paginate(rows, page.limit, |(p, last, first)| UserCursor {
        sort,
        last: last.clone(),
        first: first.clone(),
        created_at: p.created_at,
        id: p.id,
    });
    Ok(Json(List {
        data: page.data.into_iter().map(|(p, _, _)| p).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One profile: the caller's own, or anyone's with users.view.
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Profile>> {
    ensure_self_or(&caller, id, Action::View)?;
    let db = state.pool.get().await?;
    Ok(Json(load_profile(&db, id).await?))
}

/// The profile fields a client may write.
#[derive(Debug, Default)]
struct ProfileFields {
    first_name: Option<String>,
    last_name: Option<String>,
    avatar_url: Option<Option<String>>,
    phone: Option<Option<String>>,
    job_title: Option<Option<String>>,
    department: Option<Option<String>>,
    bio: Option<Option<String>>,
}

/// Optional texts: `None` leaves the field alone, `Some(None)` (null or blank) clears it.
fn optional(
    v: &mut Validator,
    field: &str,
    raw: Option<Option<String>>,
    parse: impl Fn(&str) -> Result<String, String>,
) -> Option<Option<String>> {
    let raw = raw.map(|text| text.filter(|t| !t.trim().is_empty()));
    v.change(field, raw, |text| parse(&text))
}

impl ProfileFields {
    #[allow(clippy::too_many_arguments)]
    fn parse(
        v: &mut Validator,
        first_name: Option<String>,
        last_name: Option<String>,
        avatar_url: Option<Option<String>>,
        phone: Option<Option<String>>,
        job_title: Option<Option<String>>,
        department: Option<Option<String>>,
        bio: Option<Option<String>>,
    ) -> Self {
        Self {
            first_name: first_name.and_then(|s| v.check("first_name", short_text(&s, 100))),
            last_name: last_name.and_then(|s| v.check("last_name", short_text(&s, 100))),
            avatar_url: optional(v, "avatar_url", avatar_url, validate::http_url),
            phone: optional(v, "phone", phone, validate::phone),
            job_title: optional(v, "job_title", job_title, |s| short_text(s, 200)),
            department: optional(v, "department", department, |s| short_text(s, 200)),
            bio: v
                .change("bio", bio, |text| validate::long_text(&text, 5000))
                .map(Option::flatten),
        }
    }
}

/// An invitation: the profile, and optionally the roles and groups to start with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub avatar_url: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub bio: Option<String>,
    /// Roles to assign (needs users.manage); the Viewer role when absent.
    pub role_ids: Option<Vec<Uuid>>,
    /// Groups to join (needs groups.manage).
    pub group_ids: Option<Vec<Uuid>>,
}

/// Checks that every id in `ids` exists in `table`; 422 on `field` otherwise.
pub(crate) async fn ensure_exist(
    db: &impl GenericClient,
    table: &str,
    field: &str,
    ids: &[Uuid],
) -> ApiResult<()> {
    let sql = format!("SELECT id FROM users.{table} WHERE id = ANY ($1)");
    let found: Vec<Uuid> = db
        .query(&db.prepare_cached(&sql).await?, &[&ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !found.contains(id))
        .map(Uuid::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(
            field,
            format!("names ids that do not exist: {}", missing.join(", ")),
        ))
    }
}

pub(crate) fn dedup(ids: &[Uuid]) -> Vec<Uuid> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    ids
}

/// Creates a user as an administrator: the profile here, the identity in the auth service
/// (no password yet) and an invitation mail with a link to set one.
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    request_body = NewUser,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Invited; the profile", body = Profile,
         headers(("Location" = String, description = "The new user's URL"))),
        (status = 409, description = "An account with this email exists"),
    )
)]
pub async fn create_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(body): Json<NewUser>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Module::Users, Action::Create)?;
    let mut v = Validator::new();
    let email = v.check("email", Email::parse(&body.email));
    let fields = ProfileFields::parse(
        &mut v,
        Some(body.first_name),
        Some(body.last_name),
        body.avatar_url.map(Some),
        body.phone.map(Some),
        body.job_title.map(Some),
        body.department.map(Some),
        body.bio.map(Some),
    );
    v.finish()?;
    let email = email.expect("validated");
    let role_ids = body.role_ids.as_deref().map(dedup);
    let group_ids = dedup(body.group_ids.as_deref().unwrap_or_default());

    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    if let Some(role_ids) = &role_ids {
        caller.require(Module::Users, Action::Manage)?;
        ensure_exist(&tx, "roles", "role_ids", role_ids).await?;
        let given = access::grants_of_roles(&tx, role_ids).await?;
        access::ensure_within(&caller.claims.perms, &given, "these roles")?;
    }
    if !group_ids.is_empty() {
        caller.require(Module::Groups, Action::Manage)?;
        ensure_exist(&tx, "groups", "group_ids", &group_ids).await?;
        for group in &group_ids {
            let roles = access::roles_through_group(&tx, *group).await?;
            let given = access::grants_of_roles(&tx, &roles).await?;
            access::ensure_within(&caller.claims.perms, &given, "membership of this group")?;
        }
    }
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let id = Uuid::now_v7();
    let inserted = tx
        .execute(
            "INSERT INTO users.users (id, email, first_name, last_name, avatar_url, phone, job_title,
                                      department, bio, invited_by, invited_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
             ON CONFLICT (email) DO NOTHING",
            &[
                &id,
                &email.as_str(),
                &fields.first_name,
                &fields.last_name,
                &fields.avatar_url.flatten(),
                &fields.phone.flatten(),
                &fields.job_title.flatten(),
                &fields.department.flatten(),
                &fields.bio.flatten(),
                &caller.id(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(ApiError::Conflict(
            "An account with this email address exists.".into(),
        ));
    }
    match &role_ids {
        Some(role_ids) => {
            for role_id in role_ids {
                assign_role(&tx, &mut change, id, *role_id, caller.id()).await?;
            }
        }
        None => {
            let viewer: Uuid = tx
                .query_one(
                    "SELECT id FROM users.roles WHERE name = $1 AND is_system",
                    &[&DEFAULT_ROLE],
                )
                .await?
                .get(0);
            assign_role(&tx, &mut change, id, viewer, caller.id()).await?;
        }
    }
    for group_id in &group_ids {
        tx.execute(
            "INSERT INTO users.user_groups (id, user_id, group_id) VALUES ($1, $2, $3)",
            &[&Uuid::now_v7(), &id, group_id],
        )
        .await?;
    }
    let created = load_profile(&tx, id).await?;
    let effective = access::effective(&tx, id).await?;
    change.emit(
        "user.invited",
        json!({
            "user_id": id,
            "email": created.email,
            "first_name": created.first_name,
            "last_name": created.last_name,
            "invited_by": caller.id(),
            "access": effective.access,
        }),
    );
    change.affects([id]);
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/users/{id}"))],
        Json(created),
    ))
}

/// Adds one direct role and records `role.assigned`.
async fn assign_role(
    tx: &deadpool_postgres::Transaction<'_>,
    change: &mut AccessChange,
    user_id: Uuid,
    role_id: Uuid,
    by: Uuid,
) -> ApiResult<()> {
    let row = tx
        .query_opt(
            "WITH added AS (
                 INSERT INTO users.user_roles (id, user_id, role_id, assigned_by) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING RETURNING role_id
             )
             SELECT r.name FROM added JOIN users.roles r ON r.id = added.role_id",
            &[&Uuid::now_v7(), &user_id, &role_id, &by],
        )
        .await?;
    if let Some(row) = row {
        let name: String = row.get(0);
        change.emit(
            "role.assigned",
            json!({ "user_id": user_id, "role_id": role_id, "role_name": name, "assigned_by": by }),
        );
    }
    Ok(())
}

/// A profile update: only the fields present change; `null` clears an optional one.
/// `status` is for administrators (users.edit) and never for oneself.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub job_title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub department: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
    /// `ACTIVE`, `INACTIVE` or `SUSPENDED`.
    pub status: Option<String>,
}

/// Updates a profile: one's own, or anyone's with users.edit.
#[utoipa::path(
    put, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body = ProfileUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 404, description = "No such user"),
        (status = 409, description = "It would leave no active Admin"),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<ProfileUpdate>,
) -> ApiResult<Json<Profile>> {
    ensure_self_or(&caller, id, Action::Edit)?;
    let mut v = Validator::new();
    let fields = ProfileFields::parse(
        &mut v,
        body.first_name,
        body.last_name,
        body.avatar_url,
        body.phone,
        body.job_title,
        body.department,
        body.bio,
    );
    let status = match body.status.as_deref() {
        Some(_) if caller.id() == id => {
            v.add("status", "cannot be changed on your own account");
            None
        }
        Some(raw) => v.check("status", parse_status(raw)),
        None => None,
    };
    v.finish()?;
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    let before = {
        let sql = format!("SELECT {PROFILE_COLUMNS} FROM users.users u WHERE u.id = $1 FOR UPDATE");
        tx.query_opt(&sql, &[&id])
            .await?
            .map(|r| profile(&r))
            .ok_or(ApiError::NotFound)?
    };
    let row = tx
        .query_one(
            &format!(
                "UPDATE users.users u SET
                     first_name = COALESCE($2, first_name),
                     last_name = COALESCE($3, last_name),
                     avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END,
                     phone = CASE WHEN $6 THEN $7 ELSE phone END,
                     job_title = CASE WHEN $8 THEN $9 ELSE job_title END,
                     department = CASE WHEN $10 THEN $11 ELSE department END,
                     bio = CASE WHEN $12 THEN $13 ELSE bio END,
                     status = COALESCE($14, status),
                     deactivated_at = CASE WHEN $14 IS NULL THEN deactivated_at
                                           WHEN $14 = 'ACTIVE' THEN NULL
                                           ELSE COALESCE(deactivated_at, now()) END,
                     updated_at = now()
                 WHERE u.id = $1
                 RETURNING {PROFILE_COLUMNS}"
            ),
            &[
                &id,
                &fields.first_name,
                &fields.last_name,
                &fields.avatar_url.is_some(),
                &fields.avatar_url.clone().flatten(),
                &fields.phone.is_some(),
                &fields.phone.clone().flatten(),
                &fields.job_title.is_some(),
                &fields.job_title.clone().flatten(),
                &fields.department.is_some(),
                &fields.department.clone().flatten(),
                &fields.bio.is_some(),
                &fields.bio.clone().flatten(),
                &status,
            ],
        )
        .await?;
    let after = profile(&row);
    let changes = changed_fields(&before, &after);
    if !changes.is_empty() {
        let mut data = json!({ "user_id": id, "changes": changes });
        if before.status != after.status {
            data["status"] = json!(after.status);
        }
        for name in &changes {
            data[name.as_str()] = serde_json::to_value(&after)
                .ok()
                .and_then(|p| p.get(name.as_str()).cloned())
                .unwrap_or_default();
        }
        change.emit("user.updated", data);
    }
    if before.status != after.status {
        change.affects([id]);
    }
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(after))
}

fn changed_fields(before: &Profile, after: &Profile) -> Vec<String> {
    let (b, a) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    );
    [
        "first_name",
        "last_name",
        "avatar_url",
        "phone",
        "job_title",
        "department",
        "bio",
        "status",
    ]
    .iter()
    .filter(|f| b.get(**f) != a.get(**f))
    .map(|f| f.to_string())
    .collect()
}

/// How `DELETE /users/{id}` removes a user.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteMode {
    /// `deactivate` (default: the account stays, signed out and unable to sign in) or `erase`
    /// (the profile and all personal data are deleted in every service).
    pub mode: Option<String>,
}

/// Deactivates a user, or erases them (needs users.delete).
#[utoipa::path(
    delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "The user id"), DeleteMode),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deactivated or erased"),
        (status = 404, description = "No such user"),
        (status = 409, description = "It would leave no active Admin"),
    )
)]
pub async fn delete_user(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Query(mode): Query<DeleteMode>,
) -> ApiResult<StatusCode> {
    caller.require(Module::Users, Action::Delete)?;
    let erase = match mode.mode.as_deref().map(str::trim) {
        None | Some("") | Some("deactivate") => false,
        Some("erase") => true,
        Some(_) => return Err(ApiError::validation("mode", "must be deactivate or erase")),
    };
    let mut db = state.pool.get().await?;
    let tx = db.transaction().await?;
    let mut change = AccessChange::begin(&tx, Some(caller.id())).await?;
    if erase {
        let deleted = tx
            .execute("DELETE FROM users.users WHERE id = $1", &[&id])
            .await?;
        if deleted == 0 {
            return Err(ApiError::NotFound);
        }
        // The events that described them (their address, names, roles) go too; only the
        // deletion itself is announced.
        tx.execute(
            "DELETE FROM users.outbox WHERE data->>'user_id' = $1",
            &[&id.to_string()],
        )
        .await?;
        change.emit("user.deleted", json!({ "user_id": id }));
    } else {
        let status: Option<String> = tx
            .query_opt(
                "WITH old AS (SELECT id, status FROM users.users WHERE id = $1 FOR UPDATE)
                 UPDATE users.users u SET status = 'INACTIVE', deactivated_at = COALESCE(u.deactivated_at, now()),
                        updated_at = now()
                 FROM old WHERE u.id = old.id
                 RETURNING old.status",
                &[&id],
            )
            .await?
            .map(|r| r.get(0));
        let Some(previous) = status else {
            return Err(ApiError::NotFound);
        };
        if previous != "INACTIVE" {
            change.emit(
                "user.updated",
                json!({ "user_id": id, "status": "INACTIVE", "changes": ["status"] }),
            );
        }
        change.affects([id]);
    }
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A role as it appears in a user's role list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleAssignment {
    pub id: Uuid,
    pub name: String,
    pub is_system: bool,
    pub assigned_by: Option<Uuid>,
    #[serde(serialize_with = "lectern_shared::timestamp::serialize")]
    pub assigned_at: DateTime<Utc>,
}

/// A role held through a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct InheritedRole {
    pub id: Uuid,
    pub name: String,
    /// From the group the user belongs to up to the group that holds the role.
    pub via: Vec<Named>,
}

/// The roles a user holds: assigned directly, and through groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRoles {
    pub user_id: Uuid,
    pub direct: Vec<RoleAssignment>,
    pub inherited: Vec<InheritedRole>,
}

async fn user_roles(db: &impl GenericClient, id: Uuid) -> ApiResult<UserRoles> {
    let direct = db
        .query(
            &db.prepare_cached(
                "SELECT r.id, r.name, r.is_system, ur.assigned_by, ur.created_at
                 FROM users.user_roles ur JOIN users.roles r ON r.id = ur.role_id
                 WHERE ur.user_id = $1 ORDER BY lower(r.name)",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| RoleAssignment {
            id: r.get(0),
            name: r.get(1),
            is_system: r.get(2),
            assigned_by: r.get(3),
            assigned_at: r.get(4),
        })
        .collect();
    let effective = access::effective(db, id).await?;
    let mut inherited: Vec<InheritedRole> = effective
        .modules
        .iter()
        .flat_map(|m| m.sources.iter())
        .filter_map(|s| {
            s.via.as_ref().map(|via| InheritedRole {
                id: s.role.id,
                name: s.role.name.clone(),
                via: via.clone(),
            })
        })
        .collect();
    inherited.sort_by(|a, b| (&a.name, &a.via).cmp(&(&b.name, &b.via)));
    inherited.dedup_by(|a, b| a.id == b.id && a.via == b.via);
    Ok(UserRoles {
        user_id: id,
        direct,
        inherited,
    })
}

/// The roles a user holds (one's own, or anyone's with users.view).
#[utoipa::path(
    get, path = "/api/v1/users/{id}/roles", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Direct and inherited roles", body = UserRoles),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user_roles(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<UserRoles>> {
    ensure_self_or(&caller, id, Action::View)?;
    let db = state.pool.get().await?;
    load_profile(&db, id).await?;
    Ok(Json(user_roles(&db, id).await?))
}

/// The complete set of roles assigned directly.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleIds {
    pub role_ids: Vec<Uuid>,
}

/// Sets the roles assigned directly to a user (needs users.manage, and every role given or
/// taken away must be within the caller's own permissions).
#[utoipa::path(
    put, path = "/api/v1/users/{id}/roles", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    request_body = RoleIds,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user's roles now", body = UserRoles),
        (status = 404, description = "No such user"),
        (status = 409, description = "It would leave no active Admin"),
    )
)]
pub async fn put_user_roles(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
    Json(body): Json<RoleIds>,
) -> ApiResult<Json<UserRoles>> {
    caller.require(Module::Users, Action::Manage)?;
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
    tx.query_opt("SELECT 1 FROM users.users WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(ApiError::NotFound)?;
    ensure_exist(&tx, "roles", "role_ids", &wanted).await?;
    let current: Vec<Uuid> = tx
        .query(
            "SELECT role_id FROM users.user_roles WHERE user_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (added, removed) =
        access::role_changes(&tx, &caller.claims.perms, &current, &wanted).await?;
    let changed = !(added.is_empty() && removed.is_empty());
    for role_id in &added {
        assign_role(&tx, &mut change, id, *role_id, caller.id()).await?;
    }
    if !removed.is_empty() {
        let rows = tx
            .query(
                "WITH gone AS (
                     DELETE FROM users.user_roles WHERE user_id = $1 AND role_id = ANY ($2) RETURNING role_id
                 )
                 SELECT r.id, r.name FROM gone JOIN users.roles r ON r.id = gone.role_id",
                &[&id, &removed],
            )
            .await?;
        for row in rows {
            let (role_id, name): (Uuid, String) = (row.get(0), row.get(1));
            change.emit(
                "role.revoked",
                json!({ "user_id": id, "role_id": role_id, "role_name": name, "revoked_by": caller.id() }),
            );
        }
    }
    if changed {
        change.emit(
            "user.updated",
            json!({ "user_id": id, "changes": ["roles"], "role_ids": wanted }),
        );
        change.affects([id]);
    }
    let roles = user_roles(&tx, id).await?;
    let events = change.finish(&tx).await?;
    state.outbox.commit(tx, &events).await?;
    Ok(Json(roles))
}

/// What a user may do, per module, and why.
// The document both permissions reads answer. They write it from the statement's rows
// (`access::EffectiveRows::write_answer`); a test there checks that the text is what serde
// writes for this type. Not a doc comment: those are the API's.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectivePermissions {
    pub user_id: Uuid,
    /// Every role held, directly or through groups.
    pub roles: Vec<Named>,
    /// The groups the user belongs to and all their ancestors.
    pub groups: Vec<Named>,
    pub permissions: Vec<ModuleAccess>,
}

/// `id`'s effective permissions as [`EffectivePermissions`], written from the statement's
/// rows (the same document serde would write); 404 when there is no such user. One statement
/// answers both.
pub(crate) async fn effective_permissions(
    db: &impl GenericClient,
    id: Uuid,
) -> ApiResult<JsonWriter> {
    let rows = access::effective_rows(db, id).await?;
    let effective = access::EffectiveRows::read(&rows);
    if !effective.exists {
        return Err(ApiError::NotFound);
    }
    Ok(effective.write_answer(id))
}

/// A user's effective permissions with their provenance (one's own, or anyone's with
/// users.view).
#[utoipa::path(
    get, path = "/api/v1/users/{id}/permissions", tag = "users",
    params(("id" = Uuid, Path, description = "The user id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Effective flags per module and where each comes from", body = EffectivePermissions),
        (status = 404, description = "No such user"),
    )
)]
pub async fn get_user_permissions(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<Uuid>,
) -> ApiResult<JsonWriter> {
    ensure_self_or(&caller, id, Action::View)?;
    let db = state.pool.get().await?;
    effective_permissions(&db, id).await
}
