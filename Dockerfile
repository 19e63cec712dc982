# syncd: one image for migrate, web (gunicorn), worker and beat (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SYNCD_VAR_DIR=/var/lib/syncd

RUN useradd --system --home-dir /var/lib/syncd --shell /usr/sbin/nologin syncd \
    && mkdir -p /var/lib/syncd /etc/syncd && chown syncd:syncd /var/lib/syncd

WORKDIR /app
COPY pyproject.toml README.md config.py beat_schedule.py alembic.ini ./
COPY syncd ./syncd
COPY migrations ./migrations
# Editable install: the migrations stay next to the package, where `syncd db upgrade` finds them.
RUN pip install -e ".[redis,fast]" && syncd --help >/dev/null

USER syncd
EXPOSE 8000
CMD ["celery", "-A", "syncd.worker", "worker", "--loglevel=info"]
