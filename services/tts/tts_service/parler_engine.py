"""Parler-TTS backend: a voice described in words (``instructions``), torch, streamed while it is generated.

Model (``TTS_PARLER_MODEL``): a Hugging Face repo id, default ``parler-tts/parler-tts-mini-v1.1``, downloaded once
into ``<cache_dir>/huggingface`` (or the hub's own cache when ``HF_HOME`` / ``HF_HUB_CACHE`` is set) and loaded
from that snapshot afterwards without touching the network; or a local directory written by ``save_pretrained``.
Two tokenizers, as Parler's README loads them: the text to speak goes through the model's own tokenizer (the
"prompt"); the voice description goes through the text encoder's (``config.text_encoder._name_or_path``:
google/flan-t5-large for mini-v1.1, whose prompt tokenizer differs; the same one for mini/large v1).
Device (``TTS_PARLER_DEVICE``): the GPU in float16 when torch sees one, else the CPU in float32.

Voices: six of the speakers the v1 models were trained on and keep most consistent (Jon, Lea, Gary, Jenna,
Mike, Laura), each a fixed description naming the speaker; OpenAI's voice names map to them. ``instructions``
replace the description outright. Output: float32 mono at the codec's rate (44 100 Hz for DAC models).

Threading. The service calls every engine method from its one ModelWorker thread. ``ParlerTTSStreamer`` only
yields audio while ``generate`` runs in another thread (``generate`` blocks until the sentence is finished, and
the streamer is the queue it fills on the way), so ``synthesize`` starts ``generate`` in a helper thread owned by
this engine and reads the streamer on the worker thread. The model is still never used by two threads at once:
the worker thread does nothing but wait on the streamer's queue while the helper runs, and ``synthesize`` never
moves on (next sentence, return, or close when the client went away) before the helper has finished; closing it
early stops ``generate`` at its next step through a stopping criterion. Codec decoding happens inside
``generate`` (the streamer decodes on ``put``), i.e. in the helper thread too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from parler_tts import ParlerTTSForConditionalGeneration, ParlerTTSStreamer
from transformers import AutoTokenizer, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from service_common.health import Readiness
from service_common.hub import fetch_snapshot, hub_cache_dir

from .engine import VoiceInfo
from .sentences import split_for_speech

if TYPE_CHECKING:
    from .config import Settings

logger = logging.getLogger(__name__)

ENGINE_NAME = "parler"
LANGUAGE = "en"  # the released Parler-TTS models are English-only
WARM_UP_TEXT = "Hello, this is a warm-up."
DEFAULT_CHUNK_S = 0.5
DEFAULT_MAX_NEW_TOKENS = 2580  # the released models' generation_config max_length: 30 s at 86 frames/s
DEFAULT_MAX_SENTENCE_CHARS = 300
# Only the tokenizer of a description model is needed; its encoder weights are already inside the Parler model.
TOKENIZER_FILES = ["*token*", "*.model", "*.txt"]
HUB_FORMATS_NOT_USED = ["*.msgpack", "*.h5", "*.ot", "*.onnx", "*.tflite", "*.gguf"]


@dataclass(frozen=True)
class ParlerSpeaker:
    """A named speaker the Parler v1 models know, with the description that asks for them."""

    id: str
    name: str
    gender: str
    description: str


# Parler's model card: naming one of its training speakers keeps the voice consistent across generations; these six
# are the ones it lists as the most consistent. The wording follows the annotations the models were trained on.
SPEAKERS: tuple[ParlerSpeaker, ...] = (
    ParlerSpeaker(
        "jon",
        "Jon",
        "male",
        "Jon's voice is monotone yet slightly fast in delivery, with a very close recording that almost has no "
        "background noise.",
    ),
    ParlerSpeaker(
        "lea",
        "Lea",
        "female",
        "Lea speaks with a slightly expressive and animated voice at a moderate speed and pitch. The recording is of "
        "very high quality, with her voice sounding clear and very close up.",
    ),
    ParlerSpeaker(
        "gary",
        "Gary",
        "male",
        "Gary speaks in a calm, slightly low-pitched voice at a moderate pace, in a very clear and close recording "
        "with no background noise.",
    ),
    ParlerSpeaker(
        "jenna",
        "Jenna",
        "female",
        "Jenna delivers her words expressively and quite fast, with a clear, close-sounding recording that has almost "
        "no background noise.",
    ),
    ParlerSpeaker(
        "mike",
        "Mike",
        "male",
        "Mike speaks slowly and clearly in a moderately low-pitched voice, in a very high quality recording with no "
        "background noise.",
    ),
    ParlerSpeaker(
        "laura",
        "Laura",
        "female",
        "Laura's voice is warm and slightly high-pitched, speaking at a moderate pace in a very clear recording "
        "with almost no background noise.",
    ),
)

DEFAULT_SPEAKER = "jon"

OPENAI_VOICE_SPEAKERS: dict[str, str | None] = {
    "alloy": None,  # OpenAI's default name speaks with the configured default speaker (TTS_PARLER_VOICE)
    "ash": "jon",
    "ballad": "mike",
    "coral": "jenna",
    "echo": "gary",
    "fable": "mike",
    "onyx": "gary",
    "nova": "laura",
    "sage": "lea",
    "shimmer": "jenna",
    "verse": "jon",
    "marin": "lea",
    "cedar": "gary",
}
"""OpenAI voice name -> Parler speaker id (None: the default speaker); by rough likeness (gender, pitch, pace)."""


def pace_phrase(speed: float) -> str:
    """A sentence asking for ``speed`` (1.0 = natural) in the words of Parler's training descriptions; "" at ~1.0.

    Parler has no duration control: the pace is part of the description, so ``speed`` is a hint, not a factor.
    """
    if speed >= 1.6:
        return "The speaker talks very fast."
    if speed >= 1.15:
        return "The speaker talks fast."
    if speed <= 0.6:
        return "The speaker talks very slowly."
    if speed <= 0.87:
        return "The speaker talks slowly."
    return ""


def model_files_present(snapshot: Path) -> bool:
    """config.json and the weights, every shard an index names: an interrupted first download leaves some out."""
    if not (snapshot / "config.json").is_file():
        return False
    for index in snapshot.glob("*.index.json"):
        shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        if not all((snapshot / shard).is_file() for shard in shards):
            return False
    return any(snapshot.glob("*.safetensors")) or any(snapshot.glob("*.bin"))


def tokenizer_files_present(snapshot: Path) -> bool:
    """At least one tokenizer file (tokenizer.json, tokenizer_config.json, ...)."""
    return any(snapshot.glob("*token*"))


def resolve_pretrained(
    name: str,
    cache_dir: Path | None,
    *,
    what: str,
    allow_patterns: list[str] | None = None,
    complete: Callable[[Path], bool] = model_files_present,
    readiness: Readiness | None = None,
) -> tuple[Path, bool]:
    """The local directory holding ``name``, and whether it came from the hub.

    ``name`` is an existing directory (used as is) or a hub repo id: its cached snapshot when that is ``complete``
    (no network call at all), else downloaded into ``cache_dir`` (None: the hub's default cache), fetching what an
    interrupted download left out and reporting its progress to ``readiness`` (``service_common.hub.fetch_snapshot``).
    Raises FileNotFoundError for a path that does not exist and HubDownloadError (a RuntimeError), naming ``what``,
    when a repo cannot be had (offline, unknown repo).
    """
    local = Path(name).expanduser()
    if local.is_dir():
        return local, False
    if name.startswith(("/", "./", "../", "~")):
        raise FileNotFoundError(f"{what} {name!r} is not a directory")
    snapshot = fetch_snapshot(
        name,
        cache_dir=cache_dir,
        what=what,
        allow_patterns=allow_patterns,
        ignore_patterns=HUB_FORMATS_NOT_USED if allow_patterns is None else None,
        complete=complete,
        readiness=readiness,
    )
    return snapshot, True


def resolve_device(setting: str) -> tuple[torch.device, torch.dtype]:
    """``auto``: the GPU in float16 when torch sees one, else the CPU in float32. ``cuda`` without one: ValueError."""
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("TTS_PARLER_DEVICE=cuda, but torch sees no CUDA device (use auto or cpu)")
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


class _StopWhenSet(StoppingCriteria):
    """Ends ``generate`` at its next step once ``event`` is set (the client went away)."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        stop = torch.full((input_ids.shape[0],), self._event.is_set(), dtype=torch.bool, device=input_ids.device)
        return stop  # type: ignore[return-value,unused-ignore]  # torch types it only where torch is installed


class ParlerSynthesizer:
    """A Parler-TTS model behind the ``Synthesizer`` protocol; construct with ``load`` or ``from_settings``.

    Not thread-safe: call it from one thread (see the module docstring for the helper thread it starts itself).
    """

    def __init__(
        self,
        model: ParlerTTSForConditionalGeneration,
        prompt_tokenizer: PreTrainedTokenizerBase,
        description_tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        owned_by: str,
        default_voice: str = DEFAULT_SPEAKER,
        chunk_s: float = DEFAULT_CHUNK_S,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
    ) -> None:
        _check_speaker(default_voice)
        self._speakers = {speaker.id: speaker for speaker in SPEAKERS}
        self._model = model
        self._prompt_tokenizer = prompt_tokenizer
        self._description_tokenizer = description_tokenizer
        self.model_id = model_id
        self.owned_by = owned_by
        self.device = str(model.device)  # where the model was moved: cpu, cuda:0
        self.default_voice = default_voice
        self.max_new_tokens = max_new_tokens
        self.max_sentence_chars = max_sentence_chars
        self._num_codebooks = int(model.decoder.num_codebooks)
        self.frame_rate_hz = int(model.audio_encoder.config.frame_rate)
        # The streamer's overlap window is hop * (play_steps - num_codebooks) // 6 samples and must not be 0: a
        # zero stride makes it slice [n:-0], i.e. drop every chunk.
        self.play_steps = max(round(chunk_s * self.frame_rate_hz), self._num_codebooks + 1)

    @classmethod
    def from_settings(cls, settings: Settings, readiness: Readiness | None = None) -> ParlerSynthesizer:
        """Load ``TTS_PARLER_MODEL`` on ``TTS_PARLER_DEVICE`` with the ``TTS_PARLER_*`` streaming settings.

        A hub repo is downloaded once first, reporting its progress to ``readiness``.
        """
        return cls.load(
            settings.parler_model,
            cache_dir=hub_cache_dir(settings.cache_dir),
            readiness=readiness,
            device=settings.parler_device,
            description_tokenizer=settings.parler_description_tokenizer,
            default_voice=settings.parler_voice,
            chunk_s=settings.parler_chunk_s,
            max_new_tokens=settings.parler_max_new_tokens,
            max_sentence_chars=settings.max_sentence_chars,
        )

    @classmethod
    def load(
        cls,
        model: str,
        *,
        cache_dir: Path | None,
        device: str = "auto",
        description_tokenizer: str | None = None,
        readiness: Readiness | None = None,
        **options: Any,
    ) -> ParlerSynthesizer:
        """Load ``model`` (repo id or directory, see ``resolve_pretrained``) and its two tokenizers.

        Blocking: seconds for mini (3.5 GB of float32 weights read; a first hub download takes minutes).
        Raises FileNotFoundError / RuntimeError / ValueError with the reason (missing model, offline, bad device).
        """
        started = time.perf_counter()
        _check_speaker(options.get("default_voice", DEFAULT_SPEAKER))  # before minutes of loading, not after
        torch_device, dtype = resolve_device(device)
        # parler_tts logs its three sub-configs in full (~200 lines) at warning level on every load, and warns on
        # every first generate that it builds the decoder's attention mask itself, which is what it should do
        logging.getLogger("parler_tts").setLevel(logging.ERROR)
        model_dir, from_hub = resolve_pretrained(model, cache_dir, what="TTS_PARLER_MODEL", readiness=readiness)
        parler = ParlerTTSForConditionalGeneration.from_pretrained(model_dir, torch_dtype=dtype)
        parler = parler.to(torch_device).eval()
        prompt_tokenizer = AutoTokenizer.from_pretrained(model_dir)
        description_name = description_tokenizer or getattr(parler.config.text_encoder, "_name_or_path", "") or ""
        if description_name and description_name not in (model, str(model_dir)):
            description_dir, _ = resolve_pretrained(
                description_name,
                cache_dir,
                what="description tokenizer",
                allow_patterns=TOKENIZER_FILES,
                complete=tokenizer_files_present,
                readiness=readiness,
            )
            description = AutoTokenizer.from_pretrained(description_dir)
        else:
            description_name, description = "(the model's own)", prompt_tokenizer
        owned_by = model.split("/", 1)[0] if from_hub else "local"  # the hub organisation, e.g. parler-tts
        synthesizer = cls(parler, prompt_tokenizer, description, model_id=model, owned_by=owned_by, **options)
        logger.info(
            "loaded Parler-TTS %s from %s on %s (%s, %.0f M parameters, %d Hz, %d codebooks, chunks of %d frames); "
            "description tokenizer %s; in %.2f s",
            model,
            model_dir,
            torch_device,
            str(dtype).removeprefix("torch."),
            sum(parameter.numel() for parameter in parler.parameters()) / 1e6,
            synthesizer.sample_rate_hz,
            synthesizer._num_codebooks,
            synthesizer.play_steps,
            description_name,
            time.perf_counter() - started,
        )
        return synthesizer

    @property
    def sample_rate_hz(self) -> int:
        return int(self._model.config.sampling_rate)

    def voices(self) -> list[VoiceInfo]:
        ordered = [self._speakers[self.default_voice], *(s for s in SPEAKERS if s.id != self.default_voice)]
        return [
            VoiceInfo(
                id=speaker.id,
                name=f"{speaker.name} ({speaker.gender}, Parler-TTS speaker)",
                language=LANGUAGE,
                sample_rate_hz=self.sample_rate_hz,
                engine=ENGINE_NAME,
            )
            for speaker in ordered
        ]

    def voice_aliases(self) -> dict[str, str]:
        """OpenAI voice name -> speaker id (``OPENAI_VOICE_SPEAKERS``; alloy -> the default speaker)."""
        return {name: speaker or self.default_voice for name, speaker in OPENAI_VOICE_SPEAKERS.items()}

    def description(self, voice: str, instructions: str | None = None, speed: float = 1.0) -> str:
        """The description prompt: ``instructions`` when given (they win over ``voice``), else the speaker's.

        A pace sentence is appended when ``speed`` is clearly off 1.0 (see ``pace_phrase``). ValueError for an
        unknown ``voice``, even when ``instructions`` would replace it (a typo should not pass silently).
        """
        try:
            speaker = self._speakers[voice]
        except KeyError as err:
            raise ValueError(f"unknown voice {voice!r}; known: {sorted(self._speakers)}") from err
        base = instructions.strip() if instructions and instructions.strip() else speaker.description
        return f"{base} {pace_phrase(speed)}".strip()

    def _inputs(self, text: str, description: str) -> dict[str, torch.Tensor]:
        device = self._model.device
        described = self._description_tokenizer(description, return_tensors="pt")
        prompt = self._prompt_tokenizer(text, return_tensors="pt")
        return {
            "input_ids": described.input_ids.to(device),
            "attention_mask": described.attention_mask.to(device),
            "prompt_input_ids": prompt.input_ids.to(device),
            "prompt_attention_mask": prompt.attention_mask.to(device),
            "max_new_tokens": self.max_new_tokens,
        }

    def synthesize(
        self, text: str, *, voice: str, speed: float = 1.0, instructions: str | None = None
    ) -> Iterator[np.ndarray]:
        """Speak ``text`` sentence by sentence, each streamed in chunks of about ``TTS_PARLER_CHUNK_S`` seconds.

        Yields float32 mono arrays in [-1, 1] at ``sample_rate_hz``; the first chunk of a sentence exists after
        ``play_steps`` generation steps. ``instructions`` replace the voice's description; ``speed`` adds a pace
        hint to it. ValueError for an unknown voice (before any generation). Closing the iterator stops generation
        at its next step.
        """
        description = self.description(voice, instructions, speed)
        for sentence in split_for_speech(text, self.max_sentence_chars):
            # Parler would still "say" a piece with no word in it ("...") as a second of breath or noise
            if any(character.isalnum() for character in sentence):
                yield from self._stream_sentence(sentence, description)

    def _stream_sentence(self, sentence: str, description: str) -> Iterator[np.ndarray]:
        inputs = self._inputs(sentence, description)
        streamer = ParlerTTSStreamer(self._model, play_steps=self.play_steps)
        stop = threading.Event()
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(
                        **inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopWhenSet(stop)])
                    )
            except BaseException as err:  # noqa: BLE001 - re-raised on the reading thread
                failure.append(err)
                # end the reader's wait: the streamer only sends its stop signal when generate ends normally
                streamer.on_finalized_audio(np.zeros(0, dtype=np.float32), stream_end=True)

        helper = threading.Thread(target=generate, name="parler-generate", daemon=True)
        helper.start()
        finished = False
        try:
            for chunk in streamer:
                samples = _to_samples(chunk)
                if samples.size:
                    yield samples
            finished = True
        finally:
            stop.set()
            helper.join()
            if not finished:
                steps = streamer.token_cache.shape[-1] if streamer.token_cache is not None else 0
                logger.info("Parler generation stopped early, after %d of at most %d steps", steps, self.max_new_tokens)
        if failure:
            raise failure[0]

    def warm_up(self) -> None:
        """One streamed sentence (first CUDA kernels, allocator, the helper thread path) with the default voice."""
        started = time.perf_counter()
        chunks = list(self.synthesize(WARM_UP_TEXT, voice=self.default_voice))
        elapsed = time.perf_counter() - started
        duration_s = sum(chunk.size for chunk in chunks) / self.sample_rate_hz
        logger.info(
            "warm-up of Parler-TTS: %.2f s of audio in %d chunks in %.3f s (real-time factor %.3f)",
            duration_s,
            len(chunks),
            elapsed,
            elapsed / duration_s if duration_s else float("nan"),
        )


def _check_speaker(voice: str) -> None:
    known = [speaker.id for speaker in SPEAKERS]
    if voice not in known:
        raise ValueError(f"TTS_PARLER_VOICE={voice!r} is not a Parler speaker; known: {known}")


def _to_samples(audio: np.ndarray) -> np.ndarray:
    """1-D float32 in [-1, 1]; non-finite values (float16 overflow) become silence rather than noise bursts."""
    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(samples, -1.0, 1.0)
