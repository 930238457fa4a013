# Carnet application image: web (gunicorn), worker and beat share it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# WeasyPrint's libraries; libharfbuzz-subset0 keeps letters at ~43 ms instead of ~240 ms (pure-Python fallback).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 \
      libmagic1 fonts-dejavu-core gettext \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml ./
COPY config ./config
COPY plumbing ./plumbing
COPY records ./records
COPY access_control ./access_control
COPY notifications ./notifications
COPY accounts ./accounts
COPY patients ./patients
COPY practitioners ./practitioners
COPY fhir_server ./fhir_server
RUN pip install .
COPY . .
# Static files with content-hashed names and gzip/Brotli copies, served by the web process itself (WhiteNoise).
# The manifest storage is the production default (CARNET_DEBUG off); said explicitly so that the build never
# collects plain names that the running image's `{% static %}` would then not find in the manifest.
RUN CARNET_STATIC_MANIFEST=1 python manage.py collectstatic --noinput

RUN useradd --system --home /app carnet && mkdir -p /app/var && chown carnet /app/var
USER carnet
EXPOSE 8000
# gunicorn.conf.py (read from /app): access log on stdout without query strings, JSON when CARNET_LOG_FORMAT=json.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
