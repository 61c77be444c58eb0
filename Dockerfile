# The deptpulse image used by deploy/compose/docker-compose.yml (worker, gateway, topic set-up).
# The local stack (`deptpulse stack up`) does not need it.
FROM python:3.11-slim

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY deptpulse deptpulse
COPY producers producers
COPY stream_processors stream_processors
COPY schemas schemas
COPY notifiers notifiers
COPY deploy deploy
# A regular install: deploy/ (linked from deptpulse/deploy) is package data of the wheel.
RUN pip install --no-cache-dir -c constraints.txt .

ENTRYPOINT ["deptpulse"]
