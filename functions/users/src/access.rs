//! The authorization model's arithmetic: what a user may do (the union over direct roles,
//! group roles and every ancestor group's roles), why, who is affected when a role or group
//! changes, and the two rules every change obeys — an active Admin always remains, and nobody
//! hands out more than they hold themselves.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet},
};

use deadpool_postgres::{GenericClient, Transaction};
use lectern_shared::{
    ApiError,
    authz::{Access, Action, Flags, Grants, Module},
    events::Envelope,
    extract::JsonWriter,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Row, types::Json};
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

fn flags_of(row: &Row, first: usize) -> Flags {
    Action::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| row.get::<_, Option<bool>>(first + i).unwrap_or(false))
        .fold(Flags::NONE, |flags, (_, a)| flags.union(Flags::of(&[*a])))
}

/// A role as a read borrows it from its row.
#[derive(Debug, Clone, Copy)]
struct RoleRef<'r> {
    id: Uuid,
    name: &'r str,
}

/// A group's name in the statement's jsonb: borrowed, unless it had to be unescaped.
#[derive(Debug, Deserialize)]
struct GroupName<'r>(#[serde(borrow)] Cow<'r, str>);

/// One reason for some flags on a module, borrowed from its row.
#[derive(Debug)]
struct SourceRef<'r> {
    module: Module,
    role: RoleRef<'r>,
    flags: Flags,
    /// The groups the role comes through, by id; `None` when it is held directly.
    via: Option<Vec<Uuid>>,
}

/// [`EFFECTIVE_SQL`]'s answer, read from its rows and borrowing their strings: the
/// permissions read writes it out as it is ([`Self::write_answer`]); every other use takes
/// the owned [`Effective`] made from it.
#[derive(Debug, Default)]
pub struct EffectiveRows<'r> {
    /// Whether `users.users` has the user at all.
    pub exists: bool,
    grants: Grants,
    /// By id, each once.
    roles: Vec<RoleRef<'r>>,
    /// The user's groups and their ancestors, by id.
    groups: BTreeMap<Uuid, GroupName<'r>>,
    /// By module (in [`Module`]'s order), then in the statement's order: role name, path.
    sources: Vec<SourceRef<'r>>,
}

impl<'r> EffectiveRows<'r> {
    pub fn read(rows: &'r [Row]) -> Self {
        // Decoded straight from jsonb (no `serde_json::Value` in between).
        let groups = rows
            .first()
            .and_then(|r| {
                r.try_get::<_, Option<Json<BTreeMap<Uuid, GroupName<'r>>>>>(0)
                    .ok()
            })
            .flatten()
            .map(|Json(names)| names)
            .unwrap_or_default();
        let mut read = Self {
            exists: rows.first().is_some_and(|r| r.get::<_, bool>(11)),
            groups,
            ..Self::default()
        };
        for row in rows {
            let Some(id) = row.get::<_, Option<Uuid>>(1) else {
                continue;
            };
            let role = RoleRef {
                id,
                name: row.get(2),
            };
            read.roles.push(role);
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
            read.grants.grant(module, flags);
            read.sources.push(SourceRef {
                module,
                role,
                flags,
                via: row.get(3),
            });
        }
        read.roles.sort_unstable_by_key(|r| r.id);
        read.roles.dedup_by_key(|r| r.id);
        // Stable: within a module the statement's order stays.
        read.sources.sort_by_key(|s| s.module);
        read
    }

    fn group_name(&self, id: &Uuid) -> &str {
        self.groups.get(id).map_or("", |name| &name.0)
    }

