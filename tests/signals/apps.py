"""The six real failures of issue 16, as shell scripts for the Debian test image.

Shared by the extractor's tests (``test_signals_real_failures``) and the hook's
(``test_signals_in_the_hook``): each is real software failing its own way.
"""

PG = "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf"
KEYERROR_APP = """cat > /tmp/app.py <<'EOF'
import logging, os
logging.basicConfig(level=logging.INFO, format="%(levelname)s:%(name)s:%(message)s")
logging.error("statsd host not set, metrics disabled")
logging.info("starting orders-api 2.14.0")
DATABASE_URL = os.environ["DATABASE_URL"]
logging.info("serving orders from %s", DATABASE_URL.rsplit("@", 1)[-1])
EOF
exec python3 /tmp/app.py"""
OOM_APP = """cat > /tmp/app.py <<'EOF'
chunks = []
print("loading the product catalogue into memory", flush=True)
for i in range(1000):
    chunks.append(bytearray(b"x" * (4 << 20)))
    print(f"loaded chunk {i} ({(i + 1) * 4} MiB)", flush=True)
EOF
exec python3 /tmp/app.py"""
CRASH_APP = """cat > /tmp/app.py <<'EOF'
print("worker starting, reading /etc/worker/queue.conf", flush=True)
with open("/etc/worker/queue.conf") as handle:
    QUEUES = handle.read().split()
EOF
exec python3 /tmp/app.py"""
HEALTH_APP = """cat > /tmp/app.py <<'EOF'
import http.server, logging, socket
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
log = logging.getLogger("catalog.health")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
            self.send_response(200)
        except OSError as exc:
            log.error("health check failed: cache 127.0.0.1:6379 unreachable: %s", exc)
            self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass

log.info("catalog listening on 127.0.0.1:8080")
http.server.HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
EOF
exec python3 /tmp/app.py"""
PROBE = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"
SECOND = 1_000_000_000
PG_BAD_PRELOAD = (
    f"echo \"shared_preload_libraries = 'pg_stat_statments'\" >> /etc/postgresql/15/main/postgresql.conf; exec {PG}"
)
NGINX_BAD_CONF = (
    'printf "server {\\n  listen 8080;\\n  location / {\\n    proxy_passs http://127.0.0.1:9000;\\n  }\\n}\\n" '
    "> /etc/nginx/conf.d/app.conf; exec nginx -g 'daemon off;'"
)


def exited(doc: dict) -> bool:
    return doc["State"]["Status"] == "exited" and not doc["State"]["Restarting"]
