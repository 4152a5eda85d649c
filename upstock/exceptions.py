"""Upstock errors: each with a stable code the tablet and the API can rely on."""

from core.errors import ApplicationError


class RunNotInProgress(ApplicationError):
    code = "run_not_in_progress"
    status = 409
    message = "The run is completed or abandoned: its lines no longer change."


class LinesPending(ApplicationError):
    code = "lines_pending"
    status = 409
    message = "Every line must be done, skipped or an exception before the run is completed."


class NotOnRun(ApplicationError):
    code = "not_on_run"
    status = 409
    message = "The scanned product is not on this run."


class WrongProduct(ApplicationError):
    code = "wrong_product"
    status = 409
    message = "The scanned product is not the line's product."


class LineDecided(ApplicationError):
    code = "line_decided"
    status = 409
    message = "The line is already settled another way."


class NotASalesFloor(ApplicationError):
    code = "not_a_sales_floor"
    status = 400
    message = "Upstock runs and par levels are for active sales-floor locations of the store."
