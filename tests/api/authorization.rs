//! The authorization matrix: every users, roles, permissions, groups and settings route, called
//! by each kind of caller, each answer checked against the permission model. Every mismatch is
//! collected, so a failing run shows the whole picture rather than the first surprise.

use std::collections::HashMap;

use axum::{
    body::Body,
    http::{Method, Request, StatusCode},
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Reply, Session, TestApp};

/// Who calls a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Caller {
    /// No credential at all.
    Anonymous,
    /// A fresh account: the default Viewer role only.
    Viewer,
    /// The system role Editor.
    Editor,
    /// The system role Admin: everything.
    Admin,
    /// The custom role Auditor (and Viewer), assigned directly.
    Custom,
    /// Auditor only through the parent of a group they belong to (and Viewer directly).
    Inherited,
    /// No user: the local service credential, as another service calls `/internal/*`.
    Service,
    /// The custom role Author (and Viewer): of articles only `articles.view` and
    /// `articles.create`, so their own drafts and nothing else. Only the content matrix asks.
    Author,
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::Viewer,
    Caller::Editor,
    Caller::Admin,
    Caller::Custom,
    Caller::Inherited,
    Caller::Service,
];

/// What the custom role Auditor grants.
const AUDITOR: [&str; 4] = ["users.view", "roles.view", "groups.view", "settings.view"];

impl Caller {
    fn name(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Viewer => "Viewer",
            Caller::Editor => "Editor",
            Caller::Admin => "Admin",
            Caller::Custom => "custom",
            Caller::Inherited => "inherited",
            Caller::Service => "service",
            Caller::Author => "author",
        }
    }

    /// Whether the caller holds `permission` (of the users, roles, groups and settings
    /// modules): the contract this matrix checks the routes against.
    fn holds(self, permission: &str) -> bool {
        match self {
            Caller::Anonymous | Caller::Service | Caller::Viewer | Caller::Author => false,
            Caller::Editor => ["users.view", "groups.view"].contains(&permission),
            Caller::Admin => true,
            Caller::Custom | Caller::Inherited => AUDITOR.contains(&permission),
        }
    }
}

/// Who a route lets through.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Any signed-in user (their own record, their own settings).
    SignedIn,
    /// Signed-in users holding this permission; 403 for the others.
    Needs(&'static str),
    /// Only the service credential; a user's token, even an Admin's, is a 401.
    ServiceOnly,
    /// Asked of this caller alone (an unknown id is the same 404 whoever asks).
    Only(Caller),
}

impl Rule {
    /// The status `caller` must get from a route that answers `ok` when it lets one through;
    /// `None` when the caller is not asked.
    fn expected(self, caller: Caller, ok: u16) -> Option<u16> {
        match (self, caller) {
            (Rule::Only(who), caller) => (who == caller).then_some(ok),
            (Rule::ServiceOnly, Caller::Service) => Some(ok),
            (Rule::ServiceOnly, _) => Some(401),
            (_, Caller::Anonymous | Caller::Service) => Some(401),
            (Rule::SignedIn, _) => Some(ok),
            (Rule::Needs(permission), caller) if caller.holds(permission) => Some(ok),
            (Rule::Needs(_), _) => Some(403),
        }
    }
}

/// One route as the matrix calls it. `path` and the strings in `body` may hold placeholders,
/// filled in per call by [`Matrix::fill`].
struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    rule: Rule,
    /// What a caller the rule lets through gets.
    ok: u16,
}

impl Case {
    fn answers(self, ok: u16) -> Self {
        Self { ok, ..self }
    }
}

fn get(path: &'static str, rule: Rule) -> Case {
    Case {
        method: Method::GET,
        path,
        body: None,
        rule,
        ok: 200,
    }
}

fn post(path: &'static str, body: Value, rule: Rule) -> Case {
    Case {
        method: Method::POST,
        path,
        body: Some(body),
        rule,
        ok: 201,
    }
}

fn put(path: &'static str, body: Value, rule: Rule) -> Case {
    Case {
        method: Method::PUT,
        path,
        body: Some(body),
        rule,
        ok: 200,
    }
}

fn delete(path: &'static str, rule: Rule) -> Case {
    Case {
        method: Method::DELETE,
        path,
        body: None,
        rule,
        ok: 204,
    }
}

