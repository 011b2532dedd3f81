"""The web process can seal a repository key but never open one (issue 15, item 4): `make run`
and the compose file give it the public sealing key only."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from delegations import keystore
from stack.__main__ import web_environment
from tests.conftest import BASE_DIR

# Run inside the web process's environment: what its settings hold, and whether a key sealed by
# the worker opens there.
PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from delegations import keystore
values = {name: repr(getattr(settings, name)) for name in dir(settings) if name.isupper()}
sealed = keystore.SealedKey(sys.argv[1], bytes.fromhex(sys.argv[2]))
try:
    keystore.unseal(sealed, context="dtr.example.org/dev/nginx\\x00targets")
    opened = "opened"
except keystore.KeystoreError as error:
    opened = str(error)
print(json.dumps({"settings": values, "unseal": opened}))
"""


def test_the_web_process_seals_to_the_worker_but_holds_nothing_that_opens(tmp_path, settings):
    unsealing = settings.PORTAL_KEY_UNSEALING_KEYS[0]
    legacy = keystore.generate_key_pair().unsealing_key  # any 32 bytes, as a format-1 key
    # The worker's environment as `make run` builds it, with a data folder from before that still
    # has its shared key-encryption key: the web server must not pick that up either.
    (tmp_path / "key-encryption-key").write_text(legacy)
    (tmp_path / "key-unsealing-key").write_text(unsealing)
    worker = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_KEY_")},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_DEBUG": "1",
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_KEY_UNSEALING_KEYS": unsealing,
        "PORTAL_KEY_ENCRYPTION_KEYS": legacy,
    }
    sealed = keystore.seal(b"targets key", context="dtr.example.org/dev/nginx\x00targets")

    result = subprocess.run(
        [sys.executable, "-c", PROBE, sealed.key_encryption_key_id, sealed.blob.hex()],
        cwd=BASE_DIR,
        env=web_environment(worker),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    web = json.loads(result.stdout)
    assert "holds no unsealing key" in web["unseal"]
    assert web["settings"]["PORTAL_KEY_UNSEALING_KEYS"] == "[]"
    assert web["settings"]["PORTAL_KEY_ENCRYPTION_KEYS"] == "[]"
    for name, value in web["settings"].items():
        assert unsealing not in value, f"the web process's {name} holds the unsealing key"
        assert legacy not in value, f"the web process's {name} holds the old shared key"
    # It seals to the key the worker opens.
    sealing = ast.literal_eval(web["settings"]["PORTAL_KEY_SEALING_KEY"])
    assert keystore.sealing_key_id_of(sealing) == sealed.key_encryption_key_id
