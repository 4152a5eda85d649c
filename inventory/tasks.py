"""Celery tasks. Tasks take ids and re-enter the tenant scope themselves."""

from celery import shared_task


@shared_task(name="inventory.ping")
def ping(payload: str = "pong") -> str:
    """Smoke task: proves a worker picks work off the broker and answers."""
    return payload
