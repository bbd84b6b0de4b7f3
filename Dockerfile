# The one image for Conveyor's API, workers, sweeper and migrations (see docker-compose.yml).
FROM python:3.11-slim-bookworm

# ffmpeg (with ffprobe) and espeak-ng are the tools the media task types run; Pango, HarfBuzz
# and DejaVu fonts are what WeasyPrint needs for documentation PDFs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# PYTHONPATH: `celeryconfig` is a top-level module outside the installed packages, and the
# migrations are found beside `app/`, so the code runs from /app.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    CONVEYOR_VAR_DIR=/var/lib/conveyor

# The var dir belongs to the app user, so a fresh named volume mounted there does too.
RUN useradd --system --create-home --uid 10001 conveyor \
    && mkdir -p /var/lib/conveyor \
    && chown conveyor:conveyor /var/lib/conveyor

WORKDIR /app
# gunicorn reads gunicorn.conf.py from the working directory.
COPY setup.cfg pyproject.toml README.md manage.py celeryconfig.py gunicorn.conf.py ./
COPY app ./app
COPY processors ./processors
COPY migrations ./migrations

# The project without its dev extra (gunicorn, which serves the API, is a dependency).
RUN pip install -e .

USER conveyor
EXPOSE 8000
CMD ["gunicorn", "-k", "gthread", "--threads", "8", "-w", "2", "-b", "0.0.0.0:8000", "app:create_app()"]
