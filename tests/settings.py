"""Settings for the test suite: the real settings module, with secrets generated per run.

The values go into the environment, so the rqworker processes the tests start inherit the same
key-encryption key and data folder.
"""

import base64
import os
import secrets
import tempfile

os.environ.setdefault("PORTAL_DEBUG", "0")
os.environ.setdefault("PORTAL_SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault(
    "PORTAL_KEY_ENCRYPTION_KEYS", base64.b64encode(secrets.token_bytes(32)).decode()
)
os.environ.setdefault("PORTAL_DATA_DIR", tempfile.mkdtemp(prefix="portal-tests-"))
os.environ.setdefault("PORTAL_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("PORTAL_BASE_URL", "http://portal.test")
os.environ.setdefault("PORTAL_JOB_RETRY_INTERVALS", "1,1")
os.environ.setdefault("PORTAL_NOTARY_TIMEOUT", "5")

from portal.settings import *  # noqa: F403

if not os.environ.get("PORTAL_SMTP_URL"):
    # In-process tests read django.core.mail.outbox; workers started by tests mail a real
    # SMTP server instead (PORTAL_SMTP_URL).
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# WhiteNoise expects collected static files; the suite does not collect them.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
# Hashing demo passwords fast keeps login-heavy tests quick; production keeps PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
