#!/usr/bin/env bash
# Start what the test suite needs and is not started by the project itself.
set -euo pipefail

if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "Starting Redis on 127.0.0.1:6379"
  if ! command -v redis-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.1; done
fi

# RabbitMQ, the Celery broker (a dead worker's batch is delivered again at once), with the
# virtual host the tests use by default (GALLERY_TEST_BROKER_URL picks another).
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "Starting RabbitMQ on 127.0.0.1:5672"
  if ! command -v rabbitmq-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
  rabbitmqctl await_startup --timeout 120 >/dev/null
fi
if command -v rabbitmqctl >/dev/null && ! rabbitmqctl -q list_vhosts | grep -qx gallery-test; then
  rabbitmqctl -q add_vhost gallery-test
  rabbitmqctl -q set_permissions -p gallery-test guest ".*" ".*" ".*"
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's Chromium for the browser tests"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# axe-core for the accessibility browser tests (package.json at the repository root).
if [ ! -f "$(dirname "$0")/../node_modules/axe-core/axe.min.js" ]; then
  echo "Installing axe-core for the accessibility tests"
  command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq npm >/dev/null; }
  (cd "$(dirname "$0")/.." && npm ci --no-audit --no-fund --silent)
fi
