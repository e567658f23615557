//! Who a request acts as, and the permission rules ("guards") every
//! operation checks through the service layer.

use async_graphql::Enum;
use strum::VariantArray;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// A permission an agent can hold. `Agent.permission` is the bitmask of these.
// Stored as a bitmask of the discriminants; GraphQL shows the variants as
// `AgentPermission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum, VariantArray)]
#[graphql(name = "AgentPermission")]
#[repr(i32)]
pub enum Permission {
    /// Runs the platform (bit 1); effective only for agents of the platform's own customer.
    ProjectSuperAdmin = 1,
    /// A regular agent of a customer (bit 16).
    CustomerAgent = 16,
    /// Administers its customer (bit 32).
    CustomerAdmin = 32,
    /// Manages its customer (bit 64).
    CustomerManager = 64,
}

impl Permission {
    pub const fn bit(self) -> i32 {
        self as i32
    }

    /// The permissions set in `mask`, in declaration order.
    pub fn from_mask(mask: i32) -> Vec<Permission> {
        Self::VARIANTS
            .iter()
            .copied()
            .filter(|p| mask & p.bit() != 0)
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub credential: CredentialId,
    pub customer_id: Uuid,
    pub permission: i32,
    /// Whether `customer_id` is the platform operator's own customer.
    pub of_platform_customer: bool,
}

/// Which credential the request presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialId {
    /// A login token of an agent, for one session.
    Session {
        agent_id: Uuid,
        session_id: Uuid,
    },
    AccessKey {
        access_key_id: Uuid,
    },
}

impl Principal {
    /// The agent or access key acting, as events and logs name it.
    pub fn actor_id(&self) -> Uuid {
        match self.credential {
            CredentialId::Session { agent_id, .. } => agent_id,
            CredentialId::AccessKey { access_key_id } => access_key_id,
        }
    }

    /// A login session of an agent with the given permissions.
    pub fn agent(
        agent_id: Uuid,
        session_id: Uuid,
        customer_id: Uuid,
        permission: i32,
        of_platform_customer: bool,
    ) -> Self {
        Self {
            credential: CredentialId::Session {
                agent_id,
                session_id,
            },
            customer_id,
            permission,
            of_platform_customer,
        }
    }

    /// An access key: CUSTOMER_ADMIN of its own customer, never more, even
    /// when that customer is the platform's.
    pub fn access_key(access_key_id: Uuid, customer_id: Uuid) -> Self {
        Self {
            credential: CredentialId::AccessKey { access_key_id },
            customer_id,
            permission: Permission::CustomerAdmin.bit(),
            of_platform_customer: false,
        }
    }

    /// The agent behind the request; `None` for an access key.
    pub fn agent_id(&self) -> Option<Uuid> {
        match self.credential {
            CredentialId::Session { agent_id, .. } => Some(agent_id),
            CredentialId::AccessKey { .. } => None,
        }
    }

    /// The agent behind the request, for operations no access key may perform.
    pub fn require_agent(&self) -> AppResult<Uuid> {
        self.agent_id().ok_or(AppError::Forbidden)
    }

    pub fn has(&self, permission: Permission) -> bool {
        self.permission & permission.bit() != 0
    }

    /// Super admins run the platform: the permission alone is not enough, the
    /// agent must also belong to the platform's own customer.
    pub fn is_super_admin(&self) -> bool {
        self.of_platform_customer && self.has(Permission::ProjectSuperAdmin)
    }

    pub fn require_super_admin(&self) -> AppResult<()> {
        if self.is_super_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Super admins administer any customer; CUSTOMER_ADMINs their own.
    pub fn require_customer_admin(&self, customer_id: Uuid) -> AppResult<()> {
        let own_admin = self.customer_id == customer_id && self.has(Permission::CustomerAdmin);
        if self.is_super_admin() || own_admin {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Super admins read any customer; admins and managers read their own.
    pub fn require_customer_reader(&self, customer_id: Uuid) -> AppResult<()> {
        let own_admin = self.customer_id == customer_id
            && (self.has(Permission::CustomerAdmin) || self.has(Permission::CustomerManager));
        if self.is_super_admin() || own_admin {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(permission: i32, of_platform_customer: bool) -> Principal {
        Principal::agent(
            Uuid::nil(),
            Uuid::nil(),
            Uuid::from_u128(7),
            permission,
            of_platform_customer,
        )
    }

    #[test]
    fn access_keys_are_customer_admins_and_never_more() {
        let key = Principal::access_key(Uuid::nil(), Uuid::from_u128(7));
        assert!(!key.is_super_admin());
        assert!(key.require_customer_admin(Uuid::from_u128(7)).is_ok());
        assert!(key.require_customer_admin(Uuid::from_u128(8)).is_err());
        assert!(key.require_agent().is_err());
    }

    #[test]
    fn super_admin_needs_the_bit_and_the_platform_customer() {
        assert!(principal(1, true).is_super_admin());
        assert!(!principal(1, false).is_super_admin());
        assert!(!principal(32, true).is_super_admin());
    }

    #[test]
    fn customer_readers_are_own_admins_and_managers() {
        let own = Uuid::from_u128(7);
        let other = Uuid::from_u128(8);
        assert!(principal(32, false).require_customer_reader(own).is_ok());
        assert!(principal(64, false).require_customer_reader(own).is_ok());
        assert!(principal(16, false).require_customer_reader(own).is_err());
        assert!(principal(32, false).require_customer_reader(other).is_err());
        assert!(principal(1, true).require_customer_reader(other).is_ok());
    }

    #[test]
    fn masks_decode_in_a_fixed_order() {
        assert_eq!(
            Permission::from_mask(33),
            vec![Permission::ProjectSuperAdmin, Permission::CustomerAdmin]
        );
        assert!(Permission::from_mask(0).is_empty());
    }
}
