"""The sandbox's Sessions REST API and its pre-signed artifact downloads.

Shapes as the field saw them (field-facts.md §13, session-formats.md §2): `GET /v1/sessions`
with its cursor under `response_metadata.next_cursor`, `GET /v1/sessions/{id}` with an
`artifacts` list of `{type, url, content_type}` that stays empty until the artifacts are
ready, `DELETE` -> 204. The API key goes raw or as `Bearer`; artifact URLs are pre-signed,
expire, and refuse a request that carries an `Authorization` header as S3 does.
"""

from __future__ import annotations

import base64
import http
import json
import os
import re
import secrets
import shutil
import urllib.parse
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.http11 import Response

from doctor.sandbox import artifacts
from doctor.sandbox.store import Session

if TYPE_CHECKING:
    from doctor.sandbox.server import Sandbox

SESSIONS_PATH = "/v1/sessions"
ARTIFACTS_PATH = "/_artifacts/"
LIST_LIMITS = (1, 200)  # protocol.md §1: `limit` 1-200, default 50
DEFAULT_LIMIT = 50
MAX_SIGNED = 10000  # pre-signed URLs remembered; the oldest go first
KINDS = (  # (type, file, content type) in the order the service lists them
    ("audio", "recording/audio.ogg", "audio/ogg"),
    ("timeline", "timeline.json", "application/json"),
    ("metadata", "metadata.json", "application/json"),
)
SESSION_ID = re.compile(r"sess_[0-9a-f]{32}")


def _response(status: int, body: bytes, content_type: str | None) -> Response:
    headers = [("Connection", "close"), ("Content-Length", str(len(body)))]
    if content_type:
        headers.append(("Content-Type", content_type))
    return Response(status, http.HTTPStatus(status).phrase, Headers(headers), body)


def json_response(status: int, body: Any) -> Response:
    return _response(status, json.dumps(body).encode(), "application/json")


