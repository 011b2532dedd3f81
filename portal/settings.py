"""Settings of the delegation portal: everything comes from the environment.

With no environment at all and PORTAL_DEBUG=1, the portal runs on embedded defaults: SQLite, a
local Redis, mail printed to the console, and secrets generated into the git-ignored data folder.
Outside debug mode a missing secret stops start-up with the variable's name.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from .environment import (
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_networks,
    env_str,
    key_encryption_keys,
    new_unsealing_key,
    sealing_key,
    unsealing_keys,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def env_secret(name: str, *, local_file: str, generate) -> str:
    """A secret from the environment; in debug mode only, one generated into the data folder."""
    value = os.environ.get(name)
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} is not set (it is required when PORTAL_DEBUG is off)")
    path = DATA_DIR / local_file
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        # Created with owner-only permissions before anything is written into it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(generate())
    return path.read_text().strip()


# --- Core ----------------------------------------------------------------------------------------

DEBUG = env_bool("PORTAL_DEBUG", False)
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", str(BASE_DIR / "var")))
SECRET_KEY = env_secret(
    "PORTAL_SECRET_KEY", local_file="secret-key", generate=lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = env_list("PORTAL_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Absolute links in emails point here.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("PORTAL_CSRF_TRUSTED_ORIGINS", PORTAL_BASE_URL)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Before django_rq: the portal's `rqworker` and `rqcron` replace django-rq's (`job_format`).
    "delegations",
    "django_rq",
    "axes",
    "csp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]

MIDDLEWARE = [
    # First: every log line of a request carries its ID.
    "delegations.monitoring.logs.RequestIdMiddleware",
    "delegations.intake.nul_bytes.RefuseNulMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "delegations.audit.admin_changes.AdminActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "delegations.directory.middleware.DirectoryUnavailableMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out login with the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "delegations.views.navigation.navigation",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------------

DATABASES = {
    "default": database_from_url(
        env_str("PORTAL_DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
        base_dir=BASE_DIR,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts ------------------------------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "delegations:request_list"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Local Django groups stand for teams: a group named "<prefix><team>" makes its members part of
# UCP team <team>. A repository names its owners group itself.
PORTAL_TEAM_GROUP_PREFIX = env_str("PORTAL_TEAM_GROUP_PREFIX", "team:")
# The group (directory or local) whose members may register repositories, besides superusers.
PORTAL_REGISTRAR_GROUP = env_str("PORTAL_REGISTRAR_GROUP", "registrars")
# Auditors read every repository's delegations, requests and audit log, and change nothing.
PORTAL_AUDITOR_GROUP = env_str("PORTAL_AUDITOR_GROUP", "auditors")

# --- Directory (LDAP) ----------------------------------------------------------------------------
# With PORTAL_LDAP_URI set, people log in with their directory account (django-auth-ldap), their
# teams are the groups under PORTAL_LDAP_TEAM_BASE and a repository's owners are the members of
# the group under PORTAL_LDAP_GROUP_BASE it names. Local accounts keep their local groups.

PORTAL_LDAP_URI = env_str("PORTAL_LDAP_URI", "")
PORTAL_LDAP_BIND_DN = env_str("PORTAL_LDAP_BIND_DN", "")
PORTAL_LDAP_BIND_PASSWORD = env_str("PORTAL_LDAP_BIND_PASSWORD", "")
PORTAL_LDAP_START_TLS = env_bool("PORTAL_LDAP_START_TLS", False)
# The CA that signed the directory's certificate (StartTLS or ldaps://); the system's otherwise.
PORTAL_LDAP_CA_FILE = env_str("PORTAL_LDAP_CA_FILE", "")
PORTAL_LDAP_TIMEOUT = env_float("PORTAL_LDAP_TIMEOUT", 5.0)
PORTAL_LDAP_USER_BASE = env_str("PORTAL_LDAP_USER_BASE", "")
PORTAL_LDAP_USER_FILTER = env_str("PORTAL_LDAP_USER_FILTER", "(uid=%(user)s)")
PORTAL_LDAP_USERNAME_ATTRIBUTE = env_str("PORTAL_LDAP_USERNAME_ATTRIBUTE", "uid")
# Entries matching this filter are disabled accounts: they cannot log in, and the sync ends
# their delegations. The default is the demo tree's convention (shadowExpire: 1); at work it is
# e.g. (pwdAccountLockedTime=*), or Active Directory's
# (userAccountControl:1.2.840.113556.1.4.803:=2).
PORTAL_LDAP_DISABLED_FILTER = env_str("PORTAL_LDAP_DISABLED_FILTER", "(shadowExpire=1)")
PORTAL_LDAP_GROUP_BASE = env_str("PORTAL_LDAP_GROUP_BASE", "")
PORTAL_LDAP_TEAM_BASE = env_str("PORTAL_LDAP_TEAM_BASE", "")
PORTAL_LDAP_GROUP_FILTER = env_str("PORTAL_LDAP_GROUP_FILTER", "(objectClass=groupOfNames)")
PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE = env_str("PORTAL_LDAP_GROUP_MEMBER_ATTRIBUTE", "member")
# Members of this group (a DN) are portal administrators: staff and superuser.
PORTAL_LDAP_ADMIN_GROUP = env_str("PORTAL_LDAP_ADMIN_GROUP", "")
# How long a read of the directory (someone's groups, a group's members) is reused.
PORTAL_DIRECTORY_CACHE_SECONDS = env_int("PORTAL_DIRECTORY_CACHE_SECONDS", 60)
# Through a directory outage, its last answers are used up to this old, then the outage shows.
PORTAL_DIRECTORY_STALE_SECONDS = env_int("PORTAL_DIRECTORY_STALE_SECONDS", 900)
# How often the sync looks for members who left a team or were disabled.
PORTAL_DIRECTORY_SYNC_SECONDS = env_int("PORTAL_DIRECTORY_SYNC_SECONDS", 900)
# A sync that would end more delegations than this ends none and says so: a directory that
# suddenly shows everyone out of their teams is more likely misconfigured than emptied.
PORTAL_DIRECTORY_SYNC_MAX_ENDINGS = env_int("PORTAL_DIRECTORY_SYNC_MAX_ENDINGS", 25)

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if PORTAL_LDAP_URI:
    from portal.ldap_settings import django_auth_ldap_settings

    for _name in ("USER_BASE", "GROUP_BASE", "TEAM_BASE"):
        if not globals()[f"PORTAL_LDAP_{_name}"]:
            raise ImproperlyConfigured(f"PORTAL_LDAP_{_name} is required with PORTAL_LDAP_URI")
    globals().update(django_auth_ldap_settings(globals()))
    AUTHENTICATION_BACKENDS = [
        "delegations.directory.login.DirectoryBackend",
        "delegations.directory.login.LocalAccountBackend",
    ]

# Failed logins are counted (django-axes) per account and per address, each on its own: a
# password guesser is stopped whether it tries one account from many places or many accounts
# from one. The lock-out is audited and lifts by itself after PORTAL_LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = ["delegations.directory.login.LoginThrottle", *AUTHENTICATION_BACKENDS]
AXES_FAILURE_LIMIT = env_int("PORTAL_LOGIN_FAILURE_LIMIT", 20)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_COOLOFF_TIME = timedelta(minutes=env_int("PORTAL_LOGIN_LOCKOUT_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "delegations.directory.login.client_address"
AXES_VERBOSE = False

# Sessions end PORTAL_SESSION_HOURS after sign-in, whatever happens in between; people can also
# end all of theirs at once ("Log out everywhere").
SESSION_COOKIE_AGE = env_int("PORTAL_SESSION_HOURS", 8) * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
PORTAL_BEHIND_TLS_PROXY = env_bool("PORTAL_BEHIND_TLS_PROXY", False)
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto header to know a request is https.
if PORTAL_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
_served_over_https = PORTAL_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = env_bool("PORTAL_SECURE_COOKIES", _served_over_https)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("PORTAL_SSL_REDIRECT", False)
# Probes talk to the process itself over plain http (compose's healthcheck, a load balancer,
# Prometheus): they are answered, never redirected.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("PORTAL_HSTS_SECONDS", 0)
# Both bind every subdomain of the portal's domain (and, preloaded, for good): the operator's
# call, not the portal's, so they are off unless set.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("PORTAL_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("PORTAL_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# The pages' scripts and styles are the portal's own files: no inline script or style, nothing
# from elsewhere (django-csp). The API's reference page is the one exception, for the inline
# styles Swagger UI sets (views/api/docs.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# --- Queue (django-rq) ---------------------------------------------------------------------------

REDIS_URL = env_str("PORTAL_REDIS_URL", "redis://127.0.0.1:6379/0")
# Jobs are JSON, never pickle (`delegations.job_format` says why).
RQ_QUEUES = {
    "default": {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": 300,
        "SERIALIZER": "rq.serializers.JSONSerializer",
    }
}
# Enqueue means enqueue now: services already wait for their transaction to commit
# (transaction.on_commit) before they queue a job, so the job never runs before its rows exist.
RQ = {"COMMIT_MODE": "auto"}
# Back-off after a transient error (seconds before each retry), and how many times a change is
# tried before it fails (one a publish may have carried is tried until a read settles it).
PORTAL_JOB_RETRY_INTERVALS = env_int_list("PORTAL_JOB_RETRY_INTERVALS", "10,60,300,900")
PORTAL_PUBLISH_ATTEMPTS = env_int("PORTAL_PUBLISH_ATTEMPTS", 5)
# A worker that has not renewed its publish lease for this long is dead (must exceed
# PORTAL_NOTARY_TIMEOUT); the sweep runs this often. Together: resumed within 30 s of a crash.
PORTAL_STALLED_AFTER_SECONDS = env_int("PORTAL_STALLED_AFTER_SECONDS", 15)
PORTAL_SWEEP_SECONDS = env_int("PORTAL_SWEEP_SECONDS", 10)
# How often the reconciler compares each repository's trust data with the portal (drift).
PORTAL_RECONCILE_SECONDS = env_int("PORTAL_RECONCILE_SECONDS", 300)
# A request nobody decided on in this many days expires (its requester is told).
PORTAL_REQUEST_EXPIRY_DAYS = env_int("PORTAL_REQUEST_EXPIRY_DAYS", 7)
# An email is given up (left unsent, with its last error, in the admin) after this many tries.
PORTAL_NOTIFICATION_MAX_ATTEMPTS = env_int("PORTAL_NOTIFICATION_MAX_ATTEMPTS", 20)
# Members and owners are reminded this many days before a delegation's certificate expires.
PORTAL_CERTIFICATE_REMINDER_DAYS = env_int_list("PORTAL_CERTIFICATE_REMINDER_DAYS", "30,7")
# ...and this many days before a delegation's last day, when it comes before the certificate's.
PORTAL_END_REMINDER_DAYS = env_int_list("PORTAL_END_REMINDER_DAYS", "7,1")
# The owners are reminded of an unfinished access review this many days before its deadline.
PORTAL_REVIEW_REMINDER_DAYS = env_int("PORTAL_REVIEW_REMINDER_DAYS", 3)
# A requester is reminded this many hours before their undecided request expires.
PORTAL_REQUEST_EXPIRY_REMINDER_HOURS = env_int("PORTAL_REQUEST_EXPIRY_REMINDER_HOURS", 24)

# Shared by every process: the API's per-token rate limits are counted here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "portal",
    }
}

# --- API (Django REST framework) -----------------------------------------------------------------

# Calls per token (or, from a browser session, per person): "<count>/<second|minute|hour|day>".
PORTAL_API_RATE = env_str("PORTAL_API_RATE", "300/minute")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "delegations.views.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["delegations.views.api.auth.PerTokenThrottle"],
    # JSON in and out, errors included: never an HTML page.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "delegations.views.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "delegations.views.api.paging.Paging",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Delegation portal API",
    "DESCRIPTION": "Ask for, decide on and end image-signing delegations. Authenticate with "
    "`Authorization: Bearer <token>`; make a token on the portal's API tokens page.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The reference page's assets come from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Audit ---------------------------------------------------------------------------------------

# The key of the audit chain's HMAC and of its checkpoints (delegations.audit): kept out of the
# database, so someone who can write to it cannot recompute the chain after an edit.
PORTAL_AUDIT_KEY = env_secret(
    "PORTAL_AUDIT_KEY", local_file="audit-key", generate=lambda: secrets.token_urlsafe(32)
)
if len(PORTAL_AUDIT_KEY) < 32:
    raise ImproperlyConfigured("PORTAL_AUDIT_KEY must be at least 32 random characters")
# Signed checkpoints of the chain (head hash, count, time) go to the log stream and to this
# address, every PORTAL_AUDIT_CHECKPOINT_HOURS; empty: the log stream only.
PORTAL_AUDIT_EMAIL = env_str("PORTAL_AUDIT_EMAIL", "")
PORTAL_AUDIT_CHECKPOINT_HOURS = env_int("PORTAL_AUDIT_CHECKPOINT_HOURS", 24)

# --- Operations ----------------------------------------------------------------------------------

# /readyz also asks each Notary server of the registered repositories for its health.
PORTAL_READYZ_NOTARY = env_bool("PORTAL_READYZ_NOTARY", False)
# /metrics answers a scraper that sends this bearer token, or one at an address in these networks.
PORTAL_METRICS_TOKEN = env_str("PORTAL_METRICS_TOKEN", "")
PORTAL_METRICS_NETWORKS = env_networks(
    "PORTAL_METRICS_NETWORKS", env_str("PORTAL_METRICS_NETWORKS", "127.0.0.0/8,::1/128")
)

# --- Mail ----------------------------------------------------------------------------------------

_smtp_url = env_str("PORTAL_SMTP_URL", "")
if _smtp_url:
    _smtp = urlsplit(_smtp_url)
    if _smtp.scheme not in ("smtp", "smtps"):
        raise ImproperlyConfigured("PORTAL_SMTP_URL must start with smtp:// or smtps://")
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _smtp.hostname or "localhost"
    EMAIL_PORT = _smtp.port or (465 if _smtp.scheme == "smtps" else 25)
    EMAIL_HOST_USER = unquote(_smtp.username or "")
    EMAIL_HOST_PASSWORD = unquote(_smtp.password or "")
    EMAIL_USE_SSL = _smtp.scheme == "smtps"
    EMAIL_USE_TLS = parse_qs(_smtp.query).get("starttls", ["0"])[-1] in ("1", "true", "yes")
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = env_str(
        "PORTAL_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
    )
DEFAULT_FROM_EMAIL = env_str("PORTAL_EMAIL_FROM", "Delegation portal <portal@localhost>")

# --- Keys ----------------------------------------------------------------------------------------

# Repository keys are sealed to an X25519 public key, the sealing key, that every process may
# hold; only the worker holds the private halves that open them (delegations.keystore). The web
# process gets PORTAL_KEY_SEALING_KEY alone. A process given only PORTAL_KEY_UNSEALING_KEYS
# seals to the first one's public half. `manage.py keys_generate` makes a pair.
PORTAL_KEY_UNSEALING_KEYS = unsealing_keys(env_list("PORTAL_KEY_UNSEALING_KEYS", ""))
_sealing_key_setting = env_str("PORTAL_KEY_SEALING_KEY", "").strip()
if not _sealing_key_setting and not PORTAL_KEY_UNSEALING_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PORTAL_KEY_SEALING_KEY is not set (the web process needs it, and the worker needs "
            "PORTAL_KEY_UNSEALING_KEYS; it is required when PORTAL_DEBUG is off)"
        )
    PORTAL_KEY_UNSEALING_KEYS = unsealing_keys(
        [
            env_secret(
                "PORTAL_KEY_UNSEALING_KEYS",
                local_file="key-unsealing-key",
                generate=new_unsealing_key,
            )
        ]
    )
PORTAL_KEY_SEALING_KEY = sealing_key(_sealing_key_setting, unsealing=PORTAL_KEY_UNSEALING_KEYS)
# Shared AES keys that sealed repository keys before sealing became asymmetric: configured on
# the worker only, until `manage.py keys_rewrap` has re-sealed every key to the sealing key.
PORTAL_KEY_ENCRYPTION_KEYS = key_encryption_keys(env_list("PORTAL_KEY_ENCRYPTION_KEYS", ""))
_legacy_local_key = DATA_DIR / "key-encryption-key"
# A data folder from before keeps opening in debug mode; `make run` re-seals its keys.
if DEBUG and PORTAL_KEY_UNSEALING_KEYS and _legacy_local_key.exists():
    PORTAL_KEY_ENCRYPTION_KEYS = PORTAL_KEY_ENCRYPTION_KEYS or key_encryption_keys(
        [_legacy_local_key.read_text().strip()]
    )

# How long a root key file prepared for a repository's owners waits for them to confirm they
# stored it; then the file is deleted and the root key stays sealed in the portal.
PORTAL_ROOT_KEY_HANDOVER_HOURS = env_int("PORTAL_ROOT_KEY_HANDOVER_HOURS", 24)

# --- Notary --------------------------------------------------------------------------------------

PORTAL_NOTARY_TIMEOUT = env_float("PORTAL_NOTARY_TIMEOUT", 10.0)
# A CA bundle for TLS to Notary servers; empty means the system's trust store.
PORTAL_NOTARY_CA_BUNDLE = env_str("PORTAL_NOTARY_CA_BUNDLE", "")
# The service account the portal gets DTR tokens with (Notary token auth); empty for none, when
# the Notary server asks for no authentication.
PORTAL_NOTARY_USERNAME = env_str("PORTAL_NOTARY_USERNAME", "")
PORTAL_NOTARY_PASSWORD = env_str("PORTAL_NOTARY_PASSWORD", "")

# --- DTR -----------------------------------------------------------------------------------------

# The account that gives a delegated member's team push access in DTR (admin on the
# repositories, or their organisations' namespaces) and its access token; empty: the portal
# leaves DTR's access alone. A repository's DTR API is https://<its DTR host> unless it says.
PORTAL_DTR_USERNAME = env_str("PORTAL_DTR_USERNAME", "")
PORTAL_DTR_TOKEN = env_str("PORTAL_DTR_TOKEN", "")
PORTAL_DTR_CA_BUNDLE = env_str("PORTAL_DTR_CA_BUNDLE", "")
PORTAL_DTR_TIMEOUT = env_float("PORTAL_DTR_TIMEOUT", 10.0)
# UCP's API (e.g. https://ucp.example.org): when set, a request's certificate must carry one of
# the requester's client-bundle keys as UCP lists them, read as this account (TLS and timeout as
# for DTR).
PORTAL_UCP_URL = env_str("PORTAL_UCP_URL", "")
PORTAL_UCP_USERNAME = env_str("PORTAL_UCP_USERNAME", "")
PORTAL_UCP_PASSWORD = env_str("PORTAL_UCP_PASSWORD", "")
# With PORTAL_UCP_URL, the directory sync also ends a delegation whose key UCP no longer lists
# among the member's client bundles (the member deleted the bundle). Off: only requests are
# checked against UCP.
PORTAL_UCP_SYNC_BUNDLES = env_bool("PORTAL_UCP_SYNC_BUNDLES", True)
# The kind of targets key the portal makes for a repository whose trust it initialises.
PORTAL_TARGETS_KEY_ALGORITHM = env_str("PORTAL_TARGETS_KEY_ALGORITHM", "ecdsa-p256")
_TARGETS_KEY_ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
if PORTAL_TARGETS_KEY_ALGORITHM not in _TARGETS_KEY_ALGORITHMS:
    raise ImproperlyConfigured(
        f"PORTAL_TARGETS_KEY_ALGORITHM must be one of {', '.join(_TARGETS_KEY_ALGORITHMS)}"
    )

# --- Certificates --------------------------------------------------------------------------------

# Upload cap for a certificate: a bundle's cert.pem is a few KiB.
PORTAL_CERTIFICATE_MAX_BYTES = env_int("PORTAL_CERTIFICATE_MAX_BYTES", 64 * 1024)
# The UCP client CA (UCP's ca.pem, PEM, several allowed): a member's certificate must chain to it.
# Empty means any issuer (the other checks still apply).
PORTAL_UCP_CA_BUNDLE = env_str("PORTAL_UCP_CA_BUNDLE", "")
# The certificate subject attribute that must name the requester: CN and UID are compared with
# the username, emailAddress with the user's email, all case-insensitively.
PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE = env_str("PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE", "CN")
if PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE not in ("CN", "UID", "emailAddress"):
    raise ImproperlyConfigured(
        "PORTAL_CERTIFICATE_SUBJECT_ATTRIBUTE must be CN, UID or emailAddress"
    )
# Requesters prove they hold the certificate's private key by signing a challenge; how long a
# challenge stays usable.
PORTAL_REQUIRE_PROOF_OF_POSSESSION = env_bool("PORTAL_REQUIRE_PROOF_OF_POSSESSION", True)
PORTAL_POSSESSION_CHALLENGE_SECONDS = env_int("PORTAL_POSSESSION_CHALLENGE_SECONDS", 30 * 60)
if PORTAL_POSSESSION_CHALLENGE_SECONDS < 10 * 60:
    # Shorter leaves no time to run the openssl command, and a refused form shows a new one.
    raise ImproperlyConfigured("PORTAL_POSSESSION_CHALLENGE_SECONDS must be at least 600")
# Uploads are kept in memory only (never in a temporary file) and refused beyond the cap.
FILE_UPLOAD_HANDLERS = ["delegations.intake.uploads.CappedMemoryUploadHandler"]
DATA_UPLOAD_MAX_MEMORY_SIZE = 256 * 1024

# --- Static files, language, logging --------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("PORTAL_STATIC_ROOT", str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("PORTAL_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# plain: for people reading a terminal (`make run`); json: one object per line with the request
# ID, for a log pipeline (the compose file sets it).
PORTAL_LOG_FORMAT = env_str("PORTAL_LOG_FORMAT", "plain")
if PORTAL_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"PORTAL_LOG_FORMAT is plain or json, not {PORTAL_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "delegations.monitoring.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "delegations.monitoring.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": PORTAL_LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("PORTAL_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
