#!/usr/bin/env bash
# `make demo`: migrate, import the bundled sample collection, embed it, serve it on
# http://127.0.0.1:8000/. Re-running is safe: the import is idempotent.
#
# A demo admin account is created only when GALLERY_DEMO_ADMIN_PASSWORD is set (user name from
# GALLERY_DEMO_ADMIN_USER, default "admin"); no password is ever built into the project.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PY:-.venv/bin/python}"
export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"

# The broker: RabbitMQ where it runs (a killed worker's batch is delivered again at once), else
# kombu's filesystem transport, which needs no server. The model: google/siglip-base-patch16-224
# when it can be loaded (the Hugging Face cache or GALLERY_EMBEDDING_MODEL), else the small
# offline test model (the pages then say that results are not semantic).
if [ -z "${CELERY_BROKER_URL:-}" ]; then
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//"
  else
    export CELERY_BROKER_URL="filesystem://"
    mkdir -p var/broker/queue var/broker/processed  # its folders (gallery/settings.py)
  fi
fi
echo "Celery broker: $CELERY_BROKER_URL"
# The real model comes from the Hugging Face cache; HF_HUB_OFFLINE=0 lets the demo download it.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"

"$PY" manage.py migrate --noinput

# A real worker process embeds the collection (and, later, anything curators add).
mkdir -p var
"$PY" -m celery -A gallery worker --queues embed,default --concurrency 1 --loglevel WARNING \
  --hostname "demo@%h" > var/demo-worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM

"$PY" manage.py import_aic sample/aic   # queues embeddings on commit for new or changed images
"$PY" manage.py embed --missing          # queues whatever an earlier run left unembedded
"$PY" manage.py wait_embedded --timeout 900 || {
  echo "Embedding did not finish; the worker's log is var/demo-worker.log" >&2
  exit 1
}

if [ -n "${GALLERY_DEMO_ADMIN_PASSWORD:-}" ]; then
  user="${GALLERY_DEMO_ADMIN_USER:-admin}"
  if DEMO_USER="$user" "$PY" manage.py shell --verbosity 0 -c \
      "import os, sys; from django.contrib.auth import get_user_model; \
sys.exit(0 if get_user_model().objects.filter(username=os.environ['DEMO_USER']).exists() else 1)"; then
    echo "Demo admin '$user' already exists."
  else
    DJANGO_SUPERUSER_USERNAME="$user" DJANGO_SUPERUSER_PASSWORD="$GALLERY_DEMO_ADMIN_PASSWORD" \
      DJANGO_SUPERUSER_EMAIL="${GALLERY_DEMO_ADMIN_EMAIL:-admin@localhost}" \
      "$PY" manage.py createsuperuser --noinput
    echo "Demo admin '$user' created; log in at http://127.0.0.1:8000/admin/"
  fi
fi

echo "Serving the gallery on http://127.0.0.1:8000/ (Ctrl-C stops it and the worker)"
"$PY" manage.py runserver 127.0.0.1:8000