    /// Each module with a grant, and the reasons for it.
    fn modules(&self) -> impl Iterator<Item = (Module, &[SourceRef<'r>])> {
        self.sources
            .chunk_by(|a, b| a.module == b.module)
            .map(|sources| (sources[0].module, sources))
    }

    /// The owned form, for everything but the permissions read.
    pub fn into_effective(self) -> Effective {
        let named = |id: &Uuid| Named {
            id: *id,
            name: self.group_name(id).to_string(),
        };
        let modules = self
            .modules()
            .map(|(module, sources)| {
                let flags = self.grants.flags(module);
                ModuleAccess {
                    module: module.as_str(),
                    view: flags.allows(Action::View),
                    create: flags.allows(Action::Create),
                    edit: flags.allows(Action::Edit),
                    delete: flags.allows(Action::Delete),
                    publish: flags.allows(Action::Publish),
                    manage: flags.allows(Action::Manage),
                    sources: sources
                        .iter()
                        .map(|source| Source {
                            role: Named {
                                id: source.role.id,
                                name: source.role.name.to_string(),
                            },
                            flags: source.flags,
                            via: source
                                .via
                                .as_ref()
                                .map(|path| path.iter().map(named).collect()),
                        })
                        .collect(),
                }
            })
            .collect();
        let groups: Vec<Named> = self.groups.keys().map(named).collect();
        let mut role_names: Vec<String> = self.roles.iter().map(|r| r.name.to_string()).collect();
        role_names.sort();
        role_names.dedup();
        Effective {
            exists: self.exists,
            access: Access {
                grants: self.grants,
                roles: role_names,
                groups: groups.iter().map(|g| g.id).collect(),
            },
            roles: self
                .roles
                .iter()
                .map(|r| Named {
                    id: r.id,
                    name: r.name.to_string(),
                })
                .collect(),
            groups,
            modules,
        }
    }

    /// `GET /users/{id}/permissions`' answer (`EffectivePermissions`), written straight from
    /// the rows: what serde writes for it, without its cost (BENCHMARKS.md, *A permissions
    /// answer written from its rows*).
    pub fn write_answer(&self, user_id: Uuid) -> JsonWriter {
        fn named(out: &mut JsonWriter, id: Uuid, name: &str) {
            out.raw("{\"id\":")
                .uuid(id)
                .raw(",\"name\":")
                .str(name)
                .raw("}");
        }
        let mut out = JsonWriter::new();
        out.raw("{\"user_id\":").uuid(user_id).raw(",\"roles\":");
        out.array(&self.roles, |out, role| named(out, role.id, role.name));
        out.raw(",\"groups\":");
        out.array(&self.groups, |out, (id, name)| named(out, *id, &name.0));
        out.raw(",\"permissions\":");
        out.array(self.modules(), |out, (module, sources)| {
            let flags = self.grants.flags(module);
            out.raw("{\"module\":").str(module.as_str());
            for (key, action) in [
                (",\"view\":", Action::View),
                (",\"create\":", Action::Create),
                (",\"edit\":", Action::Edit),
                (",\"delete\":", Action::Delete),
                (",\"publish\":", Action::Publish),
                (",\"manage\":", Action::Manage),
            ] {
                out.raw(key).bool(flags.allows(action));
            }
            out.raw(",\"sources\":");
            out.array(sources, |out, source| {
                out.raw("{\"role\":");
                named(out, source.role.id, source.role.name);
                out.raw(",\"flags\":")
                    .str(source.flags.write_letters(&mut [0; 6]))
                    .raw(",\"via\":");
                match &source.via {
                    None => out.raw("null"),
                    Some(path) => out.array(path, |out, id| named(out, *id, self.group_name(id))),
                };
                out.raw("}");
            });
            out.raw("}");
        });
        out.raw("}");
        out
    }
}

/// [`EFFECTIVE_SQL`]'s rows for `user_id`: one round trip.
pub async fn effective_rows(db: &impl GenericClient, user_id: Uuid) -> Result<Vec<Row>, ApiError> {
    Ok(db
        .query(&db.prepare_cached(EFFECTIVE_SQL).await?, &[&user_id])
        .await?)
}

/// What `user_id` may do and why.
pub async fn effective(db: &impl GenericClient, user_id: Uuid) -> Result<Effective, ApiError> {
    let rows = effective_rows(db, user_id).await?;
    Ok(EffectiveRows::read(&rows).into_effective())
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

    /// The permissions read writes its answer by hand; it must be what serde writes for
    /// the documented `EffectivePermissions`.
    #[test]
    fn the_written_answer_is_what_serde_writes_for_effective_permissions() {
        let id = |n: u128| Uuid::from_u128(n);
        let (editor, viewer) = (
            RoleRef {
                id: id(0xbb),
                name: "Editor \"chief\"",
            },
            RoleRef {
                id: id(0x0e),
                name: "Viewer",
            },
        );
        let source = |module, role, flags: &str, via: Option<Vec<Uuid>>| SourceRef {
            module,
            role,
            flags: Flags::from_letters(flags).unwrap(),
            via,
        };
        let mut grants = Grants::default();
        grants.grant(Module::Articles, Flags::from_letters("vcedp").unwrap());
        grants.grant(Module::Users, Flags::from_letters("v").unwrap());
        let rows = EffectiveRows {
            exists: true,
            grants,
            roles: vec![viewer, editor],
            groups: BTreeMap::from([
                (id(0x38), GroupName(Cow::Borrowed("Team\t2.1 <b>"))),
                (id(0x78), GroupName(Cow::Owned("Dept \\ 2 – Zoë".into()))),
            ]),
            sources: vec![
                source(
                    Module::Articles,
                    editor,
                    "vcedp",
                    Some(vec![id(0x38), id(0x78)]),
                ),
                source(Module::Articles, viewer, "v", None),
                // A group the statement did not name is written with an empty name.
                source(Module::Users, viewer, "v", Some(vec![id(0x99)])),
            ],
        };
        let user_id = id(0x01a2);
        let written = rows.write_answer(user_id);
        let effective = rows.into_effective();
        let expected = serde_json::to_vec(&crate::profiles::EffectivePermissions {
            user_id,
            roles: effective.roles,
            groups: effective.groups,
            permissions: effective.modules,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(written.as_bytes()),
            String::from_utf8_lossy(&expected)
        );
        let empty = EffectiveRows::default();
        let expected =
            format!(r#"{{"user_id":"{user_id}","roles":[],"groups":[],"permissions":[]}}"#);
        assert_eq!(empty.write_answer(user_id).as_bytes(), expected.as_bytes());
    }

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
