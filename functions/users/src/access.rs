//! The authorization model's arithmetic: what a user may do (the union over direct roles,
//! group roles and every ancestor group's roles), why, who is affected when a role or group
//! changes, and the two rules every change obeys — an active Admin always remains, and nobody
//! hands out more than they hold themselves.

use std::collections::{BTreeMap, BTreeSet};

use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError,
    authz::{Access, Action, Flags, Grants, Module},
    events::Envelope,
};
use serde::Serialize;
use tokio_postgres::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::state::EVENT_SOURCE;

/// How deep groups nest: a department, its teams, their sub-teams … eight levels at most.
pub const MAX_GROUP_DEPTH: i32 = 8;

/// An id and a name: how roles and groups appear inside other answers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
pub struct Named {
    pub id: Uuid,
    pub name: String,
}

/// One reason a user holds some flags on a module.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Source {
    pub role: Named,
    /// The flags this role gives on the module, as letters of `vcedpm`.
    #[schema(value_type = String)]
    pub flags: Flags,
    /// `null` when the role is assigned directly; otherwise the groups it comes through,
    /// from the group the user is a member of up to the group that holds the role.
    pub via: Option<Vec<Named>>,
}

/// The effective flags on one module and where each comes from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModuleAccess {
    pub module: &'static str,
    pub view: bool,
    pub create: bool,
    pub edit: bool,
    pub delete: bool,
    pub publish: bool,
    pub manage: bool,
    pub sources: Vec<Source>,
}

/// A user's effective access with its provenance.
#[derive(Debug, Clone)]
pub struct Effective {
    pub access: Access,
    pub roles: Vec<Named>,
    pub groups: Vec<Named>,
    pub modules: Vec<ModuleAccess>,
    /// Whether `users.users` has the user at all (answered by the same statement, so a read
    /// of someone's permissions is one round trip).
    pub exists: bool,
}

/// One query: the user's groups and their ancestors (with the path to each), the roles held
/// directly and through those groups, and each role's flags per module.
pub const EFFECTIVE_SQL: &str = "
WITH RECURSIVE chain AS (
    SELECT g.id, g.name, g.parent_id, ARRAY[g.id] AS path
    FROM users.user_groups ug JOIN users.groups g ON g.id = ug.group_id
    WHERE ug.user_id = $1
  UNION ALL
    SELECT p.id, p.name, p.parent_id, c.path || p.id
    FROM chain c JOIN users.groups p ON p.id = c.parent_id
    WHERE NOT p.id = ANY (c.path)
), held AS (
    SELECT ur.role_id, NULL::uuid[] AS path FROM users.user_roles ur WHERE ur.user_id = $1
  UNION ALL
    SELECT gr.role_id, c.path FROM chain c JOIN users.group_roles gr ON gr.group_id = c.id
), grants AS (
    SELECT h.role_id, r.name AS role_name, h.path, p.module,
           bool_or(p.view_access) AS v, bool_or(p.create_access) AS c, bool_or(p.edit_access) AS e,
           bool_or(p.delete_access) AS d, bool_or(p.publish_access) AS p, bool_or(p.manage_access) AS m
    FROM held h
    JOIN users.roles r ON r.id = h.role_id
    LEFT JOIN users.role_permissions rp ON rp.role_id = h.role_id
    LEFT JOIN users.permissions p ON p.id = rp.permission_id
    GROUP BY h.role_id, r.name, h.path, p.module
)
SELECT names.groups, x.role_id, x.role_name, x.path, x.module, x.v, x.c, x.e, x.d, x.p, x.m, names.known
FROM (SELECT jsonb_object_agg(id, name) AS groups,
             EXISTS (SELECT 1 FROM users.users WHERE id = $1) AS known
      FROM chain) names
LEFT JOIN grants x ON true
ORDER BY x.module NULLS FIRST, x.role_name, x.path NULLS FIRST";

fn flags_of(row: &tokio_postgres::Row, first: usize) -> Flags {
    Action::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| row.get::<_, Option<bool>>(first + i).unwrap_or(false))
        .fold(Flags::NONE, |flags, (_, a)| flags.union(Flags::of(&[*a])))
}