/// Every route, with who it lets through. Placeholders: `{me}` the caller's own id (a
/// bystander's for callers without one), `{other}` the bystander, `{role}` the Auditor role,
/// `{group}` the Dept group, `{viewer_role}`/`{editor_role}` the system roles, `{users_view}`
/// the users.view permission, `{missing}` an id nothing has, `{unique}` a fresh suffix, and
/// `{new_user}`/`{new_role}`/`{new_group}`/`{new_setting}` a target created by the Admin for
/// this one call — so a write that succeeds (rightly or not) changes nothing another call reads.
fn cases() -> Vec<Case> {
    use Rule::{Needs, Only, ServiceOnly, SignedIn};
    let admin = Only(Caller::Admin);
    vec![
        // Users.
        get("/api/v1/users", Needs("users.view")),
        post(
            "/api/v1/users",
            json!({ "email": "matrix.{unique}@example.com", "first_name": "Nell", "last_name": "New" }),
            Needs("users.create"),
        ),
        get("/api/v1/users/{other}", Needs("users.view")),
        get("/api/v1/users/{me}", SignedIn),
        put(
            "/api/v1/users/{new_user}",
            json!({ "job_title": "x" }),
            Needs("users.edit"),
        ),
        put("/api/v1/users/{me}", json!({ "job_title": "x" }), SignedIn),
        delete("/api/v1/users/{new_user}", Needs("users.delete")),
        get("/api/v1/users/{other}/roles", Needs("users.view")),
        get("/api/v1/users/{me}/roles", SignedIn),
        put(
            "/api/v1/users/{new_user}/roles",
            json!({ "role_ids": ["{viewer_role}", "{editor_role}"] }),
            Needs("users.manage"),
        ),
        get("/api/v1/users/{other}/permissions", Needs("users.view")),
        get("/api/v1/users/{me}/permissions", SignedIn),
        get(
            "/api/v1/users/{other}/notifications/preferences",
            Needs("users.view"),
        ),
        get("/api/v1/users/{me}/notifications/preferences", SignedIn),
        put(
            "/api/v1/users/{new_user}/notifications/preferences",
            json!({ "digest": "daily" }),
            Needs("users.edit"),
        ),
        put(
            "/api/v1/users/{me}/notifications/preferences",
            json!({ "digest": "daily" }),
            SignedIn,
        ),
        // Roles.
        get("/api/v1/roles", Needs("roles.view")),
        get("/api/v1/roles/{role}", Needs("roles.view")),
        get("/api/v1/roles/{role}/permissions", Needs("roles.view")),
        get("/api/v1/roles/{role}/members", Needs("roles.view")),
        post(
            "/api/v1/roles",
            json!({ "name": "Spare {unique}", "description": "A role the matrix makes",
                    "permission_ids": ["{users_view}"] }),
            Needs("roles.create"),
        ),
        put(
            "/api/v1/roles/{new_role}",
            json!({ "description": "Changed by the matrix" }),
            Needs("roles.edit"),
        ),
        delete("/api/v1/roles/{new_role}", Needs("roles.delete")),
        put(
            "/api/v1/roles/{new_role}/permissions",
            json!({ "permission_ids": ["{users_view}"] }),
            Needs("roles.manage"),
        ),
        // Permissions.
        get("/api/v1/permissions", Needs("roles.view")),
        get("/api/v1/permissions/modules", Needs("roles.view")),
        post(
            "/api/v1/permissions",
            json!({ "module": "articles", "name": "articles.matrix_{unique}", "view": true }),
            Needs("roles.manage"),
        ),
        // Groups.
        get("/api/v1/groups", Needs("groups.view")),
        get("/api/v1/groups/{group}", Needs("groups.view")),
        get("/api/v1/groups/{group}/members", Needs("groups.view")),
        get("/api/v1/groups/{group}/roles", Needs("groups.view")),
        post(
            "/api/v1/groups",
            json!({ "name": "Spare {unique}", "description": "A group the matrix makes" }),
            Needs("groups.create"),
        ),
        put(
            "/api/v1/groups/{new_group}",
            json!({ "description": "Changed by the matrix" }),
            Needs("groups.edit"),
        ),
        delete("/api/v1/groups/{new_group}", Needs("groups.delete")),
        put(
            "/api/v1/groups/{new_group}/members",
            json!({ "add": ["{other}"], "remove": [] }),
            Needs("groups.manage"),
        ),
        put(
            "/api/v1/groups/{new_group}/roles",
            json!({ "role_ids": ["{viewer_role}"] }),
            Needs("groups.manage"),
        ),
        // Settings.
        get("/api/v1/settings/system", Needs("settings.view")),
        get("/api/v1/settings/system/site_name", Needs("settings.view")),
        get(
            "/api/v1/settings/system/site_name/history",
            Needs("settings.view"),
        ),
        post(
            "/api/v1/settings/system",
            json!({ "key": "matrix.k{unique}", "value": 1, "value_type": "integer" }),
            Needs("settings.create"),
        ),
        put(
            "/api/v1/settings/system/{new_setting}",
            json!({ "value": 2 }),
            Needs("settings.edit"),
        ),
        get("/api/v1/settings/user", SignedIn),
        put(
            "/api/v1/settings/user",
            json!({ "theme": "dark" }),
            SignedIn,
        ),
        get("/api/v1/users/{other}/settings", Needs("users.view")),
        get("/api/v1/users/{me}/settings", SignedIn),
        // The bystander, not a disposable user: the settings service knows only the accounts
        // its worker has heard of.
        put(
            "/api/v1/users/{other}/settings",
            json!({ "theme": "dark" }),
            Needs("users.edit"),
        ),
        put(
            "/api/v1/users/{me}/settings",
            json!({ "theme": "dark" }),
            SignedIn,
        ),
        // Internal.
        get("/api/v1/internal/users/{other}", ServiceOnly),
        get("/api/v1/internal/users/{other}/permissions", ServiceOnly),
        // Unknown ids.
        get("/api/v1/users/{missing}", admin).answers(404),
        get("/api/v1/users/{missing}/roles", admin).answers(404),
        get("/api/v1/users/{missing}/permissions", admin).answers(404),
        get("/api/v1/users/{missing}/notifications/preferences", admin).answers(404),
        get("/api/v1/users/{missing}/settings", admin).answers(404),
        get("/api/v1/roles/{missing}", admin).answers(404),
        get("/api/v1/roles/{missing}/permissions", admin).answers(404),
        get("/api/v1/roles/{missing}/members", admin).answers(404),
        get("/api/v1/groups/{missing}", admin).answers(404),
        get("/api/v1/groups/{missing}/members", admin).answers(404),
        get("/api/v1/groups/{missing}/roles", admin).answers(404),
        get("/api/v1/settings/system/matrix.missing", admin).answers(404),
        get("/api/v1/settings/system/matrix.missing/history", admin).answers(404),
        get("/api/v1/internal/users/{missing}", Only(Caller::Service)).answers(404),
        get(
            "/api/v1/internal/users/{missing}/permissions",
            Only(Caller::Service),
        )
        .answers(404),
    ]
}

