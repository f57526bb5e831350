//! Who may read and change which article.
//!
//! Three things decide, and every route asks the same statement fragments so that a list, a
//! search and a single read can never disagree:
//! - **Category rules.** A category with rules in `category_group_access` is restricted, and
//!   so is everything below it (the nearest restricted category on the path, its `gate_id`,
//!   decides): its articles exist only for members of a group with `can_view` (or
//!   `can_edit`), and only members of a group with `can_edit` change them. The token's `groups` already lists the
//!   caller's groups and all their ancestors, so a rule on a department covers its teams.
//!   Holders of `categories.manage` (Admin) administer every category. Anyone else gets 404,
//!   never 403: a restricted article's existence is itself restricted.
//! - **Status and visibility.** A published `public` article is for everyone, signed in or
//!   not; a published `restricted` one for members of a `can_view` group of its category;
//!   everything else (drafts, reviews, `private`) for its author and for editors
//!   (`articles.edit`).
//! - **Ownership.** Authors change their own drafts with `articles.create`; changing anyone
//!   else's article, or one past draft, needs `articles.edit`.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use lectern_shared::{
    ApiError,
    authz::{Action, Module},
    db::Binds,
    extract::{AuthUser, MaybeAuthUser},
    jwt::JwtVerifier,
};
use std::sync::Arc;
use uuid::Uuid;

/// The caller as the content service sees them; anonymous callers are readers too.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    pub user: Option<AuthUser>,
    /// The caller's groups with their ancestors (empty when anonymous).
    pub groups: Vec<Uuid>,
    /// `articles.edit`: sees and changes every article its category rules allow.
    pub editor: bool,
    /// `categories.manage`: category rules do not apply.
    pub bypass: bool,
}

impl Reader {
    pub fn of(user: Option<AuthUser>) -> Self {
        let groups = user
            .as_ref()
            .map(|u| u.claims.groups.clone())
            .unwrap_or_default();
        let editor = user
            .as_ref()
            .is_some_and(|u| u.can(Module::Articles, Action::Edit));
        let bypass = user
            .as_ref()
            .is_some_and(|u| u.can(Module::Categories, Action::Manage));
        Self {
            user,
            groups,
            editor,
            bypass,
        }
    }

    pub fn id(&self) -> Option<Uuid> {
        self.user.as_ref().map(AuthUser::id)
    }

    pub fn can(&self, module: Module, action: Action) -> bool {
        self.user.as_ref().is_some_and(|u| u.can(module, action))
    }

    /// The signed-in caller, or 401.
    pub fn signed_in(&self) -> Result<&AuthUser, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("A bearer access token is required.".into()))
    }

    /// 401 when anonymous, 403 unless `module.action` is held.
    pub fn require(&self, module: Module, action: Action) -> Result<&AuthUser, ApiError> {
        let user = self.signed_in()?;
        user.require(module, action)?;
        Ok(user)
    }

    /// The parameters [`Scope::numbered`] expects, `me` being [`Reader::id`].
    pub fn params<'a>(&'a self, me: &'a Option<Uuid>) -> [lectern_shared::db::Param<'a>; 4] {
        [me, &self.groups, &self.editor, &self.bypass]
    }

    /// The parameters [`Scope::for_categories`] expects.
    pub fn category_params(&self) -> [lectern_shared::db::Param<'_>; 2] {
        [&self.groups, &self.bypass]
    }

    /// Binds what the fragments below read and answers their placeholders.
    pub fn bind<'a>(&'a self, binds: &mut Binds<'a>, me: &'a Option<Uuid>) -> Scope {
        Scope {
            me: binds.bind(me),
            groups: binds.bind(&self.groups),
            editor: binds.bind(&self.editor),
            bypass: binds.bind(&self.bypass),
        }
    }
}

impl<S> FromRequestParts<S> for Reader
where
    S: Send + Sync,
    Arc<JwtVerifier>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeAuthUser(user) = MaybeAuthUser::from_request_parts(parts, state).await?;
        Ok(Self::of(user))
    }
}

