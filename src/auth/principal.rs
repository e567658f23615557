//! Who a request acts as, and the permission rules ("guards") every
//! operation checks through the service layer.

use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Agent permissions, stored as a bitmask with these values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ProjectSuperAdmin,
    CustomerAgent,
    CustomerAdmin,
    CustomerManager,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Self::ProjectSuperAdmin,
        Self::CustomerAgent,
        Self::CustomerAdmin,
        Self::CustomerManager,
    ];

    pub const fn bit(self) -> i32 {
        match self {
            Self::ProjectSuperAdmin => 1,
            Self::CustomerAgent => 16,
            Self::CustomerAdmin => 32,
            Self::CustomerManager => 64,
        }
    }

    /// The permissions set in `mask`, in a fixed order.
    pub fn from_mask(mask: i32) -> Vec<Permission> {
        Self::ALL
            .into_iter()
            .filter(|p| mask & p.bit() != 0)
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `None` when the request authenticated with an access key.
    pub agent_id: Option<Uuid>,
    pub customer_id: Uuid,
    pub permission: i32,
    /// Whether `customer_id` is the platform operator's own customer.
    pub of_platform_customer: bool,
}

impl Principal {
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
        Principal {
            agent_id: Some(Uuid::nil()),
            customer_id: Uuid::from_u128(7),
            permission,
            of_platform_customer,
        }
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
