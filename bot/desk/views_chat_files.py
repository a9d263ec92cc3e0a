"""Files in the confidant's chat (issue 12): the client's photos, voice notes and documents shown
in the desk, and a file the confidant sends from the desk.

* `/chat/file/<message id>`: only the confidant whose ACTIVE chat holds that message gets it,
  decrypted from the file store for this answer only, with a type from a small allow-list (else a
  download of `application/octet-stream`), `nosniff` and `no-store`; every opening and every
  refusal is in the audit log (who, which case and handoff). The URL holds a message number only.
* `/chat/upload`: one file, at most the channels' limit (`max_attachment_bytes`), its type taken
  from its first bytes (`filetype`), never from the browser's word: a JPEG or PNG photo, a PDF, an
  OGG or MP3 voice message. Stored encrypted and passed to the handoff desk as the confidant's
  `Attachment`, so each client channel relays it as it relays any file.
"""

from __future__ import annotations

from typing import Final, Literal

import filetype
from aiohttp import web

from bot.desk.views_chat import act, address_of, kept
from bot.desk.web import account_of, allow, desk_of, refuse, translator, uploads
from bot.services.intake import megabytes
from flows.model import Attachment

# What the desk sends with its own Content-Type; anything else is a download of octet-stream.
SHOWN: Final = {"image/jpeg", "image/png", "image/webp", "audio/ogg", "audio/mpeg", "audio/mp4"}
DOWNLOADED: Final = {"application/pdf": "pdf", "video/mp4": "mp4"}
EXTENSIONS: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
                     "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a"}
# What a confidant may send, by the type its bytes show, and the kind each channel relays.
Sendable = Literal["photo", "document", "voice"]
SENDABLE: Final[dict[str, Sendable]] = {"image/jpeg": "photo", "image/png": "photo",
                                        "application/pdf": "document", "audio/ogg": "voice",
                                        "audio/mpeg": "voice"}


async def _audit(request: web.Request, action: str, reference: str | None, detail: str) -> None:
    desk = desk_of(request)
    async with desk.host.db.unit_of_work() as uow:
        await uow.audit.record(desk.host.clock(), account_of(request).actor, action, reference,
                               detail)
        await uow.commit()


@allow("confidant")
async def chat_file(request: web.Request) -> web.StreamResponse:
    """One file of this confidant's active chat, decrypted for this answer only (audited)."""
    desk = desk_of(request)
    t = translator(request)
    gone = t._("This file is not in your chat, or it is no longer kept.")
    raw = request.match_info.get("message", "")
    linked = address_of(request)
    chat, messages = (None, []) if linked is None else await linked[0].chat_of(linked[1])
    number = int(raw) if raw.isdigit() and len(raw) <= 12 else None
    found = next((m for m in messages if m.id == number), None) if chat is not None else None
    ref = found.body.get("ref") if found is not None else None
    reference = chat.reference if chat is not None else None
    if chat is None or found is None or not isinstance(ref, str) or not kept(desk.host.files, ref):
        await _audit(request, "desk_forbidden", reference, "chat file refused")
        return await refuse(request, 404, gone)
    data = await desk.host.files.read(ref)
    await _audit(request, "desk_download", reference, f"chat file (handoff {chat.id}, message "
                                                      f"{found.id})")
    kind = str(found.body.get("content_type") or "").split(";")[0].strip().lower()
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
               "Content-Security-Policy": "default-src 'none'; sandbox"}
    if kind in SHOWN:
        headers["Content-Type"] = kind
        headers["Content-Disposition"] = f'inline; filename="chat-{found.id}.{EXTENSIONS[kind]}"'
    else:
        headers["Content-Type"] = kind if kind in DOWNLOADED else "application/octet-stream"
        extension = DOWNLOADED.get(kind, "bin")
        headers["Content-Disposition"] = f'attachment; filename="chat-{found.id}.{extension}"'
    return web.Response(body=data, headers=headers)


@uploads
@allow("confidant")
async def chat_upload(request: web.Request) -> web.StreamResponse:
    """A file from the confidant to the client: checked, stored encrypted, relayed."""
    desk = desk_of(request)
    t = translator(request)
    linked = address_of(request)
    if linked is None:
        raise web.HTTPSeeOther("/requests")
    handoffs, address = linked
    chat, _messages = await handoffs.chat_of(address)
    if chat is None:
        raise web.HTTPSeeOther("/chat")
    limit = desk.host.settings.max_attachment_bytes
    form = await request.post()
    upload = form.get("file")
    data = upload.file.read(limit + 1) if isinstance(upload, web.FileField) else b""
    if not data:
        return await refuse(request, 400, t._(
            "Choose a photo, a PDF or a voice message to send. Nothing was sent."))
    if len(data) > limit:
        return await refuse(request, 413, t._(
            "This file is too big. The limit is {size} MB. Nothing was sent.").format(
            size=megabytes(limit, t.language)))
    guessed = filetype.guess(data)
    mime = guessed.mime if guessed is not None else ""
    kind = SENDABLE.get(mime)
    if kind is None:
        return await refuse(request, 415, t._(
            "This cannot be sent. Send a photo (JPEG or PNG), a PDF or a voice message (OGG or "
            "MP3). Nothing was sent."))
    ref = await desk.host.files.save(data)
    await act(request, handoffs, address, Attachment(kind, ref, len(data), mime))
    raise web.HTTPSeeOther("/chat")
