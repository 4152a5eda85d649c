"""(being written)"""


def register() -> None:
    """Register this module's hooks (called once from ``DiscrepanciesConfig.ready``)."""
