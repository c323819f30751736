"""No secret reaches stdout, stderr, logs or the report, however a check mishandles it."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import cli_env, run_cli

from doctor.report.redact import Redactor, mask

KEY = "sk_live_0123456789abcdefSECRETKEY"
TOKEN = "tok_9f8e7d6c5b4a39281706SECRETTOKEN"
PROXY_PASSWORD = "pr0xyPassw0rdSECRET"


def _all_output(proc_out: str, proc_err: str, report: Path) -> str:
    return proc_out + proc_err + (report.read_text() if report.exists() else "")


@pytest.mark.parametrize("via", ["option", "environment"])
@pytest.mark.parametrize("mode", ["--json", "-v"])
def test_secrets_never_leave(tmp_path: Path, via: str, mode: str) -> None:
    report = tmp_path / "report.json"
    args = [
        "check",
        "fake-leak",
        "fake-leak-evidence",
        mode,
        "--report",
        str(report),
        "--token",
        TOKEN,
        "--proxy",
        f"http://agent:{PROXY_PASSWORD}@127.0.0.1:9",
    ]
    env = cli_env(plugins=True)
    if via == "option":
        args += ["--api-key", KEY]
    else:
        env["ASSEMBLYAI_API_KEY"] = KEY
    proc = run_cli(*args, env=env)
    assert proc.returncode == 1
    everything = _all_output(proc.stdout, proc.stderr, report)
    for secret in (KEY, TOKEN, PROXY_PASSWORD, KEY[:20], TOKEN[:20]):
        assert secret not in everything
    assert mask(KEY) in everything  # masked, so two keys can still be told apart
    assert (
        '"redactions": [\n    "api_key",\n    "proxy_credentials",\n    "token"\n  ]'
        in report.read_text()
    )
    assert (
        "http://****@127.0.0.1:9" in report.read_text()
        or '"proxy": "http://127.0.0.1:9"' in report.read_text()
    )


def test_redactor_masks_every_form() -> None:
    r = Redactor()
    r.add("api_key", f"  '{KEY}'\n")
    r.add("token", "a/b+c=d_long_token_value")
    text = (
        f"raw {KEY} bearer Bearer {KEY} quoted '{KEY}' "
        "url-encoded a%2Fb%2Bc%3Dd_long_token_value ws://h/v1/ws?token=whatever&x=1 "
        "proxy http://u:p@h:1"
    )
    out = r.scrub(text)
    assert KEY not in out and "a%2Fb%2Bc%3Dd" not in out and "whatever" not in out
    assert "u:p@" not in out and "****@h:1" in out
    assert out.count(mask(KEY)) == 3
    assert r.kinds == ["api_key", "token"]


def test_mask_short_values_fully() -> None:
    assert mask("abcd1234") == "****"
    assert mask("0123456789abcdef") == "****cdef"


def test_scrub_obj_covers_keys_and_nested_values() -> None:
    r = Redactor()
    r.add("api_key", KEY)
    assert r.scrub_obj({KEY: [KEY, {"x": f"k={KEY}"}], "n": 3}) == {
        mask(KEY): [mask(KEY), {"x": f"k={mask(KEY)}"}],
        "n": 3,
    }


def test_a_pre_signed_links_signature_and_credential_are_masked() -> None:
    """`session -v` printed httpx's request lines for the artifact links, signature and all."""
    url = (
        "GET https://b.s3.amazonaws.com/a.ogg?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAEXAMPLE%2F20261202&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=FQoGZXIvYXdz&X-Amz-Signature=cb685c0123 "
        "https://a.blob.core.windows.net/c?sv=2020-08-04&sig=abc%2Bdef&se=2026 "
        "https://storage.googleapis.com/b/o?X-Goog-Signature=ff00&keyword=kept"
    )
    out = Redactor().scrub(url)
    for secret in ("AKIAEXAMPLE", "FQoGZXIvYXdz", "cb685c0123", "abc%2Bdef", "ff00"):
        assert secret not in out
    assert "X-Amz-SignedHeaders=host" in out and "X-Amz-Expires=3600" in out
    assert "keyword=kept" in out and "sv=2020-08-04" in out
