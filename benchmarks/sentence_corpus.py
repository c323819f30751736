"""Single spoken sentences (2-5 s as labelled) at a known true rate, in dev and held-out sets.

What users paste into validate-audio is often one sentence. For each voice and true rate R,
the sentence whose duration *as labelled at 24 kHz* (its real duration x R / 24000) is
closest to 3.5 s within 2-5 s is used: a short sentence for 44.1/48 kHz (read 2x slower),
a long one for 8 kHz (read 3x faster). espeak-ng voices in six languages, male and female
variants, pitch (-p) and speed (-s) varied. The dev and held-out sets share no voice
variant, no pitch/speed pair and no text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "audio_format"))

from audio_format_signals import espeak, espeak_available, resample  # noqa: E402

Array = NDArray[np.float64]
LABEL_HZ = 24000
TRUE_RATES_HZ = (8000, 16000, 22050, 24000, 44100, 48000)
LABELLED_S = (2.0, 5.0)

# per language: sentences from short to long (dev, held-out)
TEXTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        (
            "Hello, can you hear me?",
            "I would like to check the status of my order.",
            "I ordered a pair of shoes last week, and the tracking page still says that the "
            "parcel is waiting at the warehouse.",
            "My internet connection keeps dropping every evening, usually around eight "
            "o'clock, and it only comes back after I restart the router twice.",
        ),
        (
            "Yes, that is right.",
            "Could you send me the invoice again, please?",
            "The technician was supposed to arrive this morning, but nobody came and "
            "nobody called to tell me why.",
            "We are planning a trip to the mountains in July, and I would like to know "
            "whether the cabin near the lake is still available for two weeks.",
        ),
    ),
    "de": (
        (
            "Guten Morgen, wie geht es?",
            "Ich möchte meinen Termin verschieben.",
            "Meine Rechnung für den letzten Monat ist viel höher als sonst, und ich verstehe "
            "nicht, woher die Kosten kommen.",
            "Wir haben das Paket am Montag bestellt, aber bis heute ist nichts angekommen, "
            "und die Sendungsverfolgung zeigt seit Tagen denselben Status.",
        ),
        (
            "Ja, das stimmt.",
            "Können Sie mir bitte die Nummer geben?",
            "Der Zug nach München hatte heute früh eine Stunde Verspätung, deshalb habe ich "
            "meinen Anschluss verpasst.",
            "Ich rufe an, weil meine Heizung seit gestern Abend nicht mehr funktioniert und "
            "es in der Wohnung langsam wirklich kalt wird.",
        ),
    ),
    "fr": (
        (
            "Bonjour, vous m'entendez?",
            "Je voudrais changer mon rendez-vous.",
            "J'ai reçu un message qui dit que mon colis est livré, mais il n'y a rien devant "
            "ma porte.",
            "Nous avons réservé une chambre pour trois nuits au mois d'août, et je voudrais "
            "savoir si le petit déjeuner est compris dans le prix.",
        ),
        (
            "Oui, c'est exact.",
            "Pouvez-vous répéter le numéro, s'il vous plaît?",
            "Ma carte bancaire a été refusée ce matin au supermarché alors que mon compte "
            "est largement approvisionné.",
            "Le médecin m'a conseillé de prendre un rendez-vous de contrôle dans deux "
            "semaines, de préférence en fin de matinée si c'est possible.",
        ),
    ),
    "es": (
        (
            "Hola, ¿me escucha?",
            "Quiero cancelar mi suscripción.",
            "Compré unos auriculares la semana pasada y el sonido del lado izquierdo dejó de "
            "funcionar ayer.",
            "Estamos organizando una reunión familiar para el próximo sábado y necesitamos "
            "una mesa grande para doce personas cerca de la ventana.",
        ),
        (
            "Sí, claro.",
            "¿Me puede dar el número de referencia?",
            "El vuelo de esta tarde se retrasó tres horas y perdí la conexión para volver "
            "a casa.",
            "Llamo porque la lavadora que instalaron el martes hace un ruido muy fuerte "
            "durante el centrifugado y a veces se detiene sola.",
        ),
    ),
    "it": (
        (
            "Buongiorno, mi sente?",
            "Vorrei parlare con un operatore.",
            "Ho pagato la bolletta due settimane fa, ma oggi ho ricevuto un sollecito di "
            "pagamento.",
            "La settimana prossima dobbiamo traslocare e vorrei sapere se è possibile "
            "spostare il contratto della luce al nuovo indirizzo.",
        ),
        (
            "Sì, va bene.",
            "Mi può mandare una conferma per email?",
            "Il pacco che aspettavo è arrivato aperto e mancano due dei tre articoli che "
            "avevo ordinato.",
            "Mio figlio ha la febbre da due giorni e vorrei prenotare una visita dal "
            "pediatra per domani pomeriggio, se c'è ancora posto.",
        ),
    ),
    "pt": (
        (
            "Olá, está me ouvindo?",
            "Preciso de ajuda com a minha conta.",
            "Fiz uma transferência ontem à noite e o dinheiro ainda não apareceu na conta "
            "do meu irmão.",
            "Quero trocar o plano do meu telemóvel para um com mais dados, porque no fim "
            "de cada mês fico sempre sem internet.",
        ),
        (
            "Sim, exatamente.",
            "Pode confirmar o horário da entrega?",
            "O aquecedor que comprei na loja do centro deixou de funcionar depois de apenas "
            "três dias.",
            "Gostaria de marcar uma mesa para o jantar de sexta-feira, para seis pessoas, "
            "de preferência na esplanada se o tempo estiver bom.",
        ),
    ),
}
# (espeak-ng voice, pitch 0-99, speed words/min)
DEV_VOICES = (
    ("en+m1", 40, 160),
    ("en+f2", 60, 170),
    ("en-us+m3", 30, 150),
    ("de+m2", 45, 165),
    ("de+f3", 70, 155),
    ("fr+m4", 35, 175),
    ("fr+f1", 55, 160),
    ("es+m5", 50, 185),
    ("es+f4", 75, 150),
    ("it+m6", 25, 140),
    ("it+f5", 65, 180),
    ("pt+m7", 42, 170),
)
HELDOUT_VOICES = (
    ("en+m4", 48, 175),
    ("en-us+f4", 68, 155),
    ("en+m6", 28, 145),
    ("de+m5", 38, 185),
    ("de+f1", 58, 165),
    ("fr+m2", 44, 150),
    ("fr+f3", 74, 170),
    ("es+m1", 33, 160),
    ("es+f5", 62, 190),
    ("it+m3", 52, 165),
    ("it+f2", 46, 150),
    ("pt+f4", 66, 160),
)
SPLITS = {"dev": (DEV_VOICES, 0), "heldout": (HELDOUT_VOICES, 1)}


@dataclass(frozen=True)
class Sentence:
    name: str
    true_rate_hz: int
    samples: Array  # as captured at the true rate, to be read as 24 kHz

    @property
    def labelled_s(self) -> float:
        return len(self.samples) / LABEL_HZ


def _trim(x: Array) -> Array:
    """espeak pads with silence; keep 50 ms around the speech, as a cut sample would."""
    loud = np.flatnonzero(np.abs(x) > 0.01)
    if not loud.size:
        return x
    pad = int(0.05 * 22050)
    return x[max(0, loud[0] - pad) : loud[-1] + pad]


def sentences(split: str, rates: tuple[int, ...] = TRUE_RATES_HZ) -> Iterator[Sentence]:
    voices, which = SPLITS[split]
    if not espeak_available():
        raise RuntimeError("espeak-ng is needed for the sentence corpus")
    for voice, pitch, speed in voices:
        lang = voice.split("+")[0].split("-")[0]
        said = []
        for text in TEXTS[lang][which]:
            x, sr = espeak(text, voice, pitch, speed)
            said.append((text, _trim(x), sr))
        for r in rates:
            # the sentence whose labelled duration is nearest 3.5 s (within 2-5 s if any)
            def labelled(item: tuple[str, Array, int], r: int = r) -> float:
                return len(item[1]) / item[2] * r / LABEL_HZ

            text, x, sr = min(said, key=lambda it: abs(labelled(it) - 3.5))
            y = resample(x, sr, r)
            yield Sentence(f"{voice} p{pitch} s{speed} {r} Hz: {text[:30]!r}", r, y)
