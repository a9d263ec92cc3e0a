"""The few Graph API calls the WhatsApp channel makes: send, upload and fetch media, mark read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import aiohttp

log = logging.getLogger(__name__)

SEND_RETRY_DELAYS: Final = (0.5, 2.0, 5.0)  # on 429, 5xx and connection errors


class GraphError(Exception):
    """The Graph API refused a request; `code` is Meta's error code when it gave one."""

    def __init__(self, status: int, code: int | None = None, title: str = "") -> None:
        super().__init__(f"Graph API error {status} (code {code}): {title}")
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class MediaTooBig(Exception):
    """The media file is larger than the limit."""


class GraphClient:
    """The few Graph API calls the channel needs; the token travels only in the header."""

    def __init__(self, session: aiohttp.ClientSession, base: str, phone_number_id: str, token: str):
        self._session = session
        self._base = base.rstrip("/")
        self._phone_number_id = phone_number_id
        self._headers = {"Authorization": f"Bearer {token}"}

    @staticmethod
    async def _error(response: aiohttp.ClientResponse) -> GraphError:
        code: int | None = None
        title = ""
        try:
            raw = await response.json(content_type=None)
            error = raw.get("error", {}) if isinstance(raw, dict) else {}
            code = int(error["code"]) if isinstance(error.get("code"), int) else None
            title = str(error.get("error_user_title") or error.get("type") or "")[:100]
        except (ValueError, aiohttp.ContentTypeError):
            pass
        return GraphError(response.status, code, title)

    async def send(self, to: str, message: dict[str, Any]) -> str:
        """Send one message; retried on 429, 5xx and connection errors. Returns its wamid."""
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                   **message}
        url = f"{self._base}/{self._phone_number_id}/messages"
        for delay in (*SEND_RETRY_DELAYS, None):
            try:
                async with self._session.post(url, json=payload, headers=self._headers) as response:
                    if response.status < 300:
                        raw = await response.json(content_type=None)
                        messages = raw.get("messages") if isinstance(raw, dict) else None
                        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
                            return str(messages[0].get("id", ""))
                        return ""
                    error = await self._error(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = GraphError(0, None, type(exc).__name__)
            if delay is None or not (error.retryable or error.status == 0):
                raise error
            log.warning("WhatsApp send failed (%s), retrying in %.1f s", error.status or "no connection",
                        delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload(self, data: bytes, mime_type: str, filename: str) -> str:
        """POST /{phone-number-id}/media (multipart): the media id to send the file by."""
        url = f"{self._base}/{self._phone_number_id}/media"
        for delay in (*SEND_RETRY_DELAYS, None):
            form = aiohttp.FormData()
            form.add_field("messaging_product", "whatsapp")
            form.add_field("type", mime_type)
            form.add_field("file", data, filename=filename, content_type=mime_type)
            try:
                async with self._session.post(url, data=form, headers=self._headers) as response:
                    if response.status < 300:
                        raw = await response.json(content_type=None)
                        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                            return str(raw["id"])
                        raise GraphError(response.status, None, "no media id")
                    error = await self._error(response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = GraphError(0, None, type(exc).__name__)
            if delay is None or not (error.retryable or error.status == 0):
                raise error
            log.warning("WhatsApp upload failed (%s), retrying in %.1f s",
                        error.status or "no connection", delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def mark_read(self, wamid: str) -> None:
        """Mark a client's message (and the ones before it) as read; no retries."""
        payload = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        url = f"{self._base}/{self._phone_number_id}/messages"
        try:
            async with self._session.post(url, json=payload, headers=self._headers) as response:
                if response.status >= 300:
                    raise await self._error(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(0, None, type(exc).__name__) from None

    async def media_info(self, media_id: str) -> dict[str, Any]:
        """GET /{media-id}: the download url, mime type, sha256 and size of a client's file."""
        async with self._session.get(f"{self._base}/{media_id}", headers=self._headers) as response:
            if response.status >= 300:
                raise await self._error(response)
            raw = await response.json(content_type=None)
        if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
            raise GraphError(response.status, None, "no url")
        return raw

    async def download(self, url: str, limit: int) -> bytes:
        """GET the media url with the bearer token; stops as soon as the file exceeds `limit`."""
        async with self._session.get(url, headers=self._headers) as response:
            if response.status >= 300:
                raise await self._error(response)
            if response.content_length is not None and response.content_length > limit:
                raise MediaTooBig
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    raise MediaTooBig
        return bytes(data)
