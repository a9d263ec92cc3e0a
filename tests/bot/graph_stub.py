"""A local stand-in of the WhatsApp Cloud (Graph) API: a real aiohttp server on 127.0.0.1.

* `POST /{phone_number_id}/messages` records the JSON payload and answers a new wamid;
* `POST /{phone_number_id}/media` takes a multipart upload (messaging_product, type, file) and
  answers its media id; the file is then served like any other media (`uploaded` lists the ids);
* `GET /{media_id}` answers the media's url (pointing back to this server), mime type, sha256, size;
* `GET /download/{media_id}` serves the bytes;
* every call needs `Authorization: Bearer <token>`; `fail_next` scripts error answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Media:
    data: bytes
    mime_type: str
    declared_size: int | None = None  # what GET /{media_id} claims; None = the real size


@dataclass
class GraphStub:
    token: str
    phone_number_id: str
    host: str = "127.0.0.1"
    port: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    downloads: int = 0
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    unauthorised: int = 0
    read: list[str] = field(default_factory=list)  # message ids marked as read, in order
    refuse_reads: bool = False  # answer read receipts with Graph error 131009
    uploaded: list[str] = field(default_factory=list)  # media ids of files the bot uploaded
    hold: asyncio.Event | None = None  # while set to an unset event, message sends wait for it
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, status: int, code: int, times: int = 1) -> None:
        """The next `times` message sends answer this Graph error."""
        error = {"error": {"message": "stub error", "type": "OAuthException", "code": code}}
        self.failures.extend([(status, error)] * times)

    def add_media(self, media_id: str, data: bytes, mime_type: str,
                  declared_size: int | None = None) -> None:
        self.media[media_id] = Media(data, mime_type, declared_size)

    def messages_to(self, wa_id: str) -> list[dict[str, Any]]:
        return [p for p in self.sent if p.get("to") == wa_id]

    def _authorised(self, request: web.Request) -> bool:
        if request.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        self.unauthorised += 1
        return False

    async def _messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        if request.match_info["phone"] != self.phone_number_id:
            return web.json_response({"error": {"code": 100, "message": "unknown id"}}, status=400)
        payload = await request.json()
        if payload.get("status") == "read":  # a read receipt, not a message
            if self.refuse_reads:
                return web.json_response({"error": {"code": 131009, "message": "invalid"}},
                                         status=400)
            self.read.append(str(payload.get("message_id")))
            return web.json_response({"success": True})
        if self.hold is not None:
            await self.hold.wait()
        if self.failures:
            status, error = self.failures.pop(0)
            return web.json_response(error, status=status)
        self.sent.append(payload)
        wamid = f"wamid.stub-{next(self._ids)}"
        return web.json_response({
            "messaging_product": "whatsapp",
            "contacts": [{"input": payload.get("to"), "wa_id": payload.get("to")}],
            "messages": [{"id": wamid}],
        })

    def upload_of(self, message: dict[str, Any]) -> Media:
        """The uploaded file a media message (image, audio, document, video) refers to."""
        return self.media[message[message["type"]]["id"]]

    async def _upload(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 190, "message": "bad token"}}, status=401)
        if request.match_info["phone"] != self.phone_number_id:
            return web.json_response({"error": {"code": 100, "message": "unknown id"}}, status=400)
        form = await request.post()
        upload = form.get("file")
        mime_type = str(form.get("type") or "")
        if form.get("messaging_product") != "whatsapp" or not isinstance(upload, web.FileField) \
                or not mime_type:
            return web.json_response({"error": {"code": 100, "message": "bad upload"}}, status=400)
        media_id = f"up{next(self._ids)}"
        self.media[media_id] = Media(upload.file.read(), mime_type)
        self.uploaded.append(media_id)
        return web.json_response({"id": media_id})

    async def _media_info(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": {"code": 190}}, status=401)
        media_id = request.match_info["media_id"]
        media = self.media.get(media_id)
        if media is None:
            return web.json_response({"error": {"code": 100, "message": "no media"}}, status=404)
        return web.json_response({
            "messaging_product": "whatsapp",
            "url": f"{self.base}/download/{media_id}",
            "mime_type": media.mime_type,
            "sha256": hashlib.sha256(media.data).hexdigest(),
            "file_size": media.declared_size if media.declared_size is not None else len(media.data),
            "id": media_id,
        })

    async def _download(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        media = self.media.get(request.match_info["media_id"])
        if media is None:
            return web.Response(status=404)
        self.downloads += 1
        return web.Response(body=media.data, content_type=media.mime_type.split(";")[0])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{phone}/messages", self._messages)
        app.router.add_post("/{phone}/media", self._upload)
        app.router.add_get("/download/{media_id}", self._download)
        app.router.add_get("/{media_id}", self._media_info)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
