"""Gunicorn settings of Carnet's web process, read from the working directory by `gunicorn config.wsgi`.

The Dockerfile and docker-compose.yml start gunicorn from /app, where this file is; elsewhere pass
``-c gunicorn.conf.py``. Command-line options (``--bind``, ``--workers``) still override what is here.
"""

import os

# The access log goes to standard output, one line a request.
accesslog = "-"

# No query string in the access log: a FHIR search carries the patient's NIR and birth date in it
# (/fhir/Patient?identifier=…|NIR&birthdate=…). %(U)s is the path alone, where gunicorn's default %(r)s is the
# whole request line. No referrer either (%(f)s): it is a page address with its own query string.
# Fields: client address, method, path, protocol, status, response bytes, duration in ms, user agent.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'

# CARNET_LOG_FORMAT=json (as for Django's logs, config/settings.py): one JSON object a line, for both the
# access log (stdout) and gunicorn's own log (stderr).
if os.environ.get("CARNET_LOG_FORMAT", "text") == "json":
    _json = {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json},
        "handlers": {
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
        },
        "root": {"level": "INFO", "handlers": []},
    }

# Threaded workers (gthread): a request spends much of its time waiting on PostgreSQL, Redis, the SMTP relay or
# the disk, and a sync worker holds its only slot meanwhile; with threads another request of the same process
# runs in that wait, and keep-alive connections from practice software are kept (a sync worker closes each).
# --workers still comes from the command line (Dockerfile, docker-compose.yml: 2 per core pair). Each thread holds
# its own database connection (CONN_MAX_AGE): workers x threads connections per web container.
# Measured with bench/load.py (bench/README.md).
worker_class = "gthread"
threads = int(os.environ.get("CARNET_WEB_THREADS", "4"))
# An idle keep-alive connection is closed after this long. Above the 2 s default: a client that pauses (practice
# software between two calls, a proxy's pooled connection) would otherwise race the close and get its next
# request reset (bench/load.py saw it at 50 users). Idle connections wait in the worker's poller, not a thread.
keepalive = int(os.environ.get("CARNET_WEB_KEEPALIVE_SECONDS", "65"))