def s3_error(status: int, code: str, message: str) -> Response:
    """The XML body S3 answers a refused pre-signed download with."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    )
    return _response(status, xml.encode(), "application/xml")


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text[2:]) if text.startswith("o:") else None
    except (ValueError, UnicodeDecodeError):
        return None


class SessionsRest:
    """One sandbox's REST side; answers what `process_request` hands it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.signed: dict[str, tuple[str, str, float]] = {}  # signature -> (sid, file, expiry)

    # --- routing ------------------------------------------------------------------------
    def handles(self, path: str) -> bool:
        return (
            path == SESSIONS_PATH
            or path.startswith(SESSIONS_PATH + "/")
            or path.startswith(ARTIFACTS_PATH)
        )

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], header: str | None
    ) -> Response:
        if path.startswith(ARTIFACTS_PATH):
            return self.download(method, path[len(ARTIFACTS_PATH) :], query, header)
        refused = self._refuse(header)
        if refused is not None:
            return refused
        key = _strip(header or "")
        if path == SESSIONS_PATH:
            if method != "GET":
                return json_response(405, {"detail": "Method Not Allowed"})
            return self.listing(key, query)
        sid = path[len(SESSIONS_PATH) + 1 :]
        if "/" in sid or not sid:
            return json_response(404, {"detail": "Not Found"})
        if method == "GET":
            return self.get(key, sid)
        if method == "DELETE":
            return self.delete(key, sid)
        return json_response(405, {"detail": "Method Not Allowed"})

    def _refuse(self, header: str | None) -> Response | None:
        """The key check, in the token endpoint's manner (field-facts §1)."""
        field = self.sb.config.token_errors == "field"
        if not header:
            if field:
                return json_response(
                    422,
                    {
                        "detail": [
                            {
                                "type": "missing",
                                "loc": ["header", "authorization"],
                                "msg": "Field required",
                                "input": None,
                            }
                        ]
                    },
                )
            return json_response(401, {"error": "Missing authorization header"})
        if _strip(header) not in self.sb.api_keys:
            if field:
                return json_response(404, {"detail": "Invalid API key"})
            return json_response(401, {"error": "Unauthorized"})
        return None

    # --- sessions -----------------------------------------------------------------------
    def _sessions(self, key: str) -> list[Session]:
        """This key's sessions, newest first (another account's are not there at all)."""
        every = [*self.sb.store.sessions.values(), *self.sb.store.finished.values()]
        mine = [s for s in every if s.owner_key == key and s.started_at]
        return sorted(mine, key=lambda s: s.started_at, reverse=True)

    def _find(self, key: str, sid: str) -> Session | None:
        session = self.sb.store.sessions.get(sid) or self.sb.store.finished.get(sid)
        return session if session is not None and session.owner_key == key else None

    def _summary(self, session: Session) -> dict[str, Any]:
        ended = session.ended_at if session.ended else None
        return {
            "id": session.id,
            "agent_id": session.config.get("agent_id"),
            "status": "completed" if session.ended else "active",
            "public_close_reason": (
                artifacts.PUBLIC_REASONS.get(session.end_reason or "", "error")
                if session.ended
                else None
            ),
            # field-facts §5: one report found it ~0.4 s above the socket lifetime
            "duration_seconds": None
            if ended is None
            else round(ended - session.started_at + 0.4, 2),
            "created_at": artifacts.iso_micro(session.started_at),
            "ended_at": None if ended is None else artifacts.iso_micro(ended),
        }

    def listing(self, key: str, query: dict[str, list[str]]) -> Response:
        try:
            limit = int(query.get("limit", [str(DEFAULT_LIMIT)])[-1])
        except ValueError:
            limit = -1
        if not LIST_LIMITS[0] <= limit <= LIST_LIMITS[1]:
            return json_response(
                422, {"detail": [{"type": "range", "loc": ["query", "limit"], "msg": "1-200"}]}
            )
        offset = 0
        if query.get("cursor"):
            found = _offset(query["cursor"][-1])
            if found is None:
                return json_response(400, {"detail": "Invalid cursor"})
            offset = found
        sessions = self._sessions(key)
        status = query.get("status", [None])[-1]
        agent = query.get("agent_id", [None])[-1]
        summaries = [self._summary(s) for s in sessions]
        summaries = [
            s
            for s in summaries
            if (status is None or s["status"] == status)
            and (agent is None or s["agent_id"] == agent)
        ]
        page = summaries[offset : offset + limit]
        more = offset + limit < len(summaries)
        return json_response(
            200,
            {
                "sessions": page,
                "has_more": more,
                "response_metadata": {"next_cursor": _cursor(offset + limit) if more else None},
            },
        )

    def get(self, key: str, sid: str) -> Response:
        session = self._find(key, sid)
        if session is None:
            return json_response(404, {"code": "session_not_found", "message": "Session not found"})
        from doctor.sandbox import shapes

        body = self._summary(session)
        ended_at = body.pop("ended_at")
        body["config"] = shapes.resolved_config(session.config) if session.config else None
        body["created_at"] = body.pop("created_at")
        body["ended_at"] = ended_at
        body["artifacts"] = self._artifact_list(session)
        return json_response(200, body)

    def delete(self, key: str, sid: str) -> Response:
        session = self._find(key, sid)
        if session is None:
            return json_response(404, {"code": "session_not_found", "message": "Session not found"})
        if not session.ended:
            return json_response(409, {"detail": "Session is still active"})
        self.sb.store.finished.pop(sid, None)
        if session.artifacts is not None:
            shutil.rmtree(session.artifacts.folder, ignore_errors=True)
        self.sb.log.record("server", "session.deleted", session_id=sid)
        return _response(204, b"", None)

    # --- artifacts ----------------------------------------------------------------------
    def _artifact_list(self, session: Session) -> list[dict[str, str]]:
        """Empty until the artifacts are ready; then fresh pre-signed URLs."""
        files = session.artifacts
        if files is None or self.sb.now() < files.ready_at:
            return []
        ttl = self.sb.config.artifact_url_ttl_s
        out = []
        for kind, name, content_type in KINDS:
            if kind == "audio" and files.recording is None:
                continue
            signature = secrets.token_hex(32)
            self.signed[signature] = (session.id, name, self.sb.now() + ttl)
            while len(self.signed) > MAX_SIGNED:
                del self.signed[next(iter(self.signed))]
            query = urllib.parse.urlencode(
                {
                    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
                    "X-Amz-Expires": str(round(ttl)),
                    "X-Amz-Signature": signature,
                }
            )
            url = f"{self.sb.http_base}{ARTIFACTS_PATH}{session.id}/{name}?{query}"
            out.append({"type": kind, "url": url, "content_type": content_type})
        return out

    def download(
        self, method: str, rest: str, query: dict[str, list[str]], header: str | None
    ) -> Response:
        if method != "GET":
            return s3_error(405, "MethodNotAllowed", "The specified method is not allowed")
        if header:
            # S3 refuses a pre-signed URL that also carries Authorization; the log line
            # lets tests prove that agent-doctor never sends the key here.
            self.sb.log.record("in", "artifact.authorization_sent", path=rest)
            return s3_error(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter",
            )
        signature = (query.get("X-Amz-Signature") or [""])[-1]
        entry = self.signed.get(signature)
        sid, _, name = rest.partition("/")
        if entry is None or entry[:2] != (sid, name):
            return s3_error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        if self.sb.now() > entry[2]:
            return s3_error(403, "AccessDenied", "Request has expired")
        session = self.sb.store.finished.get(sid)
        files = session.artifacts if session is not None else None
        if files is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        path = {"audio": files.recording, "timeline": files.timeline, "metadata": files.metadata}[
            next(kind for kind, file, _ in KINDS if file == name)
        ]
        if path is None or not os.path.exists(path):
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        with open(path, "rb") as fh:
            data = fh.read()
        content_type = next(ct for _, file, ct in KINDS if file == name)
        self.sb.log.record("out", "artifact.served", session_id=sid, file=name, size=len(data))
        return _response(200, data, content_type)


def _strip(value: str) -> str:
    value = value.strip()
    return value[7:].strip() if value[:7].lower() == "bearer " else value
