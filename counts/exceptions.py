"""Count errors: each with a stable code the tablet and the API can rely on."""

from core.errors import ApplicationError


class FullCountActive(ApplicationError):
    code = "full_count_active"
    status = 409
    message = "A full-store count is already active in this store."


class ScopeInUse(ApplicationError):
    code = "scope_in_use"
    status = 409
    message = "An open pass of another active session already counts this location and category."


class WrongState(ApplicationError):
    code = "invalid_state"
    status = 409
    message = "Not possible in the current state."


class PassNotOpen(ApplicationError):
    code = "pass_not_open"
    status = 409
    message = "Lines change only while their pass is in progress."


class ApprovalRequired(ApplicationError):
    code = "approval_required"
    status = 409
    message = "Some variance rows still await approval."


class SelfApproval(ApplicationError):
    code = "self_approval"
    status = 403
    message = "The person who reconciled a count cannot approve or reject its variance."


class EscalationRequired(ApplicationError):
    code = "escalation_required"
    status = 403
    message = "This variance is above the escalation threshold: an admin must decide."


class OutOfScope(ApplicationError):
    code = "out_of_scope"
    status = 400
    message = "Outside the session's scope."
