"""What to change in the app to go through the relay (pure text, printed on stderr)."""

from __future__ import annotations

# Names apps read their endpoint from (seen in public apps and starters; none is official).
ENV_NAMES = (
    "ASSEMBLYAI_WS_URL",
    "ASSEMBLYAI_VOICE_AGENT_URL",
    "ASSEMBLYAI_URL",
    "VITE_ASSEMBLYAI_WS_URL",
    "NEXT_PUBLIC_ASSEMBLYAI_WS_URL",
)
TOKEN_ENV_NAMES = ("ASSEMBLYAI_TOKEN_URL",)


def instructions(relay_ws: str, relay_token: str, upstream_ws: str, upstream_token: str) -> str:
    """The URL change, with a Python and a JavaScript example, and the env variables."""
    exports = "\n".join(f"    export {name}={relay_ws}" for name in ENV_NAMES)
    token_exports = "\n".join(f"    export {name}={relay_token}" for name in TOKEN_ENV_NAMES)
    return f"""agent-doctor watch: relaying to {upstream_ws}
  (token endpoint {upstream_token})

Point your app at the relay; nothing else in it changes (same key or token):
  WebSocket  {upstream_ws}  ->  {relay_ws}
  Token      {upstream_token}  ->  {relay_token}

  Python (websockets):
    async with websockets.connect("{relay_ws}",
            additional_headers={{"Authorization": f"Bearer {{api_key}}"}}) as ws: ...
  JavaScript (browser or Node):
    const ws = new WebSocket(`{relay_ws}?token=${{token}}`);

  If your app reads its URL from the environment, one of these is usual:
{exports}
{token_exports}

Waiting for sessions (Ctrl-C to stop and see the report).
"""
