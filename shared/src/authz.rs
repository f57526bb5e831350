//! The permission model every service authorizes with.
//!
//! A permission is a module (`articles`, `users`, ...) with six flags: view, create, edit,
//! delete, publish, manage. A user's effective permissions are the union over their direct
//! roles, the roles of their groups and the roles of those groups' ancestors; the users
//! service computes them and the auth service puts them in the access token, so a handler
//! decides with `caller.require(Module::Articles, Action::Publish)?` and no call back.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::error::ApiError;

macro_rules! modules {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// A permission module: one area of the platform.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum Module { $($variant),+ }

        impl Module {
            pub const ALL: &'static [Module] = &[$(Module::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Module::$variant => $name),+ }
            }
        }

        impl FromStr for Module {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Module::$variant),)+
                    other => Err(format!("{other} is not a permission module")),
                }
            }
        }
    };
}

modules! {
    Articles => "articles",
    Categories => "categories",
    Tags => "tags",
    Courses => "courses",
    Lessons => "lessons",
    Enrollments => "enrollments",
    Workflows => "workflows",
    Tasks => "tasks",
    Comments => "comments",
    Media => "media",
    Notifications => "notifications",
    Analytics => "analytics",
    AuditLogs => "audit_logs",
    Users => "users",
    Roles => "roles",
    Groups => "groups",
    Settings => "settings",
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the six things a permission allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    View,
    Create,
    Edit,
    Delete,
    Publish,
    Manage,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::View,
        Action::Create,
        Action::Edit,
        Action::Delete,
        Action::Publish,
        Action::Manage,
    ];

    fn letter(self) -> char {
        match self {
            Action::View => 'v',
            Action::Create => 'c',
            Action::Edit => 'e',
            Action::Delete => 'd',
            Action::Publish => 'p',
            Action::Manage => 'm',
        }
    }

    fn bit(self) -> u8 {
        1 << Action::ALL
            .iter()
            .position(|a| *a == self)
            .expect("every action is listed")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Delete => "delete",
            Action::Publish => "publish",
            Action::Manage => "manage",
        }
    }
}

/// The flags granted on one module. In tokens it is written as letters: `"vce"` is view,
/// create and edit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const NONE: Flags = Flags(0);
    pub const ALL: Flags = Flags(0b11_1111);

    pub fn of(actions: &[Action]) -> Self {
        Self(actions.iter().fold(0, |bits, a| bits | a.bit()))
    }

    pub fn allows(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn actions(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.allows(*a))
    }

    pub fn letters(self) -> String {
        self.write_letters(&mut [0; 6]).to_string()
    }

    /// The letters of `vcedpm` these flags hold, in that order, written into `buf`: how they
    /// are serialised (in every token and permissions answer) without allocating.
    pub fn write_letters(self, buf: &mut [u8; 6]) -> &str {
        let mut len = 0;
        for action in self.actions() {
            buf[len] = action.letter() as u8;
            len += 1;
        }
        std::str::from_utf8(&buf[..len]).expect("flag letters are ASCII")
    }

    pub fn from_letters(letters: &str) -> Result<Self, String> {
        letters.chars().try_fold(Flags::NONE, |flags, c| {
            let action = Action::ALL
                .into_iter()
                .find(|a| a.letter() == c)
                .ok_or_else(|| format!("{c} is not a permission flag"))?;
            Ok(flags.union(Flags::of(&[action])))
        })
    }
}

impl Serialize for Flags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.write_letters(&mut [0; 6]))
    }
}

impl<'de> Deserialize<'de> for Flags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let letters = String::deserialize(deserializer)?;
        Flags::from_letters(&letters).map_err(serde::de::Error::custom)
    }
}

/// Effective permissions: flags per module; a module that is absent grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants(BTreeMap<Module, Flags>);

impl Grants {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn grant(&mut self, module: Module, flags: Flags) {
        let entry = self.0.entry(module).or_default();
        *entry = entry.union(flags);
        if entry.is_empty() {
            self.0.remove(&module);
        }
    }

    pub fn allows(&self, module: Module, action: Action) -> bool {
        self.0.get(&module).is_some_and(|f| f.allows(action))
    }

    pub fn flags(&self, module: Module) -> Flags {
        self.0.get(&module).copied().unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Module, Flags)> + '_ {
        self.0.iter().map(|(m, f)| (*m, *f))
    }

    /// 403 unless `module.action` is granted.
    pub fn require(&self, module: Module, action: Action) -> Result<(), ApiError> {
        if self.allows(module, action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "This needs the {module}.{} permission.",
                action.as_str()
            )))
        }
    }
}

/// What an access token says a user may do: the summary the users service computes and the
/// auth service signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub grants: Grants,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub groups: Vec<uuid::Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_through_their_letters() {
        let flags = Flags::of(&[Action::View, Action::Publish]);
        assert_eq!(flags.letters(), "vp");
        assert_eq!(Flags::from_letters("vp").unwrap(), flags);
        assert!(Flags::from_letters("vx").is_err());
        assert_eq!(Flags::ALL.letters(), "vcedpm");
        assert_eq!(Flags::NONE.letters(), "");
        assert_eq!(
            serde_json::to_string(&Flags::of(&[Action::Manage, Action::Create])).unwrap(),
            r#""cm""#
        );
    }

    #[test]
    fn grants_are_a_union_and_require_answers_403() {
        let mut grants = Grants::default();
        grants.grant(Module::Articles, Flags::of(&[Action::View]));
        grants.grant(Module::Articles, Flags::of(&[Action::Edit]));
        assert!(grants.allows(Module::Articles, Action::Edit));
        assert!(!grants.allows(Module::Articles, Action::Publish));
        assert!(!grants.allows(Module::Users, Action::View));
        let err = grants
            .require(Module::Articles, Action::Publish)
            .unwrap_err();
        assert_eq!(err.status(), 403);
        let json = serde_json::to_string(&grants).unwrap();
        assert_eq!(json, r#"{"articles":"ve"}"#);
        assert_eq!(serde_json::from_str::<Grants>(&json).unwrap(), grants);
    }

    #[test]
    fn every_module_parses_from_its_name() {
        for module in Module::ALL {
            assert_eq!(module.as_str().parse::<Module>().unwrap(), *module);
        }
        assert_eq!(Module::ALL.len(), 17);
    }
}
