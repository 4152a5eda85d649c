"""Discrepancy errors: each with a stable code the API, the admin and the tablet rely on."""

from core.errors import ApplicationError


class WrongState(ApplicationError):
    code = "invalid_state"
    status = 409
    message = "Not possible in the discrepancy's current state."


class SelfApproval(ApplicationError):
    code = "self_approval"
    status = 403
    message = "Nobody approves or rejects a discrepancy they recorded or reconciled."


class EscalationRequired(ApplicationError):
    code = "escalation_required"
    status = 403
    message = (
        "This discrepancy is HIGH or CRITICAL, or above the escalation threshold: "
        "an admin must decide."
    )


class ApproverRequired(ApplicationError):
    code = "permission_denied"
    status = 403
    message = "Only managers and admins decide discrepancies."


class NoteRequired(ApplicationError):
    code = "note_required"
    status = 400
    message = "Approving your own discrepancy needs a note saying why nobody else could."


class OpenDiscrepancy(ApplicationError):
    """A sale, move or transfer send refused in enforcement mode ``block``: a product it takes
    out of a store is held there (an open HIGH or CRITICAL discrepancy). ``fields`` names each
    held line's product (``lines.N.product``); ``lines`` lists them with the product, the
    store, the open discrepancies' ids and the worst severity. A manager's ``override_reason``
    lets it through."""

    code = "open_discrepancy"
    status = 409
    message = "A HIGH or CRITICAL discrepancy is open for this product at this store."
