# The portal's image: the same code runs the web server (gunicorn) and the worker (rqworker).
FROM python:3.11-slim-bookworm

# python-ldap builds against OpenLDAP and SASL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
ENV PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=portal.settings \
    PORTAL_STATIC_ROOT=/app/staticfiles \
    PORTAL_DATA_DIR=/var/lib/portal
# Debug mode only for this build step, to collect static files without production secrets.
RUN PORTAL_DEBUG=1 PORTAL_DATA_DIR=/tmp/build python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build

RUN useradd --system --uid 1000 portal && mkdir -p /var/lib/portal && chown portal /var/lib/portal
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "--bind", "0.0.0.0:8000"]
