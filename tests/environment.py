"""Loaded by pytest with `-p tests.environment` before Django reads its settings.

The live server used by the browser tests builds its middleware once, so the settings it reads at start-up
(plain-HTTP cookies and no HTTPS redirect on 127.0.0.1) must be in the environment before Django starts.
"""

import os

os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
# No collectstatic before the tests: plain static names, not the production manifest (config/settings.py).
os.environ.setdefault("CARNET_STATIC_MANIFEST", "0")