/// What `user_id` may do and why.
pub async fn effective(db: &impl GenericClient, user_id: Uuid) -> Result<Effective, ApiError> {
    let rows = db
        .query(&db.prepare_cached(EFFECTIVE_SQL).await?, &[&user_id])
        .await?;
    // Decoded straight from jsonb into the map (no `serde_json::Value` in between).
    let group_names: BTreeMap<Uuid, String> = rows
        .first()
        .and_then(|r| r.try_get::<_, Option<Json<BTreeMap<Uuid, String>>>>(0).ok())
        .flatten()
        .map(|Json(names)| names)
        .unwrap_or_default();
    let mut grants = Grants::default();
    // By id, which is how `Named` orders: a role's name is copied once, not once per row.
    let mut roles: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut by_module: BTreeMap<Module, Vec<Source>> = BTreeMap::new();
    for row in &rows {
        let Some(role_id) = row.get::<_, Option<Uuid>>(1) else {
            continue;
        };
        let name: &str = row.get(2);
        roles.entry(role_id).or_insert_with(|| name.to_string());
        let Some(module) = row
            .get::<_, Option<&str>>(4)
            .and_then(|m| m.parse::<Module>().ok())
        else {
            continue;
        };
        let flags = flags_of(row, 5);
        if flags.is_empty() {
            continue;
        }
        grants.grant(module, flags);
        let via = row.get::<_, Option<Vec<Uuid>>>(3).map(|path| {
            path.into_iter()
                .map(|id| Named {
                    id,
                    name: group_names.get(&id).cloned().unwrap_or_default(),
                })
                .collect()
        });
        by_module.entry(module).or_default().push(Source {
            role: Named {
                id: role_id,
                name: name.to_string(),
            },
            flags,
            via,
        });
    }
    let modules = by_module
        .into_iter()
        .map(|(module, sources)| {
            let flags = grants.flags(module);
            ModuleAccess {
                module: module.as_str(),
                view: flags.allows(Action::View),
                create: flags.allows(Action::Create),
                edit: flags.allows(Action::Edit),
                delete: flags.allows(Action::Delete),
                publish: flags.allows(Action::Publish),
                manage: flags.allows(Action::Manage),
                sources,
            }
        })
        .collect();
    let mut role_names: Vec<String> = roles.values().cloned().collect();
    role_names.sort();
    role_names.dedup();
    let groups: Vec<Named> = group_names
        .into_iter()
        .map(|(id, name)| Named { id, name })
        .collect();
    let exists = rows.first().is_some_and(|r| r.get::<_, bool>(11));
    Ok(Effective {
        exists,
        access: Access {
            grants,
            roles: role_names,
            groups: groups.iter().map(|g| g.id).collect(),
        },
        roles: roles
            .into_iter()
            .map(|(id, name)| Named { id, name })
            .collect(),
        groups,
        modules,
    })
}

/// The grants a set of roles gives together.
pub async fn grants_of_roles(
    db: &impl GenericClient,
    role_ids: &[Uuid],
) -> Result<Grants, ApiError> {
    let rows = db
        .query(
            &db.prepare_cached(
                "SELECT p.module, bool_or(p.view_access), bool_or(p.create_access), bool_or(p.edit_access),
                        bool_or(p.delete_access), bool_or(p.publish_access), bool_or(p.manage_access)
                 FROM users.role_permissions rp JOIN users.permissions p ON p.id = rp.permission_id
                 WHERE rp.role_id = ANY ($1) GROUP BY p.module",
            )
            .await?,
            &[&role_ids],
        )
        .await?;
    Ok(grants_from_rows(&rows))
}

