"""Test settings: PostgreSQL always (SQLite hides locking and constraint bugs).

``DATABASE_URL`` if set, else the server on 127.0.0.1:5432. There is no SQLite fallback: the
test runner refuses to start without PostgreSQL (see tests/conftest.py). The test database is
``test_<name in DATABASE_URL>`` (pytest-xdist adds ``_gw0``…), or ``TEST_DATABASE_NAME``.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/inventory")

from config.settings.base import *  # noqa: E402,F403
from config.settings.base import DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
DATABASES["default"]["CONN_MAX_AGE"] = 0
# "test_" + the database DATABASE_URL names, so runs against different databases of one server
# never share (and drop) one test database; TEST_DATABASE_NAME overrides it.
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("TEST_DATABASE_NAME") or f"test_{DATABASES['default']['NAME']}",
}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {  # noqa: F405
    "login": "1000/min",
    "login_account": "1000/min",
}
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
