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

"$PY" manage.py migrate --noinput
"$PY" manage.py import_aic sample/aic

# ---- EMBEDDING STEP (integrated by the lead) -------------------------------------------------
# Start a Celery worker on the demo broker and embed the sample collection here, e.g.
#   "$PY" -m celery -A gallery worker -Q embed ... &   and wait until every artwork is embedded.
# ----------------------------------------------------------------------------------------------

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

echo "Serving the gallery on http://127.0.0.1:8000/ (Ctrl-C stops it)"
exec "$PY" manage.py runserver 127.0.0.1:8000
