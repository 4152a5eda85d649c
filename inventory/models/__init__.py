from .base import TenantModel
from .catalog import ClassificationMapping, Product, ProductBarcode, Unit
from .tenancy import (
    ApiToken,
    DiscrepancyEnforcement,
    Location,
    LocationKind,
    Membership,
    MembershipStore,
    NegativeStockMode,
    Organization,
    Role,
    Store,
)

__all__ = [
    "ApiToken",
    "ClassificationMapping",
    "DiscrepancyEnforcement",
    "Location",
    "LocationKind",
    "Membership",
    "MembershipStore",
    "NegativeStockMode",
    "Organization",
    "Product",
    "ProductBarcode",
    "Role",
    "Store",
    "TenantModel",
    "Unit",
]
