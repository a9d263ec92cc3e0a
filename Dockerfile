FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KLACHTWIJZER_DATA_DIR=/data

# gpg encrypts mail to mailboxes that have an OpenPGP key in the organisation config.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gnupg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md babel.cfg ./
COPY bot ./bot
COPY flows ./flows
COPY storage ./storage
COPY locales ./locales
RUN pip install ".[ptb,aiogram]" \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin klachtwijzer \
    && mkdir -p /data /out && chown klachtwijzer:klachtwijzer /data /out && chmod 0700 /data

# The working directory is the user's own: `report` and `export -o FILE` write here by default.
WORKDIR /out
USER klachtwijzer
VOLUME ["/data"]
# The webhook ports of Telegram and WhatsApp, when those run (TELEGRAM_/WHATSAPP_LISTEN_PORT),
# 8445: the web chat (WEB_LISTEN_PORT), 8446: the staff desk (DESK_LISTEN_PORT).
EXPOSE 8443 8444 8445 8446
ENTRYPOINT ["klachtwijzer"]
CMD ["run"]
