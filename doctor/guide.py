"""The troubleshooting guide: the one place where fix text lives.

Checks refer to entries by id and pass the run's concrete values (host, port, device...);
the wording is ours, written from the vendor's troubleshooting page and protocol notes.
Placeholders in steps and commands use `str.format` names; `DEFAULTS` fills what a check
does not pass, so an entry always renders.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from doctor.result import Fix

BASE_URL = "https://www.assemblyai.com/docs/voice-agents/voice-agent-api/troubleshooting"

DEFAULTS: dict[str, str] = {
    "host": "agents.assemblyai.com",
    "port": "443",
    "ws_url": "wss://agents.assemblyai.com/v1/ws",
    "token_url": "https://agents.assemblyai.com/v1/token",
    "endpoint_url": "https://agents.assemblyai.com/v1/token",
    "protocol": "HTTPS",
    "other_host": "agents.eu.assemblyai.com",
    "region": "us",
    "other_region": "eu",
    "issuer": "an unknown CA",
    "proxy": "your proxy",
    "proxy_user": "the user in the proxy URL",
    "device": "the default device",
    "rates": "none of the common rates",
    "param": "a query parameter",
    "code": "an error code",
    "detail": "",
}


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    why: str
    steps: tuple[str, ...]
    commands: tuple[str, ...] = ()
    anchor: str = ""

    @property
    def url(self) -> str:
        return f"{BASE_URL}#{self.anchor}" if self.anchor else BASE_URL


_A_SUPPORT = "before-you-contact-support"
_A_ECHO = "agent-interrupts-itself-echo--feedback-loop"
_A_RATE = "wrong-sample-rate"
_A_MIC = "microphone-permission-denied"
_A_FIREWALL = "firewall-blocking-websocket-connection"
_A_BASE64 = "malformed-base64-in-inputaudio"
_A_TOKEN = "token-expired-or-invalid-credentials"
_A_BILLING = "unexpected-billing-after-the-call-ended"
_A_RESUME = "session-resume-fails"
# One advice on a token's redemption window, wherever it is given: the docs suggest
# 60-300 s (protocol.md §2.2), the field says keep it short (field-facts §16).
_TOKEN_WINDOW = (
    "`expires_in_seconds` of 60 (the low end of the docs' suggested 60-300: a token used "
    "at once needs no more)"
)

_ENTRIES: tuple[Entry, ...] = (
    # --- the vendor page's topics, one each -------------------------------------------------
    Entry(
        "before_support",
        "What to send with a support request",
        "Support finds a session in its logs by its id; without the id, the close code and "
        "the region, a report cannot be matched to anything on the service side.",
        (
            "Attach the JSON report (`agent-doctor all --report doctor-report.json`) to your "
            "email to support@assemblyai.com; it holds no key or token.",
            "In your app, store the `session_id` of every `session.ready`, the close code and "
            "reason of every disconnect, the session start time and the region ({host}).",
        ),
        ("agent-doctor all --report doctor-report.json",),
        _A_SUPPORT,
    ),
    Entry(
        "echo_loop",
        "The agent hears itself (speaker-to-microphone echo)",
        "The agent's voice comes out of the speakers and back into the microphone; the "
        "service takes it for the user talking, so every reply is cut short as interrupted. "
        "Terminal apps using PortAudio get no echo cancellation from the OS.",
        (
            "Use headphones: the simplest and most reliable fix.",
            "In a browser, capture with `getUserMedia({{audio: {{echoCancellation: true}}}})`.",
            "In a native app, capture through the platform's voice-processing path (macOS "
            "VoiceProcessingIO, Windows communications mode, WebRTC AEC) instead of a raw "
            "input stream.",
            "Measured on this machine: {detail}",
        ),
        ("agent-doctor check echo",),
        _A_ECHO,
    ),
    Entry(
        "sample_rate",
        "Audio is not PCM16 mono at exactly 24,000 Hz",
        "The API reads input as 16-bit mono at 24 kHz and sends output at that rate. Audio at "
        "another rate is understood at the wrong speed: garbled, pitched, or silent to the "
        "recogniser, and replies play too fast or too slow.",
        (
            "Open capture and playback at `samplerate=24000` (Python: `sd.InputStream` and "
            "`sd.OutputStream`; browsers: `new AudioContext({{sampleRate: 24000}})`).",
            "Where the device cannot run at 24 kHz ({device} accepts {rates}), resample in "
            "the app with a polyphase filter, e.g. "
            "`pcm24k = scipy.signal.resample_poly(pcm48k, 1, 2)` for capture and "
            "`scipy.signal.resample_poly(reply, 2, 1)` for playback.",
            "Safari ignores the AudioContext `sampleRate`: resample to and from 24 kHz inside "
            "your AudioWorklet.",
            "Avoid Bluetooth headsets in hands-free (HFP) mode: they capture at 8 or 16 kHz "
            "and ruin recognition even after resampling.",
        ),
        ("agent-doctor devices", "agent-doctor check sample-rate"),
        _A_RATE,
    ),
    Entry(
        "mic_permission",
        "The microphone cannot be opened or delivers nothing",
        "The OS or the sound server refused access to the input device, or the device is "
        "muted or the wrong one. On macOS a denied permission looks like a stream of zeros.",
        (
            "macOS: System Settings → Privacy & Security → Microphone, and enable your "
            "terminal app (or IDE, or browser); restart it afterwards.",
            "Linux: check that a sound server answers (`pactl info`) and that your user may "
            "use the sound devices (`ls -la /dev/snd/`; `sudo usermod -aG audio $USER`, then "
            "log in again).",
            "Browsers: serve the page over HTTPS or from http://localhost and accept the "
            "microphone prompt; a refusal shows up as `NotAllowedError`.",
            "Check that {device} is the microphone you mean and that it is not muted.",
        ),
        ("agent-doctor devices", "pactl info", "ls -la /dev/snd/"),
        _A_MIC,
    ),
    Entry(
        "firewall",
        "The WebSocket to the Voice Agent API cannot get through",
        "A firewall, proxy or network filter is stopping outbound {wire} on port {port} "
        "to {host}, or the name does not resolve.",
        (
            "Ask your network administrator to allow outbound TCP {port} ({wire_layers}) "
            "to {host}.",
            "If this network needs a proxy, pass it: `--proxy http://PROXY:PORT` here, and "
            "the same proxy in your app's WebSocket client (or `HTTPS_PROXY`).",
            "Try another network (a phone hotspot) to tell this network from this machine.",
            "Try the other region ({other_host}) if your account may use it.",
            "Detail: {detail}",
        ),
        ("agent-doctor check wss -v", "curl -sv {web_scheme}://{host}:{port}/ -o /dev/null"),
        _A_FIREWALL,
    ),
    Entry(
        "malformed_audio",
        "The bytes in `input.audio` are not what the API decodes",
        "The `audio` field must be base64 of raw PCM16 little-endian mono 24 kHz samples. "
        "Raw binary, a WAV or other container, float samples or broken base64 get "
        "`invalid_audio`; a message that is not valid JSON or lacks `type`/`audio` gets "
        "`invalid_format`.",
        (
            "Send the raw samples, not a file: strip WAV headers and do not send "
            "MediaRecorder (WebM/Ogg) blobs.",
            "Encode with standard base64: `base64.b64encode(pcm_bytes).decode()` in Python, "
            "`btoa(String.fromCharCode(...new Uint8Array(buf)))` in JavaScript.",
            "Convert float samples to int16: `(np.clip(x, -1, 1) * 32767).astype('<i2')`.",
            "Send about 50 ms per message (2,400 bytes at 24 kHz), no faster than real time.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio captured.raw",),
        _A_BASE64,
    ),
    Entry(
        "token_auth",
        "The API key or temporary token was refused",
        "The credential is missing, wrong, expired or without Voice Agent API access, and "
        "the service refuses it before `session.ready`. The live service lets the "
        "WebSocket open, then sends `session.error` "
        '`unauthorized` ("Authentication failed") and closes 1008; the docs describe a '
        "refused handshake (`UNAUTHORIZED`, browsers see 1006). Its token endpoint answers a "
        "wrong key with 404 `Invalid API key`.",
        (
            "Check the key in your dashboard and pass it as `ASSEMBLYAI_API_KEY` (no quotes, "
            "no `Bearer ` prefix inside the variable).",
            "If the key is right, check in the dashboard that its account or project has "
            "Voice Agent API access and a billing method: a key without that access can be "
            "refused like a wrong one (401, 403, or 404 `Invalid API key`).",
            "This run used the {region} region ({host}). Whether a key works in both regions "
            "is not documented: if your account was set up in the other one, try "
            "`--region {other_region}`.",
            "Mint a fresh temporary token right before each connection, with "
            + _TOKEN_WINDOW
            + "; never cache tokens.",
            "Give every connection, a reconnect included, its own new token: the docs call "
            "tokens single use, even where the service lets one through twice.",
            "In the app, treat `unauthorized` in any letter case, and a close 1008 before "
            "`session.ready`, as a refused credential.",
            "Detail: {detail}",
        ),
        ("agent-doctor check token",),
        _A_TOKEN,
    ),
    Entry(
        "billing",
        "Sessions are billed for the grace window",
        "Closing the socket without `session.end` keeps the session alive for the 30 s resume "
        "window, and that time is billed.",
        (
            'Send `{{"type": "session.end"}}` and wait for `session.ended` before closing on '
            "every intentional hang-up (end button, page unload, Ctrl+C).",
            "Skip it only when the drop is accidental and you mean to resume.",
            "Detail: {detail}",
        ),
        (),
        _A_BILLING,
    ),
    Entry(
        "session_resume",
        "Session resume failed",
        "`session.resume` only works within the grace window after a drop, with the same "
        "account, and on a fresh connection (a fresh token when tokens are used).",
        (
            "In the app, catch `session_not_found`, `session_forbidden` and `session_expired` "
            "and start a fresh session with `session.update`.",
            "If resume fails in a way your app cannot recover from ({detail}), email "
            "support@assemblyai.com with this report attached (it lists the session ids and "
            "timings).",
            "Resume with the same API key (or a token minted by it) that created the session.",
        ),
        ("agent-doctor check resume --report resume-report.json",),
        _A_RESUME,
    ),
    # --- entries the checks need beyond the vendor page -------------------------------------
    Entry(
        "echo_measurement",
        "The echo measurement could not decide",
        "An echo is found by matching what was played against what the microphone heard; "
        "with too little agent audio, a capture that does not cover the playback, or noise "
        "louder than the echo, the match is too weak to call either way.",
        (
            "Run the live probe, which plays a known test sound: `agent-doctor check echo` "
            "(stay quiet while it plays).",
            "For files, give at least 3 s (better 6 s or more) of agent speech and a "
            "recording made at the same time; if the two files do not start together, add "
            "`--search-window SECONDS`.",
            "Detail: {detail}",
        ),
        ("agent-doctor check echo",),
        _A_ECHO,
    ),
    Entry(
        "native_rate",
        "The audio device runs at another rate and is resampled to 24 kHz",
        "{device} runs natively at {rates}; the sound system converts to and from 24,000 Hz. "
        "On a desktop this is harmless; a Bluetooth headset in hands-free (HFP/HSP) mode "
        "runs at 8 or 16 kHz and loses the upper half of speech, which ruins recognition "
        "even after resampling.",
        (
            "Keep opening your streams at `samplerate=24000`, mono, int16, and let the host "
            "resample (or resample yourself with `scipy.signal.resample_poly`).",
            "With a Bluetooth headset, use its stereo (A2DP) profile for playback and another "
            "microphone, or a wired/USB headset.",
            "Detail: {detail}",
        ),
        ("agent-doctor devices",),
        _A_RATE,
    ),
    Entry(
        "python_env",
        "Python or a required package is missing",
        "agent-doctor (and the vendor's Python examples) need Python 3.10+ and a few packages.",
        (
            "Use Python 3.10 or newer.",
            "Install the missing packages: {detail}",
        ),
        ("python3 -m pip install --upgrade agent-doctor",),
    ),
    Entry(
        "portaudio",
        "The PortAudio library is not installed",
        "`sounddevice` is a thin layer over the PortAudio C library, which pip does not "
        "install on Linux; without it no audio device can be opened.",
        ("Install PortAudio with your system's package manager, then run the check again.",),
        ("{detail}",),
        _A_MIC,
    ),
    Entry(
        "audio_device",
        "No usable audio device",
        "PortAudio lists no device of the kind needed, or the device is held by another program.",
        (
            "Plug in or enable a microphone/speaker and make it the system default, or pick "
            "one with `--input-device`/`--output-device` (see `agent-doctor devices`).",
            "Linux: make sure a sound server runs (`pactl info`) and, without one, that you "
            "may open `/dev/snd` (group `audio`).",
            "If the device is busy, close the other program using it (a call app, a DAW).",
            "Detail: {detail}",
        ),
        ("agent-doctor devices", "pactl info"),
        _A_MIC,
    ),
    Entry(
        "audio_level",
        "The microphone delivers silence or a very low level",
        "All-zero input usually means a denied permission (macOS shows no error, only "
        "zeros), a muted input, or the wrong device; a very low level makes speech "
        "detection unreliable.",
        (
            "macOS: allow the microphone for your terminal app in System Settings → Privacy & "
            "Security → Microphone.",
            "Unmute the input and raise its gain; check that {device} is the microphone you "
            "speak into.",
            "Detail: {detail}",
        ),
        ("agent-doctor devices",),
        _A_MIC,
    ),
    Entry(
        "tls_interception",
        "A TLS-inspecting proxy is in the path",
        "The certificate presented for {host} was issued by {issuer}, not by a public CA: a "
        "corporate proxy or security product is decrypting TLS.",
        (
            "Ask IT to exempt {host} from TLS inspection (recommended: WebSocket streams often "
            "break inside inspection proxies).",
            "Or trust the inspection CA explicitly: export it as PEM and pass "
            "`--ca-bundle CA.pem` here and `SSL_CERT_FILE=CA.pem` to your app.",
        ),
        ("agent-doctor check wss --ca-bundle CA.pem",),
        _A_FIREWALL,
    ),
    Entry(
        "tls_certificate",
        "The TLS certificate for the service could not be verified",
        "The certificate chain for {host} failed verification: untrusted issuer, expired "
        "certificate, wrong host name, or an outdated CA store on this machine.",
        (
            "Check the system clock (`date`): a wrong clock makes valid certificates look expired.",
            "Update the CA store (`sudo apt-get install --reinstall ca-certificates`, "
            "`pip install --upgrade certifi`).",
            "If you connect through a relay or custom URL, check that its certificate "
            "covers the host name you use.",
            "Detail: {detail}",
        ),
        ("date -u", "python3 -m certifi"),
        _A_FIREWALL,
    ),
    Entry(
        "proxy",
        "The HTTP proxy refused or could not be reached",
        "The connection goes through {proxy}, which did not let the tunnel to {host}:{port} open.",
        (
            "Check the proxy address and that it runs.",
            "If it asks for credentials (407), put them in the URL: "
            "`--proxy http://USER:PASSWORD@PROXY:PORT` (agent-doctor hides them in reports).",
            "If it refuses the CONNECT (403), ask IT to allow CONNECT to {host}:{port}.",
            "To bypass the proxy for this host, add it to `NO_PROXY`.",
            "Detail: {detail}",
        ),
        ("env | grep -i _proxy",),
        _A_FIREWALL,
    ),
    Entry(
        "region",
        "Region and endpoint",
        "US and EU are separate endpoints ({host} vs {other_host}); keys and sessions may be "
        "bound to one.",
        (
            "Connect to the endpoint of the region your account uses (`--region us|eu`).",
            "Report the region with every support request.",
        ),
        ("agent-doctor all --region eu",),
        _A_SUPPORT,
    ),
    Entry(
        "service_side",
        "The service refused or failed to start the session",
        "The credential was accepted but the service answered with an error of its own "
        "(capacity, internal error, agent start-up failure, rate limiting).",
        (
            "Wait a little and retry with backoff; rate limits (429) and capacity refusals "
            "are temporary.",
            "If it persists, email support@assemblyai.com with this report (it has the "
            "session ids, close codes and times). Detail: {detail}",
        ),
        ("agent-doctor all --report doctor-report.json",),
        _A_SUPPORT,
    ),
    Entry(
        "rate_limit",
        "The token endpoint is rate limiting this key",
        "GET /v1/token answers HTTP 429 when a key asks for tokens too often; the answer "
        "may say how long to wait in a `Retry-After` header.",
        (
            "Wait before the next token request: {detail}.",
            "In the app, honour `Retry-After` when a 429 carries it, otherwise retry with "
            "exponential backoff (1 s, 2 s, 4 s...), and give up after a few tries.",
            "Mint one token per connection, right before opening it; never mint in a loop "
            "or on a timer: a stock of tokens does not help, since each one is good only "
            "within its short `expires_in_seconds` window, and the docs allow one "
            "connection per token.",
            "If 429s come at normal traffic, email support@assemblyai.com with this report.",
        ),
        ("agent-doctor check token --report token-report.json",),
        _A_TOKEN,
    ),
    Entry(
        "resume_new_id",
        "session.resume came back with a different session id",
        "The service answered the resume with a `session.ready` that carries a new id, so "
        "the old id no longer names the session: an app that keeps it fails its next resume "
        "with `session_not_found` and logs the wrong id for support.",
        (
            "Take `session_id` from every `session.ready`, including the one after "
            "`session.resume`, and use the newest one for the next resume and in your logs.",
            "Check that the conversation carried on (the agent remembers what was said "
            "before the drop); if it did not, treat the resume as a fresh session.",
            "Detail: {detail}",
        ),
        ("agent-doctor check resume --report resume-report.json",),
        _A_RESUME,
    ),
    # token / resume review findings (issues 5, 9)
    Entry(
        "resume_forbidden",
        "session.resume was refused as belonging to another key",
        "`session_forbidden` means the service saw the resume come from another account or "
        "API key than the one that created the session; a session is resumable only by the "
        "key that started it (or a token minted with that key).",
        (
            "In the app, keep the API key (or the key that mints tokens) with each stored "
            "`session_id`, and resume only with that key or a token freshly minted with it.",
            "If you rotate keys or serve several projects, start a fresh session with "
            "`session.update` after a rotation instead of resuming.",
            "If both connections did use the same key, the service refused its own session: "
            "email support@assemblyai.com with this report attached (it lists the session id "
            "and both masked credentials).",
            "Detail: {detail}",
        ),
        ("agent-doctor check resume --report resume-report.json",),
        _A_RESUME,
    ),
    Entry(
        "resume_expired",
        "session.resume came after the session's time limit",
        "`session_expired` means the session reached its maximum length "
        "(`max_session_duration_seconds` of the token that started it, or the 3-hour "
        "maximum); an expired session cannot be resumed.",
        (
            "Treat `session_expired` as final: start a fresh session with `session.update`.",
            "If sessions need to last longer, mint their tokens with a larger "
            "`max_session_duration_seconds` (60-10800).",
            "If it came well before any limit, email support@assemblyai.com with this report "
            "attached.",
            "Detail: {detail}",
        ),
        ("agent-doctor check resume --report resume-report.json",),
        _A_RESUME,
    ),
    Entry(
        "resume_no_ready",
        "session.resume got something other than session.ready",
        "A resume is answered with `session.ready` or with a `session.error` "
        "(`session_not_found`, `session_forbidden`, `session_expired`); anything else is "
        "outside the documented protocol.",
        (
            "What came instead: {detail}.",
            "In the app, treat any answer to `session.resume` other than `session.ready` as "
            "a failed resume and start a fresh session with `session.update`.",
            "Email support@assemblyai.com with this report attached (it holds the timeline of "
            "both connections).",
        ),
        ("agent-doctor check resume -v --report resume-report.json",),
        _A_RESUME,
    ),
    Entry(
        "account_access",
        "The credential is valid but may not use the Voice Agent API",
        "The service recognised the key (or the token minted with it) and refused it with "
        "403 / `FORBIDDEN`: the account or project has no access to the Voice Agent API.",
        (
            "In the AssemblyAI dashboard, check that the account has Voice Agent API access "
            "and a billing method, and that the key belongs to the project you expect.",
            "If access looks right, email support@assemblyai.com with this report attached.",
            "Detail: {detail}",
        ),
        ("agent-doctor check token --report token-report.json",),
        _A_TOKEN,
    ),
    Entry(
        "token_request",
        "The token request was refused as malformed or sent to the wrong URL",
        "GET /v1/token takes `expires_in_seconds` (1-600) and optionally "
        "`max_session_duration_seconds` (60-10800); a value out of range gets 400, and a URL "
        "that is not the token endpoint gets 404 or 405.",
        (
            "Check `--token-url` and the token URL your app uses: it should end in "
            "`/v1/token` (for this region {token_url}).",
            "If a relay or your own backend sits between the app and the token endpoint, "
            "check which query parameters it forwards, and that it keeps them in range.",
            "Detail: {detail}",
        ),
        ("agent-doctor check token -v",),
        _A_TOKEN,
    ),
    # validate-audio / audio-format (issue 6)
    Entry(
        "audio_encoding",
        "The samples are not 16-bit little-endian mono PCM",
        "The API reads `input.audio` as signed 16-bit little-endian mono samples (or G.711 "
        "bytes when the session's input format is `audio/pcmu`/`audio/pcma` at 8 kHz); any "
        "other width, byte order or channel count is heard as loud noise or at the wrong "
        "speed.",
        (
            "Float samples: `(np.clip(x, -1, 1) * 32767).astype('<i2').tobytes()`; in a "
            "browser AudioWorklet, convert each Float32Array sample to Int16 the same way.",
            "32/24-bit samples: keep the top 16 bits (`(x >> 16).astype('<i2')` for int32).",
            "Big-endian samples: swap bytes (`x.astype('<i2')`, or `byteswap()`).",
            "Stereo: open the capture with one channel, or average the channels.",
            "G.711 (μ-law/A-law): declare `audio/pcmu` or `audio/pcma` at 8000 Hz in "
            "`session.input.format`, or decode to PCM16 24 kHz before sending.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio FILE --fix fixed.raw",),
        _A_BASE64,
    ),
    Entry(
        "audio_container",
        "A file format was sent instead of raw samples",
        "`input.audio` carries bare samples; a WAV header, or a compressed file (WebM/Ogg "
        "from MediaRecorder, MP3, M4A, FLAC) is decoded as noise or refused with "
        "`invalid_audio`.",
        (
            "WAV: send only the bytes after the header (Python: `wave.open(f).readframes(n)`), "
            "and check that the file is 24000 Hz, mono, 16-bit.",
            "Browsers: do not send MediaRecorder blobs; capture PCM with an AudioWorklet at "
            "24 kHz instead.",
            "Compressed files: decode them first, e.g. "
            "`ffmpeg -i in.webm -ar 24000 -ac 1 -f s16le out.raw` or "
            "`sox in.flac -r 24000 -c 1 -b 16 -e signed -L -t raw out.raw`.",
            "Detail: {detail}",
        ),
        ("ffmpeg -i INPUT -ar 24000 -ac 1 -f s16le out.raw", "agent-doctor validate-audio out.raw"),
        _A_BASE64,
    ),
    Entry(
        "audio_base64",
        "The base64 in `input.audio` is not plain standard base64",
        "The service decodes `audio` with the standard base64 alphabet and no extras: a "
        "`data:` URL prefix, URL-safe characters (`-`, `_`), line breaks or spaces, stray "
        "characters or padding in the middle make it answer `invalid_audio`.",
        (
            "Encode the raw bytes with the standard alphabet and no line breaks: "
            "`base64.b64encode(pcm).decode('ascii')` (not `urlsafe_b64encode`, not "
            "`encodebytes`).",
            "In JavaScript, strip the `data:...;base64,` prefix that `FileReader."
            "readAsDataURL` adds, or encode the ArrayBuffer directly.",
            "Encode each message's chunk on its own; do not concatenate base64 strings.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio message.json",),
        _A_BASE64,
    ),
    Entry(
        "audio_gain",
        "The input level is distorted (clipping or DC offset)",
        "Samples stuck at full scale (clipping) or shifted by a constant (DC offset) distort "
        "speech and hurt recognition and turn detection.",
        (
            "Lower the input gain (OS mixer, `alsamixer`, or the app's gain) until speech "
            "peaks stay below about -3 dBFS.",
            "Do not add gain in the app after capture; remove any DC offset with a high-pass "
            "filter (e.g. 50 Hz) if the device adds one.",
            "Detail: {detail}",
        ),
        ("agent-doctor devices",),
        _A_MIC,
    ),
    Entry(
        "audio_chunking",
        "Audio chunks are too small, too big, or sent too fast",
        "The service expects about 50 ms of audio per `input.audio` message (2,400 bytes of "
        "PCM16 at 24 kHz), sent continuously at real time; audio sent faster than real time "
        "is dropped.",
        (
            "Send one message per ~50 ms of captured audio, as it is captured.",
            "When streaming a file, pace it: sleep for each chunk's duration between sends.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio capture.jsonl",),
        _A_BASE64,
    ),
    # --- the live service as the field saw it (issue 13) ---
    Entry(
        "token_lifetime",
        "Temporary tokens: one per connection, and your own session timer",
        "The live service accepted a temporary token more than once within its "
        "`expires_in_seconds` window, and did not end sessions at the token's "
        "`max_session_duration_seconds`. Neither is something to rely on or to fight: the "
        "docs promise single use and a hard cap, and either may be enforced at any time.",
        (
            "Mint a fresh token right before each connection (a reconnect included), with "
            + _TOKEN_WINDOW
            + ", and never store or share one.",
            "Protect the route in your app that mints tokens (login, rate limit): a leaked "
            "token can open more than one session while its window lasts.",
            "Run your own session timer and send `session.end` when it runs out (and on every "
            "hang-up); do not wait for `session_expired`, which the live service did not send.",
        ),
        ("agent-doctor check token -v",),
        _A_TOKEN,
    ),
    Entry(
        "resume_refused",
        "The service refused session.resume: start a fresh session",
        "`session.resume` was answered with `{code}` and the socket closed. In the field every "
        "reported resume attempt was refused this way, 1 to 15 s after the drop; the vendor's "
        "advice is for the app to recover on its own.",
        (
            "In the app, catch `session_not_found`, `session_forbidden` and `session_expired` on "
            "a resume, drop the stored id, and start a fresh session with `session.update` at "
            "once (a fresh token first, in a browser).",
            "Restore the context from your own records: the conversation so far in "
            "`system_prompt` (`conversation.message` content is ignored live), or "
            "`reply.create` `instructions` for the next turn.",
            "Send `session.end` on every intentional hang-up, so a refused resume never leaves "
            "a dropped session billing its grace window.",
            "If your product depends on resume, email support@assemblyai.com with this report "
            "(it has the session id, the delay and the answer). Detail: {detail}",
        ),
        ("agent-doctor check resume --report resume-report.json",),
        _A_RESUME,
    ),
    # --- audio on real setups (issue 14) ---
    Entry(
        "audio_empty",
        "The audio is empty",
        "The input holds no audio bytes: the app wrote nothing (or an empty `audio` "
        "string), so there is nothing to send or check. A silent microphone still gives "
        "bytes (zeros); no bytes at all is a capture or write problem.",
        (
            "Check that the app writes the chunks it captures: the file or `audio` field is "
            "filled only after the capture callback ran and the buffer was flushed.",
            "Check that the capture actually delivered chunks (a stream that never started "
            "gives none), then validate a few seconds of them.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio capture.jsonl",),
        _A_BASE64,
    ),
    Entry(
        "audio_sample_length",
        "Too little audio to judge",
        "A single quiet chunk (the first 50 ms of a session is often near silence) carries "
        "too little signal to tell PCM16 from other sample formats, or to measure its rate.",
        (
            "Validate a few seconds of speech: save the audio of several consecutive "
            "`input.audio` messages (a JSON-lines capture works as it is).",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio capture.jsonl",),
        _A_BASE64,
    ),
    Entry(
        "loopback_input",
        "The input is a copy of the output, not a microphone",
        "The chosen input records what this machine plays (a monitor of an output, or a "
        "virtual loopback cable), digitally. It is silent until something plays, and then "
        "everything the agent says comes straight back into the session as if the user "
        "said it: the agent interrupts itself on every reply.",
        (
            "Pick the real microphone: `agent-doctor devices` lists the inputs; pass one with "
            "`--input-device`, and make it the default in your app or system settings.",
            "PulseAudio/PipeWire (where `agent-doctor devices` shows only `pulse`/`default`): "
            "`pactl list short sources` lists the server's inputs; test one with "
            "`--input-device SOURCE`, then make it the default with `pactl set-default-source "
            "SOURCE` (or pavucontrol). If every source is a `.monitor`, this machine has no "
            "microphone the server knows of: plug one in or enable its card profile.",
            "macOS: BlackHole or Loopback as the input is only right for recording what plays; "
            "choose the built-in or headset microphone in Sound settings.",
            "Windows: disable Stereo Mix / What U Hear as the default recording device.",
            "Detail: {detail}",
        ),
        ("agent-doctor devices", "pactl list short sources"),
        _A_ECHO,
    ),
    Entry(
        "sound_server_unresponsive",
        "The sound server does not answer",
        "PulseAudio or PipeWire is running but stopped answering (frozen, or died mid-stream): "
        "every program that opens, stops or lists audio through it waits forever, and the "
        "Voice Agent app gets no microphone audio and plays nothing.",
        (
            "Check it: `pactl info` should answer at once; if it hangs, the server is stuck.",
            "Restart it: PipeWire `systemctl --user restart pipewire pipewire-pulse`; "
            "PulseAudio `pulseaudio -k` (it starts again on the next use).",
            "Detail: {detail}",
        ),
        ("pactl info", "systemctl --user restart pipewire pipewire-pulse", "pulseaudio -k"),
        _A_MIC,
    ),
    # --- session analysis: session, analyze (issue 15) ---
    Entry(
        "session_echo",
        "The agent hears itself: its voice comes back as user speech",
        "The agent's audio plays through a speaker into the microphone and the app sends it "
        "back; the service takes it for the user, cuts the reply and answers its own words. "
        "Terminal apps (PortAudio, `sounddevice`) get no echo cancellation from the OS.",
        (
            "Use headphones: the simplest and most reliable fix.",
            "In a browser, capture with `getUserMedia({{audio: {{echoCancellation: true}}}})` "
            "and one AudioContext at the device's rate (forcing 24 kHz defeats Firefox's AEC).",
            "In a native app, capture through the platform's voice-processing path (macOS "
            "VoiceProcessingIO, Windows communications mode, WebRTC AEC).",
            "Seen in this session: {detail}",
        ),
        ("agent-doctor check echo",),
        _A_ECHO,
    ),
    Entry(
        "self_interruptions",
        "Replies are cut as soon as they start",
        "A reply interrupted within a second or two of its first sound, again and again, is "
        "what an echo loop or a noisy microphone looks like to the service's turn detection.",
        (
            "Listen to the recording's left (user) channel at the cuts: the agent's own voice "
            "means echo (headphones or echo cancellation); hiss, music or a TV means noise.",
            "Against noise: a close-talking microphone, or raise `turn_detection.vad_threshold` "
            "and `interruption_delay` in `session.update`.",
            "Detail: {detail}",
        ),
        ("agent-doctor check echo",),
        _A_ECHO,
    ),
    Entry(
        "eager_turn_detection",
        "Turn detection ends the user's turn in a pause",
        "The service committed the user's turn during a short pause; the reply started, the "
        "user went on talking, and the reply was cut within half a second with nothing said. "
        "This is turn-taking, not echo.",
        (
            "Let users pause longer: raise `input.turn_detection.min_silence` (and "
            "`max_silence`) in `session.update`.",
            "Make barge-in less eager: raise `interruption_delay` so a continuation is "
            "merged into the turn instead of cutting the reply.",
            "A slower `input.transcription_mode` (balanced, max_accuracy) waits longer for "
            "the end of a turn. Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "slow_replies",
        "Replies take long to be heard",
        "The time from the end of the user's turn to the agent's first audible sound is "
        "endpointing plus the reply's silent lead-in; tool calls and the network add to it.",
        (
            "`input.transcription_mode` `min_latency` ends turns soonest; `max_accuracy` "
            "waits the longest.",
            "Keep tools fast, and send `tool.result` as soon as the tool returns.",
            "Run `agent-doctor all` from the same network: a slow path or a far region shows "
            "there. Detail: {detail}",
        ),
        ("agent-doctor all",),
        _A_SUPPORT,
    ),
    Entry(
        "tool_results",
        "Answer every tool.call with a tool.result, in time",
        "The agent waits for the result of each call; without one it stays silent until the "
        "tool's timeout. A live relay that dropped results after an interruption (as the docs "
        "suggest for hold-mode tools) left the agent silent for a minute.",
        (
            "Send a `tool.result` for every `tool.call`, also after `reply.done` with status "
            "`interrupted`.",
            "Answer within the tool's `timeout_seconds`; send `is_error: true` with a short "
            "message when the tool fails or is slow.",
            "Do not answer calls of HTTP tools on stored agents: the service runs those.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "session_errors",
        "The service answered a message with session.error",
        "`session.error` names what the service refused: `code`, `message` and, for a config "
        "field, `param`. Config errors in the first `session.update` end the session.",
        (
            "Fix the message the error names ({code}): the offending message is in the "
            "evidence when the log kept the app's messages.",
            "Log every `session.error` with `code`, `message` and `param` in full, and handle "
            "both `session.error` and `error` types.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio capture.jsonl",),
        _A_SUPPORT,
    ),
    Entry(
        "abrupt_close",
        "The connection dropped without a clean close",
        "A close without a close frame (1006) is a network drop, a proxy timeout or the app "
        "exiting; a 1011 is the service failing. The session then waits for a resume and "
        "bills its grace window.",
        (
            "Send `session.end` and wait for `session.ended` before closing on purpose.",
            "If drops happen mid-call, run `agent-doctor all` on that network: proxies and "
            "firewalls that cut idle or long WebSockets show there.",
            "Detail: {detail}",
        ),
        ("agent-doctor all",),
        _A_FIREWALL,
    ),
    Entry(
        "outdated_client",
        "The app sends messages or fields the service does not know",
        "Unknown types are answered with `invalid_format`; unknown fields are ignored, which "
        "silently drops what the app meant (config under `config` instead of `session`).",
        (
            "Compare the app's messages with the current events reference: `session.update` "
            "with `session`, `input.audio` with `audio`, `tool.result` with `call_id` and "
            "`result` (a string).",
            "Update SDKs and examples written for pre-release versions of the API.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "session_logging",
        "Log what support needs to find a session",
        "Support finds a session by its id; the close code and reason, the start time and "
        "the region tell what happened. A log of received messages alone cannot show "
        "whether the app sent `session.end` or answered its tool calls.",
        (
            "Log the `session_id` of every `session.ready`, the close code and reason of "
            "every disconnect, the session's start time and the endpoint (region) used.",
            "Log what the app sends too (with a direction marker), and a receive time on "
            "every line; or run the app through `agent-doctor watch`, which writes all of it.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "silent_replies",
        "Replies complete without a word",
        "A reply that ends `completed` with no transcript and no audible audio, and no "
        "`session.error`, is how the live service answered when the model could not be "
        "called (a bring-your-own LLM the account has no LLM Gateway access to).",
        (
            "Try the managed LLM (no `llm` on the agent), or a model your account can call: "
            "the LLM Gateway answers 400 for models it does not give you.",
            "If the agent uses the managed LLM, send this report to support@assemblyai.com "
            "with the session id. Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "conversation_message",
        "conversation.message content does not reach the model",
        "The live service accepts `conversation.message` (roles `user` and `system`) without "
        "an error, but the model never sees its content.",
        (
            "For the next turn only, send `reply.create` with `instructions`.",
            "For lasting context, send `session.update` with a new `system_prompt` (it takes "
            "effect on the next reply).",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "audio_before_ready",
        "Audio sent before session.ready",
        "The service starts listening at `session.ready`; audio sent earlier is refused or "
        "lost, so the user's first words are missing.",
        (
            "Start streaming `input.audio` only after `session.ready` arrives; buffer the "
            "microphone until then if the user may talk at once.",
        ),
        (),
        _A_BASE64,
    ),
    # (issue 15, fetching sessions: agent-doctor session)
    Entry(
        "session_id_format",
        "That is not a session id",
        "Session ids look like `sess_` followed by 32 hexadecimal digits; `{detail}` is not "
        "one, so nothing was asked of the service.",
        (
            "Copy the id from `session.ready.session_id` in your app's log (or from "
            "`agent-doctor session --recent 5`), not the resume token, an agent id or an item "
            "id.",
        ),
        ("agent-doctor session --recent 5",),
        _A_SUPPORT,
    ),
    Entry(
        "sessions_key_refused",
        "The Sessions API refused the API key",
        "{host} answered {code} to the key from {detail}; the Sessions API, like the token "
        "endpoint, wants the account's API key (a temporary token cannot read sessions).",
        (
            "Use the API key of the account that ran the session: `--api-key` or "
            "ASSEMBLYAI_API_KEY (the raw key; `Bearer` is accepted too).",
            "Check the key in the dashboard; a revoked or mistyped key is refused.",
        ),
        ("agent-doctor check token -v",),
        _A_TOKEN,
    ),
    Entry(
        "session_not_found",
        "No such session for this key in region {region}",
        "{host} knows no session `{detail}` for this API key. Sessions are kept per account "
        "and per region: a session of another account, or one that ran in the other region, "
        "answers the same 404.",
        (
            "If the app connects to {other_host}, ask there: `--region {other_region}`.",
            "If another account's key opened the session, use that key.",
            "Check the id against `session.ready.session_id` in the app's log; "
            "`agent-doctor session --recent 5` lists this key's newest sessions.",
        ),
        ("agent-doctor session --recent 5 --region {region}",),
        _A_SUPPORT,
    ),
    Entry(
        "session_not_found_in_both_regions",
        "No such session for this key in region {region} nor {other_region}",
        "{host} and {other_host} know no session `{detail}` for this API key (both regions "
        "were asked). Sessions are kept per account: a session another account's key "
        "opened answers the same 404.",
        (
            "If another account's key opened the session, use that key.",
            "Check the id against `session.ready.session_id` in the app's log; "
            "`agent-doctor session --recent 5` lists this key's newest sessions.",
        ),
        ("agent-doctor session --recent 5 --region {region}",),
        _A_SUPPORT,
    ),
    Entry(
        "session_not_found_at_url",
        "No such session for this key at {host}",
        "{host} (the run's `--token-url`) knows no session `{detail}` for this API key. "
        "Sessions are kept per account and per region: a session of another account, or "
        "one that ran behind another host, answers the same 404.",
        (
            "If the app connects to another host, ask that one: pass the token URL the app "
            "uses with `--token-url`.",
            "If another account's key opened the session, use that key.",
            "Check the id against `session.ready.session_id` in the app's log; the command "
            "below lists this key's newest sessions at {host}.",
        ),
        ("agent-doctor session --recent 5 --token-url {token_url}",),
        _A_SUPPORT,
    ),
    Entry(
        "session_in_other_region",
        "The session ran in region {other_region}",
        "The session is not in region {region} but {other_host} has it: sessions are stored "
        "in the region that ran them.",
        ("Ask the region that ran it: `--region {other_region}`.",),
        ("agent-doctor session {detail} --region {other_region}",),
        _A_SUPPORT,
    ),
    Entry(
        "artifacts_not_ready",
        "The session's artifacts are not ready yet",
        "The service lists a session's recording, timeline and metadata only once the "
        "session is complete: a few seconds after its end (about 7 s in the field), longer "
        "for a session still open or in its grace window.",
        (
            "Wait a few seconds and run the same command again.",
            "If the session is still `active`, end it with `session.end` first (a dropped "
            "session stays open through its grace window).",
        ),
        ("agent-doctor session {detail}",),
        _A_SUPPORT,
    ),
    Entry(
        "artifact_url_expired",
        "The artifact links expired before the download",
        "Artifact URLs are pre-signed and short-lived; the links read from the Sessions API "
        "had expired when they were fetched, also after asking for fresh ones.",
        (
            "Run the command again: each run asks for fresh links.",
            "Check this machine's clock (pre-signed URLs are checked against the time) and "
            "raise `--timeout` on a slow link.",
        ),
        ("agent-doctor session {detail}",),
        _A_SUPPORT,
    ),
    Entry(
        "artifact_download_failed",
        "An artifact could not be downloaded",
        "The Sessions API gave a link, but fetching it failed: {detail}.",
        (
            "Artifact links point at a storage host, not at {host}; allow it through "
            "{proxy} and the firewall (HTTPS, port 443).",
            "Run the command again; with `--save DIR` the files that did arrive stay there.",
        ),
        ("agent-doctor check wss",),
        _A_FIREWALL,
    ),
    Entry(
        "sessions_api_unreachable",
        "The Sessions API could not be reached",
        "No usable answer from {host}: {detail}.",
        (
            "The REST API is on the token URL's host; `agent-doctor all` tells DNS, TCP, TLS "
            "and proxy problems apart.",
            "Behind a proxy, pass it with `--proxy`; behind an inspecting proxy, its CA with "
            "`--ca-bundle`.",
        ),
        ("agent-doctor all",),
        _A_FIREWALL,
    ),
    # --- the relay: watch (issue 16) ---
    Entry(
        "watch_audio_before_ready",
        "Start sending audio only after session.ready",
        "The service applies the first `session.update` and only then answers "
        "`session.ready`; audio sent before that is refused (`invalid_format`) or dropped, so "
        "the user's first words are lost.",
        (
            "Open the microphone stream when `session.ready` arrives, not when the socket "
            "opens; buffer at most a second of audio until then if you must.",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "watch_tool_results",
        "Answer every tool.call with one tool.result, in time",
        "The agent waits for the result of a client-side tool: a missing result leaves it "
        "silent until the tool timeout, and a result after the timeout is ignored.",
        (
            'Send `{{"type": "tool.result", "call_id": ..., "result": "<JSON string>"}}` for '
            "every `tool.call`, also after a barge-in (`reply.done` `interrupted`): the "
            "field saw the agent go silent when results were dropped.",
            "Keep tools faster than their `timeout_seconds` (default 120 s), or raise it.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "watch_unknown_message",
        "The app sends messages the service does not know",
        "Unknown message types are answered with `invalid_format` and ignored: often an older "
        "API version (`/v1/realtime`, `args`), another vendor's names, or a typo.",
        (
            "Use the current message types: `session.update`, `session.resume`, `input.audio`, "
            "`tool.result`, `reply.create`, `session.end`.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "watch_relay",
        "The relay's analysis could not keep up",
        "Every frame was forwarded, but the analysis saw only part of them (or stopped), so "
        "the findings may miss something.",
        (
            "Watch fewer sessions at once (`--sessions`), or keep audio out of the capture "
            "(`--audio summary`), and run `agent-doctor analyze` on the capture afterwards.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "watch_software_loop",
        "The app sends the agent's audio back as its input (a software loop)",
        "The agent's audio comes back in `input.audio` within one input chunk of being handed "
        "over: too "
        "soon to have gone through a speaker and a microphone, so the app itself routes what "
        "it receives into what it sends. The service takes it for the user talking, and every "
        "reply is cut short as interrupted.",
        (
            "Check the app's audio routing: `reply.audio` goes to the player only, and "
            "`input.audio` carries the microphone only (not a mix of the two, not a loopback "
            "or monitor device, not a shared buffer).",
            "Measured: {detail}",
        ),
        (),
        _A_ECHO,
    ),
    Entry(
        "watch_no_app",
        "No app connected to the relay",
        "agent-doctor watch only sees an app that connects to the relay's URL; an app still "
        "pointed at the service goes around it.",
        (
            "Set the app's WebSocket URL (and token URL, if it mints tokens) to the ones "
            "`agent-doctor watch` prints at the start, then run the app while watch waits.",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "watch_capture",
        "The capture file could not be written",
        "Writing the capture failed (a full disk, a file that cannot grow): every frame was "
        "still forwarded, but the capture ends early, so it does not hold the whole session.",
        (
            "Free space where the capture goes, or point `--capture` at another disk; keep "
            "audio out of it with `--audio summary` to make it much smaller.",
            "Detail: {detail}",
        ),
        (),
        _A_SUPPORT,
    ),
    Entry(
        "protocol_close",
        "The app broke the WebSocket protocol, and the connection was closed for it",
        "A close with 1009 means a message over the size limit (the reason names the size "
        "and the limit; agent-doctor watch's relay takes at most 16 MiB); 1007 a text frame "
        "that is not valid UTF-8 or data of the wrong kind; 1003 a frame type the service "
        "does not take; 1002 a malformed frame. The session ends there, without session.end.",
        (
            "Send audio in `input.audio` chunks of about 50 ms (2,400 bytes of PCM16 at "
            "24 kHz, base64 in a JSON text frame), never a whole recording in one message.",
            "Send JSON as UTF-8 text frames only; no binary frames.",
            "Detail: {detail}",
        ),
        ("agent-doctor validate-audio capture.jsonl",),
        _A_SUPPORT,
    ),
    # --- service-side fixes (session 26, netfix) ---
    Entry(
        "token_unreachable",
        "The token endpoint cannot be reached",
        "GET {endpoint_url} got no HTTP answer: a firewall, proxy or filter stops outbound "
        "{protocol} on port {port} to {host}, the name does not resolve, or nothing listens "
        "at this URL.",
        (
            "Check `--token-url` (and the token URL your app's backend uses): {endpoint_url}.",
            "Ask your network administrator to allow outbound TCP {port} ({protocol}) to {host}.",
            "If this network needs a proxy, pass it: `--proxy http://PROXY:PORT` here, and "
            "the same proxy in your backend's HTTP client (or `HTTPS_PROXY`).",
            "Detail: {detail}",
        ),
        ("agent-doctor check token -v", "curl -sv -o /dev/null {endpoint_url}"),
        _A_FIREWALL,
    ),
    Entry(
        "tls_private_ca",
        "The service's certificate comes from a CA this machine does not trust",
        "The certificate for {host} was issued by {issuer}: not a public CA, and not in this "
        "machine's trust store. That is a private CA: your own relay or test server, or a "
        "security product that inspects TLS (Zscaler, Netskope, a corporate proxy).",
        (
            "{host} presented a certificate issued by {issuer}, which this machine does not "
            "trust: not a public CA.",
            "If you expect this CA, trust it explicitly: export it as PEM and pass "
            "`--ca-bundle CA.pem` here, and `SSL_CERT_FILE=CA.pem` (Node: "
            "`NODE_EXTRA_CA_CERTS=CA.pem`) to your app.",
            "If you do not, ask IT whether a security product inspects TLS on this network, "
            "and to exempt {host} from it (WebSocket streams often break inside inspection).",
            "Detail: {detail}",
        ),
        (
            "agent-doctor check wss --ca-bundle CA.pem",
            "openssl s_client -connect {host}:{port} -servername {host} -showcerts",
        ),
        _A_FIREWALL,
    ),
    Entry(
        "proxy_credentials",
        "The proxy refused the credentials given",
        "The proxy {proxy} answered the CONNECT with a credential refusal although the URL "
        "carries a user name and password: one of them is wrong, or badly encoded.",
        (
            "The proxy refused the credentials sent for user {proxy_user}: check the user name "
            "and the password (agent-doctor never shows the password).",
            "Percent-encode special characters in the proxy URL: `@` as `%40`, `:` as `%3A`, "
            "`/` as `%2F`, `#` as `%23`, `%` as `%25`.",
            "If the proxy wants NTLM or Kerberos (see its Proxy-Authenticate header), point "
            "`--proxy` at a local helper that speaks it (cntlm, px).",
            "Detail: {detail}",
        ),
        ("agent-doctor check wss -v",),
        _A_FIREWALL,
    ),
    # --- the browser (issue 17) ---
    Entry(
        "browser_secure_context",
        "The page is not a secure context: browsers hide the microphone from it",
        "Browsers expose `navigator.mediaDevices` and AudioWorklet only to secure origins "
        "(https, or http on localhost/127.0.0.1). On any other http origin the microphone call "
        "fails with a `TypeError` (`mediaDevices` is undefined), not with `NotAllowedError`.",
        (
            "Serve your app over HTTPS, or from http://localhost / http://127.0.0.1 while "
            "developing.",
            "Test `window.isSecureContext` first and tell the user why the microphone is "
            "unavailable.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_MIC,
    ),
    Entry(
        "browser_unsupported",
        "This browser lacks an API a voice agent page needs",
        "The page needs `AudioContext`, `AudioWorklet`, `getUserMedia` and `WebSocket`; one "
        "of them is missing in this browser or profile.",
        (
            "Update the browser, or use a current Chrome, Edge, Firefox or Safari (14.1 or later).",
            "Check enterprise policies or extensions that disable Web Audio or WebRTC.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_MIC,
    ),
    Entry(
        "browser_permission",
        "The browser refused the microphone",
        "`getUserMedia` ended with `NotAllowedError`: the user or the site settings refused "
        "the microphone, or the operating system blocks the browser from it.",
        (
            "Allow the microphone for this site: click the icon left of the address bar "
            "(Chrome: Site settings → Microphone → Allow; Firefox: the microphone icon → "
            "remove the block; Safari: Settings for This Website → Microphone → Allow), then "
            "reload.",
            "macOS: System Settings → Privacy & Security → Microphone, enable the browser, "
            "then restart it. Windows: Settings → Privacy & security → Microphone → allow "
            "desktop apps.",
            "In your app, tell the user what to do when `NotAllowedError` comes back; a "
            "'Permission dismissed' message means the prompt was closed: ask again from a click.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_MIC,
    ),
    Entry(
        "browser_microphone",
        "The browser's microphone is missing, busy or silent",
        "`getUserMedia` found no input, could not open it (another app holds it, or the "
        "constraints cannot be met), or the track delivers only silence.",
        (
            "Plug in or select a microphone in the OS sound settings and in the browser's "
            "site settings; close other apps that use it (calls, recorders).",
            "Unmute the device (hardware switch, OS mute, privacy shutter) and raise the input "
            "gain.",
            "Ask only for the constraints the guide names (`echoCancellation: true`, "
            "`noiseSuppression: false`, `autoGainControl: true`); never `exact` values.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser", "agent-doctor devices"),
        _A_MIC,
    ),
    Entry(
        "browser_processing",
        "The browser did not apply the audio processing the app asked for",
        "`getSettings()` shows what the browser really applied; echo cancellation that is off "
        "lets the agent hear itself, noise suppression can clip the start of words.",
        (
            "Ask with `getUserMedia({{audio: {{echoCancellation: true, noiseSuppression: false, "
            "autoGainControl: true}}}})` and read `track.getSettings()` afterwards.",
            "If echo cancellation stays off on this device, use headphones.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_ECHO,
    ),
    Entry(
        "browser_sample_rate",
        "The browser's audio does not run at the rate the app assumes",
        "The API takes and sends 24 kHz PCM16. A context that is not at 24 kHz, or whose "
        "clock delivers another number of frames than it declares, gives garbled or "
        "chipmunk audio unless the app resamples.",
        (
            "Read `ctx.sampleRate` after creating the context, never assume it; resample to "
            "24 kHz in the capture worklet and from 24 kHz in the playback worklet when they "
            "differ.",
            "Simplest everywhere: one AudioContext at the browser's default rate, resampling "
            "at the edges (capture and playback).",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_RATE,
    ),
    Entry(
        "browser_mixed_rates",
        "Firefox: keep one AudioContext at the device rate and resample at the edges",
        "Some Firefox versions refuse to connect a microphone to an AudioContext of another "
        "rate (`NotSupportedError`, Bugzilla 1674892), and in Firefox a 24 kHz context left "
        "the page's own playback uncancelled by the echo canceller (measured: -2 dB at "
        "24 kHz, -72 dB at the device rate). The vendor's '24 kHz context' advice causes both.",
        (
            "Create the AudioContext without a `sampleRate` (the device rate) and resample "
            "to 24 kHz in the capture worklet and from 24 kHz in the playback worklet.",
            "Keep capture and playback in that one context, so the echo canceller sees the "
            "playback it has to remove.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_ECHO,
    ),
    Entry(
        "browser_autoplay",
        "The AudioContext does not start",
        "Browsers keep an AudioContext suspended until a user gesture; `resume()` can also "
        "hang when no output device answers. The agent's audio then never plays.",
        (
            "Create or `resume()` the AudioContext inside the click handler that starts the "
            "conversation, and race `resume()` against a timeout.",
            "Check that an output device is connected and selected in the OS.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_MIC,
    ),
    Entry(
        "browser_output",
        "The browser's playback path is missing, late or choppy",
        "With no output device the agent cannot be heard; underruns make its voice choppy; "
        "a long output latency delays every reply and barge-in.",
        (
            "Connect and select an output device in the OS; close other apps using audio.",
            "Keep 100-200 ms of audio queued in the playback worklet, so a late network chunk "
            "does not starve it.",
            "Prefer a wired headset to Bluetooth (its hands-free profile adds latency).",
            "Detail: {detail}",
        ),
        ("agent-doctor browser",),
        _A_RATE,
    ),
    Entry(
        "browser_websocket",
        "The browser's WebSocket to the Voice Agent API did not work",
        "A page cannot learn why a WebSocket failed to open (DNS, firewall, proxy, TLS or a "
        "refused upgrade all show as close 1006); agent-doctor repeats the handshake to tell "
        "which.",
        (
            "Mint the temporary token on your server right before connecting and pass it as "
            "the `token` query parameter of the WebSocket URL; never put the API key in the "
            "page.",
            "An https page must use `wss://` (mixed content is blocked); a Content-Security-"
            "Policy must allow the service in `connect-src`.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser", "agent-doctor check wss -v"),
        _A_FIREWALL,
    ),
    Entry(
        "browser_ca",
        "The browser does not trust the certificate authority given with --ca-bundle",
        "agent-doctor trusted the CA in --ca-bundle and its handshake worked; a browser trusts "
        "only its own or the system's store, so it refused the same TLS server, and a page "
        "sees that only as close 1006.",
        (
            "Import the CA certificate you gave with --ca-bundle into the browser's trust "
            "store as an authority: Firefox: Settings > Privacy & Security > Certificates > View "
            "Certificates > Authorities > Import; Chrome, Edge and Safari use the system's "
            "store (Linux: `certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n agent-doctor -i "
            "CA_FILE`; macOS: Keychain Access, System, set it to Always Trust).",
            "Restart the browser and run `agent-doctor browser` again; a real deployment must "
            "use a certificate the users' browsers trust, not a private CA.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser --ca-bundle CA_FILE",),
        _A_FIREWALL,
    ),
    Entry(
        "browser_page",
        "The browser page did not report back",
        "agent-doctor waited for the page's results and got none: the page was not opened, "
        "Start was not clicked, or the browser could not reach this machine's 127.0.0.1.",
        (
            "Open the printed http://127.0.0.1 address in the browser you use for your app, "
            "on this same machine, and click Start; give it about 30 seconds.",
            "If the page shows 'Download report', attach that file to your support email.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser --no-open",),
        _A_SUPPORT,
    ),
    Entry(
        "browser_start",
        "The browser command did not open the page",
        "The command given with --browser (`all`: --browser-cmd) could not be started, or "
        "it exited with an error before any browser fetched the page (or was killed after "
        "it), so no results could come.",
        (
            "Install that browser, or pass the command that starts the one you use for your "
            "app: `agent-doctor browser --browser firefox` (with `all`: "
            "`--browser --browser-cmd firefox`), or `'google-chrome --new-window'`.",
            "Or run with --no-open and open the printed http://127.0.0.1 address by hand, in "
            "that browser on this same machine, and click Start.",
            "Detail: {detail}",
        ),
        ("agent-doctor browser --no-open",),
        _A_SUPPORT,
    ),
)

ENTRIES: dict[str, Entry] = {e.id: e for e in _ENTRIES}


# What a fix says about the wire, by the failing URL's scheme (`scheme=`, which
# net/sessions.py's fix_values passes): a ws:// or http:// service has no TLS to allow,
# and its curl must not try https. No scheme given: the service's own, wss.
_TLS_WIRE = {"wire": "WSS", "wire_layers": "TLS, WebSocket upgrade", "web_scheme": "https"}
_WIRE: dict[str, dict[str, str]] = {
    "wss": _TLS_WIRE,
    "https": _TLS_WIRE,
    "ws": {
        "wire": "WebSocket traffic (ws://, no TLS)",
        "wire_layers": "plain WebSocket upgrade, no TLS",
        "web_scheme": "http",
    },
    "http": {
        "wire": "HTTP traffic (http://, no TLS)",
        "wire_layers": "plain HTTP, no TLS",
        "web_scheme": "http",
    },
}


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return DEFAULTS.get(key, "{" + key + "}")


def _render(template: str, values: _Defaults) -> str:
    return string.Formatter().vformat(template, (), values)


def fix(guide_id: str, **values: object) -> Fix:
    """The entry `guide_id` with the run's values filled in; unknown ids are a bug (KeyError)."""
    entry = ENTRIES[guide_id]
    given = {k: str(v) for k, v in values.items() if v is not None}
    filled = _Defaults({**_WIRE.get(given.get("scheme", "").lower(), _WIRE["wss"]), **given})
    steps = [_render(s, filled) for s in entry.steps]
    # A "Detail:" step with nothing to say is noise.
    steps = [s for s in steps if not s.rstrip().endswith(("Detail:", "this machine:"))]
    return Fix(
        guide=entry.id,
        title=_render(entry.title, filled),
        steps=steps,
        commands=[_render(c, filled) for c in entry.commands if _render(c, filled).strip()],
        url=entry.url,
    )