/// The grants a set of permissions gives together.
pub async fn grants_of_permissions(
    db: &impl GenericClient,
    permission_ids: &[Uuid],
) -> Result<Grants, ApiError> {
    let rows = db
        .query(
            &db.prepare_cached(
                "SELECT p.module, bool_or(p.view_access), bool_or(p.create_access), bool_or(p.edit_access),
                        bool_or(p.delete_access), bool_or(p.publish_access), bool_or(p.manage_access)
                 FROM users.permissions p WHERE p.id = ANY ($1) GROUP BY p.module",
            )
            .await?,
            &[&permission_ids],
        )
        .await?;
    Ok(grants_from_rows(&rows))
}

fn grants_from_rows(rows: &[tokio_postgres::Row]) -> Grants {
    let mut grants = Grants::default();
    for row in rows {
        if let Ok(module) = row.get::<_, String>(0).parse::<Module>() {
            grants.grant(module, flags_of(row, 1));
        }
    }
    grants
}

/// The roles a group passes on to its members: its own and every ancestor's.
pub async fn roles_through_group(
    db: &impl GenericClient,
    group_id: Uuid,
) -> Result<Vec<Uuid>, ApiError> {
    let rows = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE up AS (
                     SELECT id, parent_id FROM users.groups WHERE id = $1
                   UNION
                     SELECT g.id, g.parent_id FROM users.groups g JOIN up ON g.id = up.parent_id
                 )
                 SELECT DISTINCT gr.role_id FROM users.group_roles gr JOIN up ON up.id = gr.group_id",
            )
            .await?,
            &[&group_id],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// No escalation: the caller may only hand out (or take away) what their own token grants.
/// `what` names the thing in the answer ("the role Admin").
pub fn ensure_within(caller: &Grants, given: &Grants, what: &str) -> Result<(), ApiError> {
    let missing: Vec<String> = given
        .iter()
        .flat_map(|(module, flags)| {
            flags
                .actions()
                .filter(move |a| !caller.allows(module, *a))
                .map(move |a| format!("{module}.{}", a.as_str()))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "You cannot hand out {what}: it grants {} which you do not hold.",
            missing.join(", ")
        )))
    }
}

/// Replacing the role set `current` with `wanted`: the roles added and removed. 403 unless
/// every role given or taken away is within the caller's own grants.
pub async fn role_changes(
    db: &impl GenericClient,
    caller: &Grants,
    current: &[Uuid],
    wanted: &[Uuid],
) -> Result<(Vec<Uuid>, Vec<Uuid>), ApiError> {
    let added: Vec<Uuid> = wanted
        .iter()
        .filter(|r| !current.contains(r))
        .copied()
        .collect();
    let removed: Vec<Uuid> = current
        .iter()
        .filter(|r| !wanted.contains(r))
        .copied()
        .collect();
    let touched: Vec<Uuid> = added.iter().chain(&removed).copied().collect();
    let given = grants_of_roles(db, &touched).await?;
    ensure_within(caller, &given, "these roles")?;
    Ok((added, removed))
}