/// The placeholders of a bound [`Reader`] in one statement.
#[derive(Debug, Clone)]
pub struct Scope {
    me: String,
    groups: String,
    editor: String,
    bypass: String,
}

impl Scope {
    /// The placeholders of a statement whose parameters `$first..$first+3` are the caller's
    /// id, groups, editor and bypass flags, in that order (see [`Reader::params`]).
    pub fn numbered(first: usize) -> Self {
        Self {
            me: format!("${first}"),
            groups: format!("${}", first + 1),
            editor: format!("${}", first + 2),
            bypass: format!("${}", first + 3),
        }
    }

    /// The placeholders of a statement that only asks about categories: `$first` is the
    /// caller's groups and `$first+1` the bypass flag (see [`Reader::category_params`]).
    pub fn for_categories(first: usize) -> Self {
        Self {
            me: "NULL::uuid".into(),
            groups: format!("${first}"),
            editor: "false".into(),
            bypass: format!("${}", first + 1),
        }
    }

    /// The category of article alias `a` lets the caller see it: no category on its path
    /// has rules, or one of the caller's groups has a rule on the nearest one that has
    /// (`categories.gate_id`).
    pub fn category_visible(&self, a: &str) -> String {
        self.gate(a, "TRUE")
    }

    /// The category of article alias `a` lets the caller change its articles.
    pub fn category_editable(&self, a: &str) -> String {
        self.gate(a, "r.can_edit")
    }

    fn gate(&self, a: &str, flag: &str) -> String {
        let Scope { groups, bypass, .. } = self;
        format!(
            "({bypass} OR {a}.category_id IS NULL
              OR NOT EXISTS (SELECT 1 FROM content.categories g
                             WHERE g.id = {a}.category_id AND g.gate_id IS NOT NULL)
              OR EXISTS (SELECT 1 FROM content.categories g
                         JOIN content.category_group_access r ON r.category_id = g.gate_id
                         WHERE g.id = {a}.category_id AND r.group_id = ANY ({groups}) AND {flag}))"
        )
    }

    /// Article alias `a` exists for the caller (the rule of the module doc).
    pub fn visible(&self, a: &str) -> String {
        let Scope {
            me, groups, editor, ..
        } = self;
        format!(
            "({category} AND (
                ({a}.status = 'published' AND {a}.visibility = 'public')
                OR ({a}.status = 'published' AND {a}.visibility = 'restricted'
                    AND EXISTS (SELECT 1 FROM content.categories g
                                JOIN content.category_group_access r ON r.category_id = g.gate_id
                                WHERE g.id = {a}.category_id AND r.group_id = ANY ({groups})
                                  AND r.can_view))
                OR {a}.author_id = {me}
                OR {editor}))",
            category = self.category_visible(a),
        )
    }

    /// Article alias `a` is published and readable by the caller: the public read by slug.
    pub fn readable_published(&self, a: &str) -> String {
        format!("({a}.status = 'published' AND {})", self.visible(a))
    }
}

/// Whether `reader` may change an article by `author_id` in `status`, given that its category
/// lets them (`category_editable`). 403 otherwise, naming what is missing.
pub fn ensure_can_edit(
    reader: &Reader,
    author_id: Uuid,
    status: &str,
    category_editable: bool,
) -> Result<(), ApiError> {
    let user = reader.signed_in()?;
    if !category_editable {
        return Err(ApiError::Forbidden(
            "Only members of a group with can_edit on this category change its articles.".into(),
        ));
    }
    if status == "archived" {
        return Err(ApiError::Conflict(
            "An archived article is read-only; unarchive it first.".into(),
        ));
    }
    if user.can(Module::Articles, Action::Edit) {
        return Ok(());
    }
    if user.id() == author_id && status == "draft" && user.can(Module::Articles, Action::Create) {
        return Ok(());
    }
    Err(ApiError::Forbidden(if user.id() == author_id {
        "Authors change their own drafts (articles.create); past draft this needs articles.edit."
            .into()
    } else {
        "Changing someone else's article needs the articles.edit permission.".into()
    }))
}
