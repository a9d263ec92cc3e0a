"""The speed figures of issue 6, measured on this machine: `python -m bench [--quick] [--json]`.

* **R2** = the bot's messages/s ÷ a minimal echo bot's messages/s on the same library
  (python-telegram-bot and aiogram), both polling the same in-process Bot API stand-in
  (tests/bot/telegram_stub.py). The bot is this project's real Telegram adapter
  (`bot.root.app.build_app` + `bot.channels.telegram.run.run_telegram`): parse the update, load
  the conversation, one state-machine step, commit, an outbox row when the step forwards a
  complaint, the reply.
* **R2m** = the bot's messages/s ÷ the mirror echo's (bench/mirror.py): a stateless bot on the
  same library that makes exactly the Bot API calls the bot made for the same update (recorded).
* **R2 WhatsApp** = the real WhatsApp webhook ÷ a minimal aiohttp webhook echo that checks the
  signature and replays the bot's Graph API calls (bench/whatsapp.py).
* **2 processes vs 1 on PostgreSQL** (`--postgres`): real `klachtwijzer run` subprocesses behind a
  proxy (bench/cluster.py, bench/scale.py).
* **R1** = the bot's messages/s ÷ raw sqlite3 transactions/s of the same shape (bench/raw.py).
* Latency p50/p99 per message at 1, 8 and 64 concurrent conversations.
* Flatness: time per message with 1 000 vs 1 000 000 stored conversations (bench/fill.py).
* Memory: RSS with 10 000 conversations in mid-flow (bench/memory.py, in a fresh process).
* The web chat (issue 13): messages/s and latency of 64 WebSocket clients against the real web
  chat, and against a minimal aiohttp WebSocket echo (bench/web.py).

Everything is measured through public entry points only, so the bench keeps measuring whatever the
storage and service look like. Modules: script (the conversation clients walk), load (stand-in,
bots, clients), mirror, whatsapp, cluster, scale, raw, fill, memory, machine, run (rounds, table,
JSON).
"""
