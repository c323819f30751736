"""Single sentences from REAL speakers' voices (Festival and Flite), at a known true rate.

The espeak-ng corpus (`sentence_corpus.py`) is a formant synthesiser: its variants set
formants one by one, no human vocal tract. Debian's Festival and Flite voices are built from
recordings of real speakers (diphone LPC-residual voices, unit selection, HTS trained on one
speaker), so their spectral envelopes, pitch and rhythm are a real person's. Per voice and
true rate R the text whose duration as labelled at 24 kHz (real duration x R / 24000) is
nearest 3.5 s is taken, as `sentence_corpus._nearest` does, resampled from the voice's
native rate (16, 22.05, 32 or 44.1 kHz) to R. Synthesis is cached (AGENT_DOCTOR_REAL_CACHE,
default ~/.cache/agent-doctor/real-voices), keyed by voice and text.

    apt-get install festival flite festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
        festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph \
        festvox-italp16k festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru \
        festvox-ca-ona-hts
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sentence_corpus import (
    FINAL_TEXTS,
    LABEL_HZ,
    STRESS_TEXTS,
    TEXTS,
    TRUE_RATES_HZ,
    Array,
    Sentence,
    resample,
)

REQUIRE_ENV = "AGENT_DOCTOR_REQUIRE_REAL_PARTS"
CACHE_ENV = "AGENT_DOCTOR_REAL_CACHE"
TOOLS = ("festival", "flite")


@dataclass(frozen=True)
class Voice:
    name: str  # festival's voice function, or "flite_<voice>"
    lang: str
    speaker: str  # F, M, or C (a child)


VOICES = (
    Voice("voice_czech_dita", "cs", "F"),
    Voice("voice_czech_krb", "cs", "C"),
    Voice("voice_czech_machac", "cs", "M"),
    Voice("voice_czech_ph", "cs", "M"),
    Voice("voice_suo_fi_lj_diphone", "fi", "F"),
    Voice("voice_hy_fi_mv_diphone", "fi", "M"),
    Voice("voice_lp_diphone", "it", "F"),
    Voice("voice_pc_diphone", "it", "M"),
    Voice("voice_upc_ca_ona_hts", "ca", "F"),
    Voice("voice_cmu_us_slt_arctic_hts", "en", "F"),
    Voice("voice_kal_diphone", "en", "M"),
    Voice("voice_ked_diphone", "en", "M"),
    Voice("voice_msu_ru_nsh_clunits", "ru", "M"),
    Voice("flite_awb", "en", "M"),  # Scottish English
    Voice("flite_rms", "en", "M"),
    Voice("flite_slt", "en", "F"),
    Voice("flite_kal16", "en", "M"),
)
# the text encoding each festival language's lexicon reads (UTF-8 bytes are spelled out as
# unknown letters by the Czech, Finnish and Italian voices: 5.9 s for "Dobrý den, slyšíte mě?")
ENCODING = {"cs": "iso-8859-2", "fi": "latin-1", "it": "latin-1", "ca": "latin-1"}

# Russian: no other corpus has it
RU_TEXTS = (
    "Добрый день, вы меня слышите?",
    "Я хотел бы изменить свой адрес.",
    "Посылка, которую я заказал две недели назад, до сих пор не пришла в почтовое отделение.",
    "Мы хотим снять дом у озера в июле и хотели бы узнать, есть ли там место для шести "
    "человек и собаки.",
)
# A longest sentence per language, so that 8 kHz (read 3x fast) has one that lasts 2 s or
# more as labelled for the faster voices (6 s or more of real speech).
LONGEST = {
    "en": "When I called last Tuesday, the agent promised that a technician would come on "
    "Thursday morning between eight and twelve, but nobody came, nobody called, and now the "
    "website says that my appointment was cancelled.",
    "cs": "Minulý týden jsme si objednali novou pračku, ale dodnes nepřišla, na zákaznické "
    "lince nikdo nebere telefon a na webu se stále píše, že zásilka je na cestě.",
    "fi": "Soitin viime tiistaina asiakaspalveluun, ja minulle luvattiin, että asentaja tulee "
    "torstaiaamuna kahdeksan ja kahdentoista välillä, mutta kukaan ei tullut eikä kukaan "
    "soittanut.",
    "it": "Martedì scorso ho chiamato il servizio clienti e mi hanno promesso che un tecnico "
    "sarebbe passato giovedì mattina tra le otto e mezzogiorno, ma non è venuto nessuno e "
    "nessuno mi ha avvisato.",
    "ca": "Dimarts passat vaig trucar al servei d'atenció al client i em van prometre que un "
    "tècnic vindria dijous al matí entre les vuit i les dotze, però no va venir ningú i "
    "ningú no em va avisar.",
    "ru": "В прошлый вторник я позвонил в службу поддержки, и мне пообещали, что мастер "
    "придёт в четверг утром между восемью и двенадцатью часами, но никто не пришёл и никто "
    "не позвонил.",
}
# A middle sentence (~3.5 s of real speech): these voices speak slower than espeak-ng at its
# corpus speeds, so the others leave a gap (1.8 to 5.2 s in Italian) where 22.05 and 24 kHz
# fall outside 2-5 s as labelled.
MIDDLE = {
    "en": "The delivery was supposed to arrive yesterday afternoon.",
    "cs": "Zásilka měla přijít už včera odpoledne.",
    "fi": "Paketin piti tulla jo eilen iltapäivällä.",
    "it": "Il pacco doveva arrivare ieri pomeriggio.",
    "ca": "El paquet havia d'arribar ahir a la tarda.",
    "ru": "Посылка должна была прийти вчера днём.",
}
# the other corpora's sentences where the language is there (imported, not copied; short to
# long), the middle and the longest above
REAL_TEXTS: dict[str, tuple[str, ...]] = {
    "en": (*TEXTS["en"][0], MIDDLE["en"], LONGEST["en"]),
    "cs": (*FINAL_TEXTS["cs"], MIDDLE["cs"], LONGEST["cs"]),
    "fi": (*STRESS_TEXTS["fi"], MIDDLE["fi"], LONGEST["fi"]),
    "it": (*TEXTS["it"][0], MIDDLE["it"], LONGEST["it"]),
    "ca": (*STRESS_TEXTS["ca"], MIDDLE["ca"], LONGEST["ca"]),
    "ru": (*RU_TEXTS, MIDDLE["ru"], LONGEST["ru"]),
}


def missing_tools() -> list[str]:
    """Festival and Flite, as far as their commands go (a missing voice fails on use)."""
    return [t for t in TOOLS if shutil.which(t) is None]


def cache_dir() -> Path:
    d = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "agent-doctor" / "real-voices")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only or absent HOME
        d = Path(tempfile.gettempdir()) / "agent-doctor-real-voices"
    return d


def _key(voice: str, text: str) -> Path:
    digest = hashlib.sha1(f"{voice}\0{text}\0v2".encode()).hexdigest()[:16]
    return cache_dir() / f"{voice}-{digest}.wav"


def _tmp(voice: str, text: str) -> Path:
    """Where a synthesis is written before it is moved into the cache (per process: two
    test workers may say the same sentence at once)."""
    return _key(voice, text).with_suffix(f".{os.getpid()}.tmp.wav")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _synth_festival(voice: Voice, texts: list[str]) -> None:
    """One festival run per voice for every text not cached yet (start-up is most of it)."""
    lines = [f"({voice.name})"]
    for text in texts:
        lines.append(
            f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(text)})) "
            f'"{_tmp(voice.name, text).name}" \'riff)'
        )
    with tempfile.TemporaryDirectory() as d:
        scm = Path(d) / "say.scm"
        scm.write_bytes("\n".join(lines).encode(ENCODING.get(voice.lang, "utf-8")))
        subprocess.run(
            ["festival", "-b", str(scm)],
            capture_output=True,
            timeout=300,
            check=True,
            cwd=cache_dir(),
        )


def _synth_flite(voice: Voice, text: str) -> None:
    out = _tmp(voice.name, text)
    name = voice.name.removeprefix("flite_")
    subprocess.run(
        ["flite", "-voice", name, "-t", text, "-o", str(out)],
        capture_output=True,
        timeout=120,
        check=True,
    )


def said(voice: Voice) -> list[tuple[str, Array, int]]:
    """(text, float mono, native rate) for each of the voice's language's texts, cached."""
    import soundfile as sf

    texts = REAL_TEXTS[voice.lang]
    cache_dir().mkdir(parents=True, exist_ok=True)
    todo = [t for t in texts if not _key(voice.name, t).exists()]
    if todo:
        if voice.name.startswith("flite_"):
            for text in todo:
                _synth_flite(voice, text)
        else:
            _synth_festival(voice, todo)
        for text in todo:
            tmp = _tmp(voice.name, text)
            if not tmp.exists():
                raise RuntimeError(f"{voice.name} said nothing for {text[:30]!r} (voice missing?)")
            tmp.replace(_key(voice.name, text))
    out = []
    for text in texts:
        x, sr = sf.read(_key(voice.name, text), dtype="float64", always_2d=True)
        out.append((text, _trim(x[:, 0], sr), int(sr)))
    return out


def _trim(x: Array, sr: int) -> Array:
    """Keep 50 ms around the speech (as a cut sample would), peak at 0.5."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x
    x = x / peak * 0.5
    loud = np.flatnonzero(np.abs(x) > 0.01)
    pad = int(0.05 * sr)
    return x[max(0, loud[0] - pad) : loud[-1] + pad]


def sentences(
    voices: tuple[Voice, ...] = VOICES, rates: tuple[int, ...] = TRUE_RATES_HZ
) -> Iterator[tuple[Voice, Sentence]]:
    """Per voice and true rate, the text nearest 3.5 s as labelled, at that rate."""
    for voice in voices:
        spoken = said(voice)
        for r in rates:

            def off(item: tuple[str, Array, int], r: int = r) -> float:
                return abs(len(item[1]) / item[2] * r / LABEL_HZ - 3.5)

            text, x, sr = min(spoken, key=off)
            yield voice, Sentence(f"{voice.name} {r} Hz: {text[:30]!r}", r, resample(x, sr, r))
