"""The web chat (issue 13): the intake on the organisation's own website, with no account.

A thin adapter like the others: the browser's frames become flows events for
`IntakeService.handle("web", chat_id, event, update_id=...)`, the replies and relays are owed rows
(bot/services/delivery.py) pushed over the WebSocket and marked sent when the browser acknowledges
them, and a web client can chat with a confidant on Telegram or WhatsApp through the handoff desk.

* `protocol`: the JSON frames, checked strictly (unknown types, binary frames, huge frames,
  control and bidi-override characters);
* `codes`: return codes (four groups of four characters), Argon2id hashes, guessing throttled;
* `texts`: the page's and the widget's own words, through the catalogs;
* `outbound`: `WebSender`, sockets by chat, owed rows pushed and marked sent on acknowledgement;
* `chat`: `WebChat`, the channel: frames, client messages exactly once, return codes, devices;
* `server`: the routes (`/chat`, `/widget.js`, `/static/chat.css`, `/ui/<lang>.json`, `/ws`), the
  headers (strict CSP, no inline script or style), the `Origin` check, `run_web`;
* `static/`: widget.js and chat.css, no framework, shipped as package data.

The chat id is random and bound to a random token that only the browser holds (stored hashed);
neither is ever in a URL or a log.
"""

from bot.channels.web.chat import WebChat
from bot.channels.web.outbound import CHANNEL
from bot.channels.web.server import WebServer, allowed_origins, origin_allowed, run_web

__all__ = ["CHANNEL", "WebChat", "WebServer", "allowed_origins", "origin_allowed", "run_web"]
