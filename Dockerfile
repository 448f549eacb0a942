# One image for every process: web (gunicorn), Celery worker, dispatcher, beat, Flower, the simulators and one-off commands
# (migrate, create_tenant, create_api_key). docker-compose.yml picks the process with `command`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=outreach.settings.production

# No libpq or compiler needed: psycopg[binary], hiredis, orjson and cryptography ship wheels.
# curl serves the health checks in docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system app \
    && useradd --system --gid app --home-dir /app --no-create-home app

WORKDIR /app
# Requirements first, so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=app:app . .
# /app/var: local mode's generated secrets and the simulator's key (docker-compose mounts a volume there).
RUN install -d -o app -g app /app/staticfiles /app/var && chown app:app /app
USER app

# The admin's CSS and JS are collected into the image and served by WhiteNoise (production settings).
# Those settings refuse to load without real-looking secrets: throwaway values for this step only.
# (The public key is a throwaway P-256 key whose private half was discarded.)
RUN SECRET_KEY=collectstatic-only-build-step-not-a-real-secret-0123456789abcdef \
    ALLOWED_HOSTS=build SENDGRID_INBOUND_SECRET=collectstatic-only-build-step \
    SENDGRID_API_KEY=SG.collectstatic-only-build-step PUBLIC_BASE_URL=https://build.invalid \
    SENDGRID_WEBHOOK_PUBLIC_KEY=MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtTGv9kHMC3sQdyZOHYItfSC/btCN51NIjmPpSRw9TprDd71U0qsMJNaOXGu5bGu0NS9KoT8Bnzp3Mil/1l5C9Q== \
    python manage.py collectstatic --noinput

EXPOSE 8000
# The default process is the web server: gunicorn.conf.py (threaded workers that survive idle and slow
# clients; WEB_CONCURRENCY workers x WEB_THREADS threads).
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--access-logfile", "-", \
     "--worker-tmp-dir", "/dev/shm", "--no-control-socket"]
