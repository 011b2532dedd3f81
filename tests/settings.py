"""Settings for the test suite: the real settings module, with secrets generated per run.

The values go into the environment, so the rqworker processes the tests start inherit the same
unsealing key and data folder.

The suite runs on SQLite, or on PostgreSQL with `PORTAL_TEST_DATABASE=postgres`: then a
throwaway cluster starts here (tests/postgres.py) unless `PORTAL_DATABASE_URL` already names one,
as it does in the workers the tests start.
"""

import atexit
import base64
import os
import secrets
import shutil
import tempfile

from django.core.exceptions import ImproperlyConfigured

from tests.postgres import start_cluster

os.environ.setdefault("PORTAL_DEBUG", "0")
os.environ.setdefault("PORTAL_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("PORTAL_AUDIT_KEY", secrets.token_urlsafe(32))
# The suite plays web and worker in one process, so it holds the unsealing key (and seals to
# its public half); tests/test_web_holds_no_unsealing_key.py starts a web process without it.
os.environ.setdefault(
    "PORTAL_KEY_UNSEALING_KEYS", base64.b64encode(secrets.token_bytes(32)).decode()
)
if "PORTAL_DATA_DIR" not in os.environ:
    # Removed at exit by the process that made it, not by the workers that inherit it.
    os.environ["PORTAL_DATA_DIR"] = tempfile.mkdtemp(prefix="portal-tests-")
    atexit.register(shutil.rmtree, os.environ["PORTAL_DATA_DIR"], ignore_errors=True)
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.path.basename(os.environ["PORTAL_DATA_DIR"]) != _worker:
    # Each pytest-xdist worker (gw0, gw1, …) keeps its files in a folder of its own inside the
    # run's, which the processes it starts inherit; its databases are its own too (pytest-django
    # names them test_…_gw0, on the run's one PostgreSQL cluster).
    os.environ["PORTAL_DATA_DIR"] = os.path.join(os.environ["PORTAL_DATA_DIR"], _worker)
    os.makedirs(os.environ["PORTAL_DATA_DIR"], exist_ok=True)
os.environ.setdefault("PORTAL_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("PORTAL_BASE_URL", "http://portal.test")
os.environ.setdefault("PORTAL_JOB_RETRY_INTERVALS", "1,1")
os.environ.setdefault("PORTAL_NOTARY_TIMEOUT", "5")

_TEST_DATABASE = os.environ.get("PORTAL_TEST_DATABASE", "sqlite")
if _TEST_DATABASE not in ("sqlite", "postgres"):
    raise ImproperlyConfigured(
        f"PORTAL_TEST_DATABASE is sqlite or postgres, not {_TEST_DATABASE!r}"
    )
if _TEST_DATABASE == "postgres" and not os.environ.get("PORTAL_DATABASE_URL"):
    os.environ["PORTAL_DATABASE_URL"] = start_cluster()

# After the environment is complete: the real settings module reads it as it loads.
from portal.settings import *  # noqa: E402, F403

if not os.environ.get("PORTAL_SMTP_URL"):
    # In-process tests read django.core.mail.outbox; workers started by tests mail a real
    # SMTP server instead (PORTAL_SMTP_URL).
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# WhiteNoise expects collected static files; the suite does not collect them.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# Hashing demo passwords fast keeps login-heavy tests quick; production keeps PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# In-process tests count API calls in memory; tests/api/test_rate_limits.py counts them in the
# real Redis, as production does.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
