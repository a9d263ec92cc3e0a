"""A local stand-in for the Telegram Bot API: a real aiohttp server on 127.0.0.1.

It answers the methods the bot uses (getMe, getUpdates with long polling, sendMessage,
editMessageText, editMessageReplyMarkup, answerCallbackQuery, sendChatAction, getFile and file
downloads, setMyCommands, deleteWebhook, setWebhook, sendDocument, sendPhoto, sendVoice,
copyMessage, ...), records every call, keeps what the bot sent per chat, and can answer a method
with 429 `retry_after`. Both python-telegram-bot and aiogram talk to it over HTTP exactly as they
talk to api.telegram.org.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 7000001
JSON_FIELDS = {"reply_markup", "commands", "allowed_updates", "scope"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Sent:
    """A message the bot sent into a chat, as the stub keeps it (edits change it in place)."""

    message_id: int
    chat_id: int
    text: str | None
    keyboard: list[list[dict[str, Any]]]
    kind: str = "text"
    data: bytes = b""
    caption: str | None = None

    def button_ids(self) -> list[str]:
        return [b["callback_data"].split("|", 1)[0] for row in self.keyboard for b in row]


class BotApiStub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.updates: list[dict[str, Any]] = []
        self.offset = 0
        self.files: dict[str, tuple[str, bytes]] = {}
        self.failures: dict[str, list[int]] = {}  # method -> retry_after seconds to answer with
        self.unknown_chats: set[int] = set()  # users who never opened the bot: "chat not found"
        self._new_update = asyncio.Condition()
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(100)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.closing = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self.closing = True
        async with self._new_update:
            self._new_update.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests use -----------------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def push(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (a redelivery is pushed again with the same id)."""
        self.updates.append(update)
        async with self._new_update:
            self._new_update.notify_all()

    def fail(self, method: str, retry_after: int, times: int = 1) -> None:
        """The next `times` calls of `method` get 429 with this `retry_after`."""
        self.failures.setdefault(method, []).extend([retry_after] * times)

    def add_file(self, data: bytes, path: str = "photos/file_1.jpg") -> str:
        file_id = f"FILE{next(self._ids)}"
        self.files[file_id] = (path, data)
        return file_id

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]

    def to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    # --- the HTTP side ------------------------------------------------------------------------

    @staticmethod
    def _ok(result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = dict(await request.json())
        elif request.content_type.startswith("multipart/") and request.body_exists:
            body = await request.read()
            if not body.strip():
                return dict(request.query), files
            reader = await self._multipart(request, body)
            async for part in reader:
                if part.name is None:
                    continue
                if part.filename:  # type: ignore[union-attr]
                    files[part.name] = bytes(await part.read())  # type: ignore[union-attr]
                else:
                    params[part.name] = await part.text()  # type: ignore[union-attr]
        elif request.method == "POST" and request.can_read_body:
            params = dict(await request.post())  # type: ignore[arg-type]
        params.update(request.query)
        for key in JSON_FIELDS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        for key, value in list(params.items()):  # attach://name -> the uploaded file
            if isinstance(value, str) and value.startswith("attach://"):
                files[key] = files.pop(value[len("attach://"):], b"")
        return params, files

    @staticmethod
    async def _multipart(request: web.Request, body: bytes) -> Any:
        from aiohttp import MultipartReader, StreamReader

        stream = StreamReader(request.protocol, limit=2**16, loop=asyncio.get_running_loop())
        stream.feed_data(body)
        stream.feed_eof()
        return MultipartReader(request.headers, stream)

    def _message(self, chat_id: int, **extra: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": 1_790_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Client"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Klachtwijzer"},
            **extra,
        }

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        self.calls.append(Call(method, params, files))
        pending = self.failures.get(method)
        if pending:
            retry_after = pending.pop(0)
            return web.json_response(
                {"ok": False, "error_code": 429,
                 "description": f"Too Many Requests: retry after {retry_after}",
                 "parameters": {"retry_after": retry_after}},
                status=429,
            )
        scope = params.get("scope")
        chat = params.get("chat_id", scope.get("chat_id") if isinstance(scope, dict) else None)
        if chat is not None and int(chat) in self.unknown_chats:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status=400)
        handler = getattr(self, "_m_" + method, None)
        if handler is None:
            return self._ok(True)
        result: web.Response = await handler(params, files)
        return result

    async def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return self._ok({"id": BOT_ID, "is_bot": True, "first_name": "Klachtwijzer",
                         "username": "klachtwijzer_test_bot", "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": False})

    async def _m_getUpdates(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.offset = max(self.offset, offset)
            self.updates = [u for u in self.updates if u["update_id"] >= offset or u.get("_again")]
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._new_update:
            while not self.updates and not self.closing:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._new_update.wait(), remaining)
                except TimeoutError:
                    break
        batch = [{k: v for k, v in u.items() if k != "_again"} for u in self.updates[:100]]
        for u in self.updates:
            u.pop("_again", None)
        return self._ok(batch)

    async def _record(self, chat_id: int, message: dict[str, Any], kind: str = "text",
                      data: bytes = b"") -> web.Response:
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        self.sent.append(Sent(message["message_id"], chat_id, message.get("text"), keyboard,
                              kind, data, message.get("caption")))
        return self._ok(message)

    async def _m_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        chat_id = int(params["chat_id"])
        extra: dict[str, Any] = {"text": params["text"]}
        if params.get("reply_markup"):
            extra["reply_markup"] = params["reply_markup"]
        return await self._record(chat_id, self._message(chat_id, **extra))

    def _find(self, params: dict[str, Any]) -> Sent | None:
        message_id = int(params["message_id"])
        return next((s for s in self.sent if s.message_id == message_id), None)

    async def _m_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        sent = self._find(params)
        if sent is not None:
            sent.text = params["text"]
            sent.keyboard = (params.get("reply_markup") or {}).get("inline_keyboard", [])
        return self._ok(self._message(int(params["chat_id"]), text=params["text"]))

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any],
                                        files: dict[str, bytes]) -> web.Response:
        sent = self._find(params)
        if sent is not None:
            sent.keyboard = (params.get("reply_markup") or {}).get("inline_keyboard", [])
        return self._ok(self._message(int(params["chat_id"]), text=sent.text if sent else ""))

    async def _m_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: invalid file_id"}, status=400)
        path, data = self.files[file_id]
        return self._ok({"file_id": file_id, "file_unique_id": "u" + file_id,
                         "file_size": len(data), "file_path": path})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        self.calls.append(Call("download", {"path": request.match_info["path"]}))
        for path, data in self.files.values():
            if path == request.match_info["path"]:
                return web.Response(body=data)
        return web.Response(status=404)

    async def _upload(self, params: dict[str, Any], files: dict[str, bytes], key: str,
                      media: Any) -> web.Response:
        chat_id = int(params["chat_id"])
        data = files.get(key, b"")
        extra: dict[str, Any] = {key: media}
        if params.get("caption"):
            extra["caption"] = params["caption"]
        return await self._record(chat_id, self._message(chat_id, **extra), key, data)

    async def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        media = [{"file_id": f"P{next(self._ids)}", "file_unique_id": "p", "width": 1, "height": 1}]
        return await self._upload(params, files, "photo", media)

    async def _m_sendVoice(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return await self._upload(params, files, "voice",
                                  {"file_id": f"V{next(self._ids)}", "file_unique_id": "v",
                                   "duration": 1})

    async def _m_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return await self._upload(params, files, "document",
                                  {"file_id": f"D{next(self._ids)}", "file_unique_id": "d"})

    async def _m_copyMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> web.Response:
        return self._ok({"message_id": next(self._ids)})


# --- updates as Telegram sends them ---------------------------------------------------------------


def user(user_id: int, language: str | None, first_name: str) -> dict[str, Any]:
    data: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if language:
        data["language_code"] = language
    return data


def message_update(update_id: int, sender: dict[str, Any], **content: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 10_000 + update_id,
        "date": 1_790_000_000,
        "chat": {"id": sender["id"], "type": "private", "first_name": sender["first_name"]},
        "from": sender,
        **content,
    }
    text = content.get("text")
    if isinstance(text, str) and text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


def callback_update(update_id: int, sender: dict[str, Any], sent: Sent | None,
                    data: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": sent.message_id if sent else 1,
        "date": 1_790_000_000,
        "chat": {"id": sender["id"], "type": "private", "first_name": sender["first_name"]},
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Klachtwijzer"},
        "text": (sent.text if sent else "") or "",
    }
    if sent is not None and sent.keyboard:
        message["reply_markup"] = {"inline_keyboard": sent.keyboard}
    return {
        "update_id": update_id,
        "callback_query": {"id": f"cb{update_id}", "from": sender, "chat_instance": "ci",
                           "message": message, "data": data},
    }