/// Every user who is a member of one of `group_ids` or of any group below them.
pub async fn members_below(
    db: &impl GenericClient,
    group_ids: &[Uuid],
) -> Result<Vec<Uuid>, ApiError> {
    let rows = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE down AS (
                     SELECT id FROM users.groups WHERE id = ANY ($1)
                   UNION
                     SELECT g.id FROM users.groups g JOIN down ON g.parent_id = down.id
                 )
                 SELECT DISTINCT ug.user_id FROM users.user_groups ug JOIN down ON down.id = ug.group_id",
            )
            .await?,
            &[&group_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every user holding one of `role_ids`, directly or through a group or an ancestor group.
pub async fn holders_of(db: &impl GenericClient, role_ids: &[Uuid]) -> Result<Vec<Uuid>, ApiError> {
    let rows = db
        .query(
            &db.prepare_cached(
                "WITH RECURSIVE down AS (
                     SELECT group_id AS id FROM users.group_roles WHERE role_id = ANY ($1)
                   UNION
                     SELECT g.id FROM users.groups g JOIN down ON g.parent_id = down.id
                 )
                 SELECT user_id FROM users.user_roles WHERE role_id = ANY ($1)
                 UNION
                 SELECT ug.user_id FROM users.user_groups ug JOIN down ON down.id = ug.group_id",
            )
            .await?,
            &[&role_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The events one access-changing request emits, collected in its transaction.
///
/// Every change to who holds what starts with [`AccessChange::begin`], which serialises such
/// changes (so the last-admin count cannot race) and counts the active Admins; it ends with
/// [`AccessChange::finish`], which refuses to leave none and computes the new access summary
/// of every affected user as `user.access_changed` events.
pub struct AccessChange {
    actor: Option<Uuid>,
    admins_before: i64,
    affected: BTreeSet<Uuid>,
    pub events: Vec<Envelope>,
}

const ACTIVE_ADMINS_SQL: &str = "
WITH RECURSIVE admin AS (
    SELECT id FROM users.roles WHERE name = 'Admin' AND is_system
), down AS (
    SELECT gr.group_id AS id FROM users.group_roles gr JOIN admin ON admin.id = gr.role_id
  UNION
    SELECT g.id FROM users.groups g JOIN down ON g.parent_id = down.id
)
SELECT count(*) FROM users.users u
WHERE u.status = 'ACTIVE' AND (
    EXISTS (SELECT 1 FROM users.user_roles ur JOIN admin ON admin.id = ur.role_id WHERE ur.user_id = u.id)
 OR EXISTS (SELECT 1 FROM users.user_groups ug JOIN down ON down.id = ug.group_id WHERE ug.user_id = u.id))";

async fn active_admins(tx: &Transaction<'_>) -> Result<i64, ApiError> {
    Ok(tx
        .query_one(&tx.prepare_cached(ACTIVE_ADMINS_SQL).await?, &[])
        .await?
        .get(0))
}

impl AccessChange {
    pub async fn begin(tx: &Transaction<'_>, actor: Option<Uuid>) -> Result<Self, ApiError> {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('users.access'))",
            &[],
        )
        .await?;
        Ok(Self {
            actor,
            admins_before: active_admins(tx).await?,
            affected: BTreeSet::new(),
            events: Vec::new(),
        })
    }

    /// `user_ids`' access may have changed.
    pub fn affects(&mut self, user_ids: impl IntoIterator<Item = Uuid>) {
        self.affected.extend(user_ids);
    }

    /// Another event to publish with the change.
    pub fn emit(&mut self, kind: &str, data: impl Serialize) {
        self.events
            .push(Envelope::new(EVENT_SOURCE, kind, self.actor, data));
    }

    /// 409 if the change leaves no active Admin; otherwise the events to commit, including a
    /// `user.access_changed` for every affected user that still exists.
    pub async fn finish(mut self, tx: &Transaction<'_>) -> Result<Vec<Envelope>, ApiError> {
        if self.admins_before > 0 && active_admins(tx).await? == 0 {
            return Err(ApiError::Conflict(
                "This would leave no active Admin; make someone else an Admin first.".into(),
            ));
        }
        let existing = tx
            .query(
                &tx.prepare_cached("SELECT id FROM users.users WHERE id = ANY ($1) ORDER BY id")
                    .await?,
                &[&self.affected.iter().copied().collect::<Vec<_>>()],
            )
            .await?;
        for row in existing {
            let user_id: Uuid = row.get(0);
            let effective = effective(tx, user_id).await?;
            self.emit(
                "user.access_changed",
                serde_json::json!({ "user_id": user_id, "access": effective.access }),
            );
        }
        Ok(self.events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_within_names_what_the_caller_lacks() {
        let mut caller = Grants::default();
        caller.grant(Module::Articles, Flags::of(&[Action::View, Action::Edit]));
        let mut given = Grants::default();
        given.grant(Module::Articles, Flags::of(&[Action::View]));
        assert!(ensure_within(&caller, &given, "the role Reader").is_ok());
        given.grant(Module::Users, Flags::of(&[Action::Delete]));
        let err = ensure_within(&caller, &given, "the role Boss").unwrap_err();
        assert_eq!(err.status(), 403);
        assert!(err.to_string().contains("users.delete"), "{err}");
    }
}
