"""gunicorn's settings for Conveyor's API. gunicorn reads `./gunicorn.conf.py` on its own when
started from the project's folder (the Docker image's working directory), so the commands in
the README, the Dockerfile and docker-compose.yml pick this up; elsewhere pass
`-c /path/to/gunicorn.conf.py`. Workers, threads and the address stay on the command line."""

import gc


def post_worker_init(worker) -> None:
    """Once a worker has loaded the app, log as its settings say (CONVEYOR_LOG_FORMAT; gunicorn's
    own access and error logs keep gunicorn's format) and take everything made so far (modules, the app, its
    schemas: about 230,000 objects) out of the garbage collector's reach. A full collection
    otherwise walks them all, 150-250 ms with every thread of the worker held up, several times
    per thousand requests (docs/benchmarks.md, "Garbage collection pauses")."""
    from app import logs

    logs.configure(worker.wsgi.extensions["conveyor"].settings["CONVEYOR_LOG_FORMAT"])
    gc.collect()
    gc.freeze()