/// The placeholders [`Matrix::fill`] knows.
const PLACEHOLDERS: [&str; 13] = [
    "{me}",
    "{other}",
    "{role}",
    "{group}",
    "{viewer_role}",
    "{editor_role}",
    "{users_view}",
    "{missing}",
    "{unique}",
    "{new_user}",
    "{new_role}",
    "{new_group}",
    "{new_setting}",
];

/// One stack with a signed-in user per kind of caller, and what the cases point at.
struct Matrix {
    app: TestApp,
    sessions: HashMap<Caller, (Session, Uuid)>,
    admin_token: String,
    bystander: Uuid,
    auditor: Uuid,
    dept: Uuid,
    viewer_role: Uuid,
    editor_role: Uuid,
    users_view: Uuid,
}

fn id_in(reply: &Reply) -> Uuid {
    reply.body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {}", reply.text))
}

#[track_caller]
fn assert_status(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.text);
}

impl Matrix {
    async fn build() -> Self {
        let app = TestApp::spawn().await;
        // What `viewer()` and `user_with_role()` do, batched: each of those waits for the
        // workers on its own, and every wait costs seconds.
        let mut people = Vec::new();
        for name in ["a", "v", "e", "b", "c", "i"] {
            people.push(app.signed_in_user(name).await);
        }
        app.settle().await;
        let [admin, viewer, editor, bystander, custom, inherited] =
            <[Session; 6]>::try_from(people).unwrap();
        for (session, role) in [(&admin, "Admin"), (&editor, "Editor")] {
            lectern_users::bootstrap::grant_role(&app.stack.users, &session.email, role)
                .await
                .expect("granting a system role");
        }
        app.settle().await;
        let admin = app.refresh(&admin).await;
        let token = admin.access_token.clone();
        let bystander = app.user_id(&bystander.email).await;
        let (custom_id, inherited_id) = (
            app.user_id(&custom.email).await,
            app.user_id(&inherited.email).await,
        );
        let system_role = |name: &'static str| {
            let app = &app;
            async move {
                app.db()
                    .await
                    .query_one(
                        "SELECT id FROM users.roles WHERE name = $1 AND is_system",
                        &[&name],
                    )
                    .await
                    .unwrap()
                    .get::<_, Uuid>(0)
            }
        };
        let (viewer_role, editor_role) = (system_role("Viewer").await, system_role("Editor").await);

