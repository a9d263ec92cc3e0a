"""The WhatsApp channel: the same conversation over the WhatsApp Business Cloud API (issue 5).

A thin adapter, no conversation logic: it turns webhook payloads into events for
`IntakeService.handle("whatsapp", wa_id, event, update_id=wamid)` and the engine's `OutMessage`s into
WhatsApp messages.

* `GET /webhook` answers Meta's verification (`hub.mode=subscribe`, `hub.verify_token` compared in
  constant time, `hub.challenge` echoed); anything else gets 403.
* `POST /webhook` is checked against `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the app
  secret, `hmac.compare_digest`): a missing or wrong signature gets 403 and changes nothing. A signed
  POST is answered 200 at once; its messages are handled in the background, one at a time per chat
  and in order (the service commits before we send its reply). Meta delivers at least once, so the
  message id (wamid) is the service's `update_id`: a redelivered message is a no-op.
* Buttons follow WhatsApp's limits: up to 3 reply buttons (title <= 20 characters), more as list
  messages (<= 10 rows, row title <= 24). A label too long for its limit is shortened at a word
  boundary with an ellipsis, and then every choice is also written out in full, numbered, in the
  message body: a typed number or label works as well (the engine accepts both). Button ids carry
  the state they were shown in (`<state>|<button id>`), so the engine refuses stale or forged ones.
* Images, documents, audio (voice notes) and videos are fetched through the media endpoint
  (GET /{media-id} -> url, GET url with the bearer token), at most `max_attachment_bytes`, checked
  against their SHA-256, and kept encrypted under a random name (`app.files`).
* As the `ChannelSender` "whatsapp" it delivers messages that are not a direct reply: inside the
  24-hour customer-service window as usual ("sent"); outside it as the organisation's approved
  template with the case reference as its parameter ("template"; the register keeps the news and
  it is shown when the client writes again), or not at all ("unavailable").
* The live confidant chat (bot/services/handoffs.py, shared with Telegram): a client's messages
  reach the handoff desk through the intake service; a confidant's WhatsApp number (organisation
  config) goes to `HandoffDesk.confidant_update`. As the `ItemSender` it relays messages and files
  from the other side: files are uploaded (`POST /{phone-number-id}/media`) and sent by media id.
  Outside the 24-hour window the relay is kept (owed rows, encrypted) and announced by the
  template; it is shown, in order, as soon as the client writes.

Logs never contain phone numbers, message ids, names or texts.

The package, by concern: `messages` (rendering and WhatsApp's limits); `graph` (the Graph API
client with retries, media upload and download); `inbound` (the webhook signature, parsing inbound
messages); `outbound` (sending: the `ChannelSender` and `ItemSender`, the 24-hour window, the
template); `channel` (the webhook, the per-chat queues, handling inbound messages); `run`.
"""

from bot.channels.whatsapp.channel import (
    EXPIRY_SECONDS,
    HANDLE_RETRY_DELAYS,
    MAX_BODY_BYTES,
    RECENT_IDS,
    WEBHOOK_PATH,
    WhatsAppChannel,
)
from bot.channels.whatsapp.graph import SEND_RETRY_DELAYS, GraphClient, GraphError, MediaTooBig
from bot.channels.whatsapp.inbound import MEDIA_TYPES, Inbound, MediaKind, signature_ok
from bot.channels.whatsapp.messages import (
    BODY_LIMIT,
    BUTTON_ID_LIMIT,
    BUTTON_TITLE_LIMIT,
    ELLIPSIS,
    LIST_BUTTON_LIMIT,
    MAX_BUTTONS,
    MAX_ROWS,
    ROW_DESCRIPTION_LIMIT,
    ROW_ID_LIMIT,
    ROW_TITLE_LIMIT,
    STATE_SEPARATOR,
    TEXT_LIMIT,
    parse_button_id,
    render,
    shorten,
    split_text,
    template_message,
)
from bot.channels.whatsapp.outbound import (
    CHANNEL,
    MEDIA_OUT,
    REENGAGEMENT_ERROR,
    TEMPLATE_LANGUAGE_ERROR,
    TEMPLATE_LANGUAGES,
    WINDOW,
    WhatsAppSender,
)
from bot.channels.whatsapp.run import DRAIN_SECONDS, run_whatsapp

__all__ = [
    "BODY_LIMIT",
    "BUTTON_ID_LIMIT",
    "BUTTON_TITLE_LIMIT",
    "CHANNEL",
    "DRAIN_SECONDS",
    "ELLIPSIS",
    "EXPIRY_SECONDS",
    "HANDLE_RETRY_DELAYS",
    "LIST_BUTTON_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_BUTTONS",
    "MAX_ROWS",
    "MEDIA_OUT",
    "MEDIA_TYPES",
    "RECENT_IDS",
    "REENGAGEMENT_ERROR",
    "ROW_DESCRIPTION_LIMIT",
    "ROW_ID_LIMIT",
    "ROW_TITLE_LIMIT",
    "SEND_RETRY_DELAYS",
    "STATE_SEPARATOR",
    "TEMPLATE_LANGUAGES",
    "TEMPLATE_LANGUAGE_ERROR",
    "TEXT_LIMIT",
    "WEBHOOK_PATH",
    "WINDOW",
    "GraphClient",
    "GraphError",
    "Inbound",
    "MediaKind",
    "MediaTooBig",
    "WhatsAppChannel",
    "WhatsAppSender",
    "parse_button_id",
    "render",
    "run_whatsapp",
    "shorten",
    "signature_ok",
    "split_text",
    "template_message",
]
