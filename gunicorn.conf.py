"""gunicorn's settings wherever the web server runs: the Dockerfile, docker-compose, `make run`.

Threaded workers (gthread): a worker's main thread parks connections that have sent nothing in a poller
and hands a connection to one of its threads only once a request arrives. The sync worker gives each
connection the whole process while it waits, so four idle sockets took a two-worker server off the air
(issue 12). tests/test_gunicorn.py holds that many idle and half-sent connections open and still gets an
answer.
"""
import os

wsgi_app = "outreach.wsgi:application"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads per worker: requests served at once per process (the app waits on PostgreSQL and Redis, not CPU).
threads = int(os.environ.get("WEB_THREADS", "8"))
# A keep-alive connection idle this long is closed: parked connections cost a file descriptor each.
keepalive = 5
timeout = 60
graceful_timeout = 30
# Headers must fit in these (gunicorn's defaults, stated): a client cannot hold a thread with endless ones.
limit_request_line = 4094
limit_request_fields = 100