        // Auditor: the view permission of users, roles, groups and settings.
        let mut auditor_permissions = Vec::new();
        for name in AUDITOR {
            let module = name.split('.').next().unwrap();
            let list = app
                .get(
                    &format!("/api/v1/permissions?module={module}"),
                    Some(&token),
                )
                .await;
            assert_status(&list, StatusCode::OK, "listing a module's permissions");
            let permission = list.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("no permission {name} in {}", list.text));
            auditor_permissions.push(permission["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        }
        let users_view = auditor_permissions[0];
        let created = app
            .post_as(
                "/api/v1/roles",
                json!({ "name": "Auditor", "description": "Reads the directory, roles, groups and settings",
                        "permission_ids": auditor_permissions }),
                &token,
            )
            .await;
        assert_status(&created, StatusCode::CREATED, "creating Auditor");
        let auditor = id_in(&created);

        // Custom holds it directly.
        let assigned = app
            .put(
                &format!("/api/v1/users/{custom_id}/roles"),
                json!({ "role_ids": [viewer_role, auditor] }),
                &token,
            )
            .await;
        assert_status(&assigned, StatusCode::OK, "assigning Auditor");

        // Inherited holds it through Dept, the parent of the Team they are in.
        let dept = app
            .post_as("/api/v1/groups", json!({ "name": "Dept" }), &token)
            .await;
        assert_status(&dept, StatusCode::CREATED, "creating Dept");
        let dept = id_in(&dept);
        let given = app
            .put(
                &format!("/api/v1/groups/{dept}/roles"),
                json!({ "role_ids": [auditor] }),
                &token,
            )
            .await;
        assert_status(&given, StatusCode::OK, "giving Dept the Auditor role");
        let team = app
            .post_as(
                "/api/v1/groups",
                json!({ "name": "Team", "parent_id": dept }),
                &token,
            )
            .await;
        assert_status(&team, StatusCode::CREATED, "creating Team under Dept");
        let team = id_in(&team);
        let joined = app
            .put(
                &format!("/api/v1/groups/{team}/members"),
                json!({ "add": [inherited_id] }),
                &token,
            )
            .await;
        assert_status(&joined, StatusCode::OK, "adding a member to Team");

        app.settle().await;
        let viewer = app.refresh(&viewer).await;
        let editor = app.refresh(&editor).await;
        let custom = app.refresh(&custom).await;
        let inherited = app.refresh(&inherited).await;

        let mut sessions = HashMap::new();
        for (caller, session) in [
            (Caller::Viewer, viewer),
            (Caller::Editor, editor),
            (Caller::Admin, admin),
            (Caller::Custom, custom),
            (Caller::Inherited, inherited),
        ] {
            let id = app.user_id(&session.email).await;
            sessions.insert(caller, (session, id));
        }
        Self {
            app,
            sessions,
            admin_token: token,
            bystander,
            auditor,
            dept,
            viewer_role,
            editor_role,
            users_view,
        }
    }

    /// Creates a disposable target as the Admin; its id (or key) from `field` of the answer.
    async fn spare(&self, path: &str, body: Value, field: &str) -> Result<String, String> {
        let reply = self.app.post_as(path, body, &self.admin_token).await;
        match reply.body[field].as_str() {
            Some(id) if reply.status == StatusCode::CREATED => Ok(id.to_string()),
            _ => Err(format!(
                "could not create a disposable target (POST {path} answered {}: {})",
                reply.status, reply.text
            )),
        }
    }

    async fn value_of(&self, placeholder: &str, caller: Caller) -> Result<String, String> {
        let unique = || Uuid::new_v4().simple().to_string()[..12].to_string();
        Ok(match placeholder {
            "{me}" => self
                .sessions
                .get(&caller)
                .map_or(self.bystander, |(_, id)| *id)
                .to_string(),
            "{other}" => self.bystander.to_string(),
            "{role}" => self.auditor.to_string(),
            "{group}" => self.dept.to_string(),
            "{viewer_role}" => self.viewer_role.to_string(),
            "{editor_role}" => self.editor_role.to_string(),
            "{users_view}" => self.users_view.to_string(),
            "{missing}" => Uuid::new_v4().to_string(),
            "{unique}" => unique(),
            "{new_user}" => {
                let body = json!({ "email": self.app.email("spare"), "first_name": "Spare", "last_name": "User" });
                self.spare("/api/v1/users", body, "id").await?
            }
            "{new_role}" => {
                let body = json!({ "name": format!("Spare {}", unique()) });
                self.spare("/api/v1/roles", body, "id").await?
            }
            "{new_group}" => {
                let body = json!({ "name": format!("Spare {}", unique()) });
                self.spare("/api/v1/groups", body, "id").await?
            }
            "{new_setting}" => {
                let body = json!({ "key": format!("matrix.k{}", unique()), "value": 1, "value_type": "integer" });
                self.spare("/api/v1/settings/system", body, "key").await?
            }
            other => unreachable!("unknown placeholder {other}"),
        })
    }

    /// The case's path and body for one call by `caller`, placeholders filled in (one value
    /// per placeholder, shared by path and body).
    async fn fill(&self, case: &Case, caller: Caller) -> Result<(String, Option<Value>), String> {
        let mut path = case.path.to_string();
        let mut body = case.body.as_ref().map(Value::to_string);
        for placeholder in PLACEHOLDERS {
            if path.contains(placeholder) || body.as_ref().is_some_and(|b| b.contains(placeholder))
            {
                let value = self.value_of(placeholder, caller).await?;
                path = path.replace(placeholder, &value);
                body = body.map(|b| b.replace(placeholder, &value));
            }
        }
        let body = body.map(|b| serde_json::from_str(&b).expect("a body stays JSON"));
        Ok((path, body))
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>, caller: Caller) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", "lectern-tests/1.0");
        if let Some((session, _)) = self.sessions.get(&caller) {
            request = request.header("authorization", format!("Bearer {}", session.access_token));
        }
        if caller == Caller::Service {
            request = request.header("x-lectern-service-token", self.app.service_token());
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.app.send_raw(request, [10, 0, 0, 1]).await
    }
}

/// `None` when the reply is what was expected (an error as problem+json), otherwise what came.
fn mismatch(reply: &Reply, expected: u16) -> Option<String> {
    let got = reply.status.as_u16();
    let is_problem = reply.header("content-type") == Some("application/problem+json")
        && reply.body["status"] == got;
    let excerpt = || reply.text.chars().take(160).collect::<String>();
    if got != expected {
        Some(format!("got {got}: {}", excerpt()))
    } else if got >= 400 && !is_problem {
        Some(format!("got {got}, but not as problem+json: {}", excerpt()))
    } else {
        None
    }
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_as_the_permission_model_says() {
    let matrix = Matrix::build().await;

    // One call at a time: a write holds its connection while publishing takes another, so
    // parallel writes would queue for the stack's small pool.
    let mut asked = 0;
    let mut mismatches = Vec::new();
    for case in cases() {
        for caller in CALLERS {
            let Some(expected) = case.rule.expected(caller, case.ok) else {
                continue;
            };
            asked += 1;
            let got = match matrix.fill(&case, caller).await {
                Ok((path, body)) => {
                    let reply = matrix.call(case.method.clone(), &path, body, caller).await;
                    mismatch(&reply, expected)
                }
                Err(setup) => Some(setup),
            };
            if let Some(got) = got {
                mismatches.push(format!(
                    "  {:<58} as {:<9} expected {expected}, {got}",
                    format!("{} {}", case.method, case.path),
                    caller.name()
                ));
            }
        }
    }

    assert!(
        mismatches.is_empty(),
        "{} of {asked} answers differ from the permission model:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

// The content service: articles, their blocks, SEO, tags and history, the workflow,
// categories, tags and the internal read. Its answers depend on more than a permission (who
// wrote the article, its status), so each row spells out every caller's status.

/// The callers of the content matrix, in the order of [`ContentCase::answers`]. The matrix has
/// no Moderator; Custom and Inherited hold nothing of the content modules beyond Viewer's.
const CONTENT_CALLERS: [Caller; 6] = [
    Caller::Anonymous,
    Caller::Viewer,
    Caller::Editor,
    Caller::Author,
    Caller::Admin,
    Caller::Service,
];

/// What the custom role Author grants.
const AUTHOR: [&str; 2] = ["articles.view", "articles.create"];

/// The tag every article fixture may be given by name (it exists, so setting it needs no
/// tags.create).
const SHARED_TAG: &str = "Matrix shared";

/// What a content case's `{id}` (and `{slug}`, `{block}`) is: a fixture made for that one
/// call, so a write that succeeds (rightly or not) changes nothing another call reads.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// No fixture.
    Nothing,
    /// A draft (one paragraph block) by the author: theirs, an editor's to see and change,
    /// hidden from everyone else.
    Draft,
    /// A draft by the Admin: someone else's, even for the author.
    OthersDraft,
    /// A published public article by the Admin: everyone reads it, only editors change it.
    Published,
    /// An approved article by the author (submitted by them, approved by the Admin).
    Approved,
    /// A top-level category, without rules, by the Admin.
    Category,
    /// A tag by the Admin.
    Tag,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Nothing => "",
            Target::Draft => "[author's draft]",
            Target::OthersDraft => "[other's draft]",
            Target::Published => "[published]",
            Target::Approved => "[approved]",
            Target::Category => "[category]",
            Target::Tag => "[tag]",
        }
    }
}

/// One content route as the matrix calls it, with the status each caller must get.
/// Placeholders: `{id}`, `{slug}` and `{block}` of the target, `{unique}` a fresh suffix,
/// `{future}` a time tomorrow and `{missing}` an id nothing has.
struct ContentCase {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    target: Target,
    /// In the order of [`CONTENT_CALLERS`]: anonymous, Viewer, Editor, author, Admin, service.
    answers: [u16; 6],
}

fn on(
    method: Method,
    path: &'static str,
    body: Option<Value>,
    target: Target,
    answers: [u16; 6],
) -> ContentCase {
    ContentCase {
        method,
        path,
        body,
        target,
        answers,
    }
}

/// Every content route (each of the 34 at least once), against the fixtures whose status and
/// author decide the answer.
fn content_cases() -> Vec<ContentCase> {
    use Target::{Approved, Category, Draft, Nothing, OthersDraft, Published, Tag};
    let (get, put, post, delete) = (Method::GET, Method::PUT, Method::POST, Method::DELETE);
    // Who sees and changes what: a published public article is everyone's to read, the
    // service credential on a public route is no user (as anonymous); a draft exists only
    // for its author and editors (404 for the rest, signed in or not); a write needs a user
    // (401) who sees the article (404) and may change it (403).
    let everyone = [200; 6];
    let nobody = [404; 6];
    // anonymous, Viewer, Editor, author, Admin, service
    let read_own_draft = [404, 404, 200, 200, 200, 404];
    let read_others_draft = [404, 404, 200, 404, 200, 404];
    let write_own_draft = [401, 404, 200, 200, 200, 401];
    let write_others_draft = [401, 404, 200, 404, 200, 401];
    let write_published = [401, 403, 200, 403, 200, 401];
    let history_of_published = [401, 403, 200, 403, 200, 401];
    let service_only = [401, 401, 401, 401, 401, 200];
    let editors_create = [401, 403, 201, 403, 201, 401];
    let editors_change = [401, 403, 200, 403, 200, 401];
    let editors_delete = [401, 403, 204, 403, 204, 401];
    let managers = [401, 403, 403, 403, 200, 401];
    let created = |answers: [u16; 6]| answers.map(|a| if a == 200 { 201 } else { a });
    let deleted = |answers: [u16; 6]| answers.map(|a| if a == 200 { 204 } else { a });
    let paragraph =
        |text: &str| json!({ "block_type": "paragraph", "content": format!("<p>{text}</p>") });
    let title = || Some(json!({ "title": "Changed by the matrix" }));
    let blocks = || Some(json!({ "blocks": [paragraph("Replaced by the matrix")] }));
    let block = || Some(paragraph("Added by the matrix"));
    let block_change = || Some(json!({ "content": "<p>Changed by the matrix</p>" }));
    let seo = || Some(json!({ "meta_title": "Changed by the matrix" }));
    let tags = || Some(json!({ "tags": [SHARED_TAG] }));
    let submit = || Some(json!({ "status": "pending_review" }));
    vec![
        // Articles.
        on(get.clone(), "/api/v1/articles", None, Nothing, everyone),
        on(
            post.clone(),
            "/api/v1/articles",
            Some(json!({ "title": "Matrix {unique}" })),
            Nothing,
            [401, 403, 201, 201, 201, 401],
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}",
            None,
            Published,
            everyone,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}",
            None,
            OthersDraft,
            read_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}",
            title(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}",
            title(),
            OthersDraft,
            write_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}",
            title(),
            Published,
            write_published,
        ),
        on(
            delete.clone(),
            "/api/v1/articles/{id}",
            None,
            Draft,
            deleted(write_own_draft),
        ),
        on(
            delete.clone(),
            "/api/v1/articles/{id}",
            None,
            OthersDraft,
            deleted(write_others_draft),
        ),
        // A published article is archived (200), not deleted; articles.delete.
        on(
            delete.clone(),
            "/api/v1/articles/{id}",
            None,
            Published,
            write_published,
        ),
        on(
            get.clone(),
            "/api/v1/articles/slug/{slug}",
            None,
            Published,
            everyone,
        ),
        // Only a published article is read by its slug, even by its author.
        on(
            get.clone(),
            "/api/v1/articles/slug/{slug}",
            None,
            Draft,
            nobody,
        ),
        // The workflow: submitting is the author's (or an editor's); every other move needs
        // articles.publish.
        on(
            put.clone(),
            "/api/v1/articles/{id}/status",
            submit(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/status",
            submit(),
            OthersDraft,
            write_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/status",
            Some(json!({ "status": "archived" })),
            Published,
            write_published,
        ),
        // An approved article exists for its author and editors only.
        on(
            post.clone(),
            "/api/v1/articles/{id}/publish",
            None,
            Approved,
            [401, 404, 200, 403, 200, 401],
        ),
        // Schedule asks for articles.publish before it looks the article up.
        on(
            post.clone(),
            "/api/v1/articles/{id}/schedule",
            Some(json!({ "scheduled_publish_at": "{future}" })),
            Approved,
            [401, 403, 200, 403, 200, 401],
        ),
        // Blocks.
        on(
            get.clone(),
            "/api/v1/articles/{id}/blocks",
            None,
            Published,
            everyone,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/blocks",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks",
            blocks(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks",
            blocks(),
            OthersDraft,
            write_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks",
            blocks(),
            Published,
            write_published,
        ),
        on(
            post.clone(),
            "/api/v1/articles/{id}/blocks",
            block(),
            Draft,
            created(write_own_draft),
        ),
        on(
            post.clone(),
            "/api/v1/articles/{id}/blocks",
            block(),
            Published,
            created(write_published),
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks/{block}",
            block_change(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks/{block}",
            block_change(),
            Published,
            write_published,
        ),
        on(
            delete.clone(),
            "/api/v1/articles/{id}/blocks/{block}",
            None,
            Draft,
            deleted(write_own_draft),
        ),
        on(
            delete.clone(),
            "/api/v1/articles/{id}/blocks/{block}",
            None,
            OthersDraft,
            deleted(write_others_draft),
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks/order",
            Some(json!({ "block_ids": ["{block}"] })),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/blocks/order",
            Some(json!({ "block_ids": ["{block}"] })),
            Published,
            write_published,
        ),
        // SEO.
        on(
            get.clone(),
            "/api/v1/articles/{id}/seo",
            None,
            Published,
            everyone,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/seo",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/seo",
            seo(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/seo",
            seo(),
            OthersDraft,
            write_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/seo",
            seo(),
            Published,
            write_published,
        ),
        // The article's tags.
        on(
            get.clone(),
            "/api/v1/articles/{id}/tags",
            None,
            Published,
            everyone,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/tags",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/tags",
            tags(),
            Draft,
            write_own_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/tags",
            tags(),
            OthersDraft,
            write_others_draft,
        ),
        on(
            put.clone(),
            "/api/v1/articles/{id}/tags",
            tags(),
            Published,
            write_published,
        ),
        // History: the author's and editors', even of a published article.
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions",
            None,
            Published,
            history_of_published,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions",
            None,
            OthersDraft,
            read_others_draft,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions/1",
            None,
            Published,
            history_of_published,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions/1",
            None,
            Draft,
            read_own_draft,
        ),
        on(
            get.clone(),
            "/api/v1/articles/{id}/versions/1",
            None,
            OthersDraft,
            read_others_draft,
        ),
        on(
            post.clone(),
            "/api/v1/articles/{id}/restore/1",
            None,
            Draft,
            write_own_draft,
        ),
        on(
            post.clone(),
            "/api/v1/articles/{id}/restore/1",
            None,
            OthersDraft,
            write_others_draft,
        ),
        on(
            post.clone(),
            "/api/v1/articles/{id}/restore/1",
            None,
            Published,
            write_published,
        ),
        // Internal: the service credential only, whatever the article's status.
        on(
            get.clone(),
            "/api/v1/internal/articles/{id}",
            None,
            Draft,
            service_only,
        ),
        on(
            get.clone(),
            "/api/v1/internal/articles/{id}",
            None,
            Published,
            service_only,
        ),
        // Categories.
        on(get.clone(), "/api/v1/categories", None, Nothing, everyone),
        on(
            post.clone(),
            "/api/v1/categories",
            Some(json!({ "name": "Matrix {unique}" })),
            Nothing,
            editors_create,
        ),
        on(
            get.clone(),
            "/api/v1/categories/{id}",
            None,
            Category,
            everyone,
        ),
        on(
            put.clone(),
            "/api/v1/categories/{id}",
            Some(json!({ "description": "Changed by the matrix" })),
            Category,
            editors_change,
        ),
        on(
            delete.clone(),
            "/api/v1/categories/{id}",
            None,
            Category,
            editors_delete,
        ),
        on(
            get.clone(),
            "/api/v1/categories/{id}/access",
            None,
            Category,
            managers,
        ),
        on(
            put.clone(),
            "/api/v1/categories/{id}/access",
            Some(json!({ "rules": [] })),
            Category,
            managers,
        ),
        // Tags.
        on(get.clone(), "/api/v1/tags", None, Nothing, everyone),
        on(
            post.clone(),
            "/api/v1/tags",
            Some(json!({ "name": "Matrix {unique}" })),
            Nothing,
            editors_create,
        ),
        on(get.clone(), "/api/v1/tags/{id}", None, Tag, everyone),
        on(
            delete.clone(),
            "/api/v1/tags/{id}",
            None,
            Tag,
            editors_delete,
        ),
        // Unknown ids: the same 404 whoever may ask.
        on(
            get.clone(),
            "/api/v1/articles/{missing}",
            None,
            Nothing,
            nobody,
        ),
        on(
            get,
            "/api/v1/internal/articles/{missing}",
            None,
            Nothing,
            [401, 401, 401, 401, 401, 404],
        ),
        on(
            put,
            "/api/v1/articles/{missing}",
            title(),
            Nothing,
            [401, 404, 404, 404, 404, 401],
        ),
        on(
            post,
            "/api/v1/articles/{missing}/publish",
            None,
            Nothing,
            [401, 404, 404, 404, 404, 401],
        ),
        on(
            delete,
            "/api/v1/tags/{missing}",
            None,
            Nothing,
            [401, 403, 404, 403, 404, 401],
        ),
    ]
}

/// A content fixture: what the placeholders of one call stand for.
#[derive(Debug, Default)]
struct Fixture {
    id: String,
    slug: String,
    block: String,
}

impl Matrix {
    /// Adds the author: a fresh account holding Viewer and the custom role Author.
    async fn add_author(&mut self) {
        let session = self.app.signed_in_user("w").await;
        self.app.settle().await;
        let list = self
            .app
            .get(
                "/api/v1/permissions?module=articles",
                Some(&self.admin_token),
            )
            .await;
        assert_status(&list, StatusCode::OK, "listing the articles permissions");
        let permissions: Vec<Value> = AUTHOR
            .iter()
            .map(|name| {
                list.body["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == *name)
                    .unwrap_or_else(|| panic!("no permission {name} in {}", list.text))["id"]
                    .clone()
            })
            .collect();
        let created = self
            .app
            .post_as(
                "/api/v1/roles",
                json!({ "name": "Author", "description": "Writes their own drafts",
                        "permission_ids": permissions }),
                &self.admin_token,
            )
            .await;
        assert_status(&created, StatusCode::CREATED, "creating Author");
        let author_role = id_in(&created);
        let id = self.app.user_id(&session.email).await;
        let assigned = self
            .app
            .put(
                &format!("/api/v1/users/{id}/roles"),
                json!({ "role_ids": [self.viewer_role, author_role] }),
                &self.admin_token,
            )
            .await;
        assert_status(&assigned, StatusCode::OK, "assigning Author");
        self.app.settle().await;
        let session = self.app.refresh(&session).await;
        self.sessions.insert(Caller::Author, (session, id));
    }

    /// One step of making a fixture, as `who`; its answer, or why it failed.
    async fn make(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        who: Caller,
        status: u16,
    ) -> Result<Reply, String> {
        let reply = self.call(method.clone(), path, body, who).await;
        if reply.status.as_u16() == status {
            Ok(reply)
        } else {
            Err(format!(
                "could not make the fixture ({method} {path} as {} answered {}: {})",
                who.name(),
                reply.status,
                reply.text
            ))
        }
    }

    /// A new draft by `who`, with one paragraph block.
    async fn draft_by(&self, who: Caller) -> Result<Fixture, String> {
        let unique = Uuid::new_v4().simple().to_string()[..12].to_string();
        let body = json!({ "title": format!("Matrix {unique}"),
                           "blocks": [{ "block_type": "paragraph", "content": "<p>Matrix body</p>" }] });
        let created = self
            .make(Method::POST, "/api/v1/articles", Some(body), who, 201)
            .await?;
        let field = |value: &Value| value.as_str().unwrap_or_default().to_string();
        Ok(Fixture {
            id: field(&created.body["id"]),
            slug: field(&created.body["slug"]),
            block: field(&created.body["blocks"][0]["id"]),
        })
    }

    /// Moves article `id` to `status`, as `who`.
    async fn move_to(&self, id: &str, status: &str, who: Caller) -> Result<(), String> {
        let path = format!("/api/v1/articles/{id}/status");
        self.make(
            Method::PUT,
            &path,
            Some(json!({ "status": status })),
            who,
            200,
        )
        .await
        .map(drop)
    }

    async fn fixture(&self, target: Target) -> Result<Fixture, String> {
        let unique = || Uuid::new_v4().simple().to_string()[..12].to_string();
        let id_only = |reply: Reply| Fixture {
            id: reply.body["id"].as_str().unwrap_or_default().to_string(),
            ..Fixture::default()
        };
        Ok(match target {
            Target::Nothing => Fixture::default(),
            Target::Draft => self.draft_by(Caller::Author).await?,
            Target::OthersDraft => self.draft_by(Caller::Admin).await?,
            Target::Published => {
                let article = self.draft_by(Caller::Admin).await?;
                self.move_to(&article.id, "pending_review", Caller::Admin)
                    .await?;
                self.move_to(&article.id, "approved", Caller::Admin).await?;
                let path = format!("/api/v1/articles/{}/publish", article.id);
                self.make(Method::POST, &path, None, Caller::Admin, 200)
                    .await?;
                article
            }
            Target::Approved => {
                let article = self.draft_by(Caller::Author).await?;
                self.move_to(&article.id, "pending_review", Caller::Author)
                    .await?;
                self.move_to(&article.id, "approved", Caller::Admin).await?;
                article
            }
            Target::Category => id_only(
                self.make(
                    Method::POST,
                    "/api/v1/categories",
                    Some(json!({ "name": format!("Matrix {}", unique()) })),
                    Caller::Admin,
                    201,
                )
                .await?,
            ),
            Target::Tag => id_only(
                self.make(
                    Method::POST,
                    "/api/v1/tags",
                    Some(json!({ "name": format!("Matrix {}", unique()) })),
                    Caller::Admin,
                    201,
                )
                .await?,
            ),
        })
    }

    /// The case's path and body for one call, on a fixture made for it.
    async fn fill_content(&self, case: &ContentCase) -> Result<(String, Option<Value>), String> {
        let fixture = self.fixture(case.target).await?;
        let future = (chrono::Utc::now() + chrono::Duration::days(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let values = [
            ("{id}", fixture.id),
            ("{slug}", fixture.slug),
            ("{block}", fixture.block),
            (
                "{unique}",
                Uuid::new_v4().simple().to_string()[..12].to_string(),
            ),
            ("{future}", future),
            ("{missing}", Uuid::new_v4().to_string()),
        ];
        let fill = |text: &str| {
            values
                .iter()
                .fold(text.to_string(), |text, (placeholder, value)| {
                    text.replace(placeholder, value)
                })
        };
        let body = case
            .body
            .as_ref()
            .map(|body| serde_json::from_str(&fill(&body.to_string())).expect("a body stays JSON"));
        Ok((fill(case.path), body))
    }
}

#[tokio::test]
async fn every_content_route_answers_each_kind_of_caller_as_the_access_rules_say() {
    let mut matrix = Matrix::build().await;
    matrix.add_author().await;
    let shared = matrix
        .app
        .post_as(
            "/api/v1/tags",
            json!({ "name": SHARED_TAG }),
            &matrix.admin_token,
        )
        .await;
    assert_status(&shared, StatusCode::CREATED, "creating the shared tag");

    // One call at a time, each on a fixture of its own.
    let mut asked = 0;
    let mut mismatches = Vec::new();
    for case in content_cases() {
        for (caller, expected) in CONTENT_CALLERS.into_iter().zip(case.answers) {
            asked += 1;
            let got = match matrix.fill_content(&case).await {
                Ok((path, body)) => {
                    let reply = matrix.call(case.method.clone(), &path, body, caller).await;
                    mismatch(&reply, expected)
                }
                Err(setup) => Some(setup),
            };
            if let Some(got) = got {
                mismatches.push(format!(
                    "  {:<58} as {:<9} expected {expected}, {got}",
                    format!("{} {} {}", case.method, case.path, case.target.name()),
                    caller.name()
                ));
            }
        }
    }

    assert!(
        mismatches.is_empty(),
        "{} of {asked} answers differ from the content access rules:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
