# A Liquide city node. docker-compose.yml runs three of them, peered in a line A – B – C.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crypto ./crypto
COPY protocol ./protocol
COPY node ./node
RUN pip install --no-cache-dir . && rm -rf /src

# The node's data directory (key, config, SQLite) and the public keys the cities exchange.
VOLUME ["/data", "/keys"]
EXPOSE 8470
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8470/healthz', timeout=2)"]
ENTRYPOINT ["liquide"]
CMD ["node", "serve", "--data", "/data"]
