"""The capability matrix: which role may do what (docs/architecture.md, Tenancy), in one place.

DRF permissions, the admin and the README table all read this matrix, so a rule changes here or
nowhere. Roles are ordered (viewer < operator < manager < admin) and each action names the least
role that may perform it. A membership limited to some stores may act only on those stores.
"""

from django.db import models

from inventory.models.tenancy import Role


class Action(models.TextChoices):
    # viewer
    STOCK_VIEW = "stock.view", "Read stock, ledger, counts and reports"
    CATALOG_VIEW = "catalog.view", "Read products, barcodes, stores and locations"
    # operator
    SALE_RECORD = "sale.record", "Record a sale"
    COUNT_PASS_WORK = "count.pass_work", "Start and submit count passes, add count lines"
    UPSTOCK_WORK = "upstock.work", "Work upstock lines"
    # manager
    SALE_REVERSE = "sale.reverse", "Void and refund sales"
    STOCK_RECEIVE = "stock.receive", "Receive stock"
    STOCK_MOVE = "stock.move", "Move stock between locations"
    STOCK_ADJUST = "stock.adjust", "Adjust and write off stock"
    SHORTFALL_VIEW = "shortfall.view", "Read refused, oversold and partly posted stock moves"
    COUNT_SESSION_MANAGE = "count.session_manage", "Create, start, submit, reconcile, cancel counts"
    COUNT_EXPECTED_VIEW = "count.expected_view", "See expected quantities of a blind count"
    VARIANCE_APPROVE = "variance.approve", "Approve variance up to the escalation threshold"
    DISCREPANCY_VIEW = (
        "discrepancy.view",
        "Read discrepancies (timelines, variance policies, analytics)",
    )
    COUNT_FINALIZE = "count.finalize", "Finalise counts"
    CATALOG_EDIT = "catalog.edit", "Edit products, barcodes and the classification map"
    PAR_LEVEL_EDIT = "par_level.edit", "Edit par levels"
    TRANSFER_MANAGE = "transfer.manage", "Create, send and receive transfers"
    PURCHASE_ORDER_MANAGE = "purchase_order.manage", "Create and receive purchase orders"
    ADMIN_SITE = "admin.site", "Use the admin site"
    # admin
    ORG_SETTINGS_EDIT = "org.settings_edit", "Change organisation settings"
    STORE_MANAGE = "store.manage", "Create and change stores and locations"
    MEMBERSHIP_MANAGE = "membership.manage", "Invite people and change their roles"
    TOKEN_MANAGE = "token.manage", "Issue and revoke other people's API tokens"
    APPROVE_ABOVE_THRESHOLD = "variance.approve_escalated", "Approve above the escalation threshold"
    AUDIT_VIEW = "audit.view", "Read the audit trail (who changed what, with which device)"


V, OP, M, A = Role.VIEWER, Role.OPERATOR, Role.MANAGER, Role.ADMIN

#: action -> the least role allowed to perform it
MINIMUM_ROLE: dict[Action, Role] = {
    Action.STOCK_VIEW: V,
    Action.CATALOG_VIEW: V,
    Action.SALE_RECORD: OP,
    Action.COUNT_PASS_WORK: OP,
    Action.UPSTOCK_WORK: OP,
    Action.SALE_REVERSE: M,
    Action.STOCK_RECEIVE: M,
    Action.STOCK_MOVE: M,
    Action.STOCK_ADJUST: M,
    Action.SHORTFALL_VIEW: M,
    Action.COUNT_SESSION_MANAGE: M,
    Action.COUNT_EXPECTED_VIEW: M,
    Action.VARIANCE_APPROVE: M,
    Action.DISCREPANCY_VIEW: M,
    Action.COUNT_FINALIZE: M,
    Action.CATALOG_EDIT: M,
    Action.PAR_LEVEL_EDIT: M,
    Action.TRANSFER_MANAGE: M,
    Action.PURCHASE_ORDER_MANAGE: M,
    Action.ADMIN_SITE: M,
    Action.ORG_SETTINGS_EDIT: A,
    Action.STORE_MANAGE: A,
    Action.MEMBERSHIP_MANAGE: A,
    Action.TOKEN_MANAGE: A,
    Action.APPROVE_ABOVE_THRESHOLD: A,
    Action.AUDIT_VIEW: A,
}

assert set(MINIMUM_ROLE) == set(Action), "every action needs a minimum role"


def role_can(role: str, action: Action) -> bool:
    return Role(role).rank >= MINIMUM_ROLE[Action(action)].rank


def capability_table_markdown() -> str:
    """The matrix as the Markdown table printed in the README (a test keeps them equal)."""
    roles = list(Role)
    header = "| action | " + " | ".join(r.value for r in roles) + " |"
    rule = "| --- |" + " :-: |" * len(roles)
    rows = [
        f"| {action.label} (`{action.value}`) | "
        + " | ".join("✓" if role_can(r, action) else "" for r in roles)
        + " |"
        for action in Action
    ]
    return "\n".join([header, rule, *rows])
