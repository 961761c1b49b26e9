# mediatool in a container: run it in the archive's folder, mounted at /archive.
#   docker build -t mediatool .
#   docker run --rm -v "$PWD:/archive" -u "$(id -u):$(id -g)" mediatool fetch posts --time-budget 90m
#   docker run --rm -v "$PWD:/archive" -u "$(id -u):$(id -g)" mediatool rewrite posts --check
FROM python:3.12-slim

WORKDIR /src
COPY pyproject.toml README.md ./
COPY mediatool ./mediatool
RUN pip install --no-cache-dir . && rm -rf /src

WORKDIR /archive
ENTRYPOINT ["mediatool"]
CMD ["--help"]
