"""The reader rules of session-formats.md §2 for the `artifacts` field and the bytes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from doctor.net.sessions_api import (
    Answer,
    classify_answer,
    expired_download,
    find_artifacts,
    kind_of_bytes,
    rest_base,
    valid_session_id,
)

S3 = "https://bucket.s3.eu-west-1.amazonaws.com/sess_1/"


def kinds(artifacts: object) -> list[tuple[str | None, str]]:
    return [(link.kind, link.url) for link in find_artifacts(artifacts)]


def test_the_field_reported_list() -> None:
    listed = [
        {"type": "audio", "url": S3 + "recording/audio.ogg?sig=1", "content_type": "audio/ogg"},
        {"type": "timeline", "url": S3 + "timeline.json?sig=2", "content_type": "application/json"},
        {"type": "metadata", "url": S3 + "metadata.json?sig=3", "content_type": "application/json"},
    ]  # fmt: skip
    assert [k for k, _ in kinds(listed)] == ["recording", "timeline", "metadata"]


def test_an_object_form_and_entries_without_type() -> None:
    as_object = {"recording_url": "https://x/a?1", "timeline": {"href": "https://x/b?2"}}
    assert kinds(as_object) == [("recording", "https://x/a?1"), ("timeline", "https://x/b?2")]
    untyped = [{"url": "https://x/files/metadata.json"}, {"link": "https://x/blob/7"}]
    assert kinds(untyped) == [
        ("metadata", "https://x/files/metadata.json"),
        (None, "https://x/blob/7"),
    ]


def test_words_in_the_query_do_not_decide() -> None:
    """A signature or a parameter could spell anything; only the entry and the path count."""
    (link,) = find_artifacts(
        [{"url": "https://x/blob/7?response-content-type=audio%2Fogg&t=timeline"}]
    )
    assert link.kind is None
    assert link.shown == "https://x/blob/7"  # never the signature


def test_bytes_decide_when_words_cannot() -> None:
    assert kind_of_bytes(b"OggS\x00\x02") == "recording"
    assert kind_of_bytes(json.dumps({"session_id": "s", "turns": []}).encode()) == "timeline"
    assert kind_of_bytes(b'{\n  "session_id": "s",\n  "channel_layout": "stereo"\n}') == "metadata"
    assert kind_of_bytes(b'{"session_id":"s","turns":[{"turn_id":"resp_') == "timeline"  # cut
    assert kind_of_bytes(b"<html>") is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(), lambda c: st.lists(c) | st.dictionaries(st.text(), c)
    )
)
def test_any_shape_gives_links_or_nothing(value: object) -> None:
    for link in find_artifacts(value):
        assert link.url.startswith(("http://", "https://"))


def test_answers_are_told_apart() -> None:
    assert classify_answer(Answer(404, {"detail": "Invalid API key"})) == "unauthorized"
    assert classify_answer(Answer(401, {"error": "Unauthorized"})) == "unauthorized"
    missing = {"detail": [{"type": "missing", "loc": ["header", "authorization"]}]}
    assert classify_answer(Answer(422, missing)) == "no_credentials"
    assert classify_answer(Answer(404, {"code": "session_not_found"})) == "not_found"
    assert classify_answer(Answer(200, {"id": "sess_"})) == "ok"
    assert classify_answer(Answer(503, "busy")) == "server_error"


def test_small_rules() -> None:
    assert (
        rest_base("https://agents.eu.assemblyai.com/v1/token") == "https://agents.eu.assemblyai.com"
    )
    assert rest_base("http://127.0.0.1:8443/v1/token?x=1") == "http://127.0.0.1:8443"
    assert valid_session_id("sess_" + "a" * 32) and not valid_session_id("sess_" + "A" * 32)
    assert expired_download(
        403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
    )
    assert not expired_download(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
