"""Signals of the discrepancies app.

``discrepancies_recorded`` is sent inside the recording transaction with the organisation,
the ids of every discrepancy recorded and those of the open HIGH/CRITICAL ones (``serious``).
Receivers that reach outside the database (e-mail) must wait for the commit
(``transaction.on_commit``): a rolled-back recording announced nothing.
"""

from django.dispatch import Signal

discrepancies_recorded = Signal()
