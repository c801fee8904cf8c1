"""A tiny, randomly initialised Parler-TTS model built in-test, laid out like a real one (no hub, no download).

Same architecture and files as parler-tts/parler-tts-mini-v1.1, only small: a 1-layer T5 text encoder (d_model
32), a 2-layer Parler decoder over 9 codebooks of the DAC 44.1 kHz codec (1024 codes + eos = 1025 logits, bos
1025), and the codec itself (its convolution stack is fixed by the DAC wrapper: ~60 M parameters, 250 MB).
Like mini-v1.1, the text to speak and the voice description use different tokenizers: each is a SentencePiece
model trained here on a few lines, and the description tokenizer (the text encoder's, smaller) sits in its own
directory that the model's config names as ``text_encoder._name_or_path``. Mixing the two up would overflow the
smaller embedding table, so the tests also check that each input goes through its own tokenizer.
Random weights make noise: speech content is never asserted.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_RATE_HZ = 44_100
FRAME_RATE_HZ = 86
NUM_CODEBOOKS = 9
CODEBOOK_SIZE = 1024
MIN_NEW_TOKENS = 24  # so the random decoder cannot end a sentence before it made any audio frame

_CORPUS = [
    "Jon's voice is monotone yet slightly fast in delivery, with a very close recording.",
    "A female speaker delivers a slightly expressive and animated speech with a moderate speed and pitch.",
    "The recording is of very high quality, with the speaker's voice sounding clear and very close up.",
    "Hello there! How can I help you today? One, two, three, four, five, six, seven, eight, nine, ten.",
    "The quick brown fox jumps over the lazy dog while the weather stays calm and warm.",
    "Please speak slowly and softly, in a quiet room with almost no background noise.",
]


def _train_tokenizer(directory: Path, vocab_size: int, lines: list[str]):  # -> T5TokenizerFast
    import sentencepiece as spm
    from transformers import T5TokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(directory / "spiece"),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,  # T5's special ids: pad 0, eos 1, unk 2, no bos
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        minloglevel=2,
    )
    (directory / "spiece.vocab").unlink()  # the trainer's by-product; real checkpoints ship spiece.model only
    tokenizer = T5TokenizerFast(vocab_file=str(directory / "spiece.model"), extra_ids=0)
    tokenizer.save_pretrained(directory)
    return tokenizer


def build_tiny_parler(root: Path) -> Path:
    """Write the tiny model to ``root/model`` (its description tokenizer to ``root/description-tokenizer``).

    Returns the model directory, loadable with ``ParlerTTSForConditionalGeneration.from_pretrained``.
    """
    import torch
    from parler_tts import DACConfig, ParlerTTSConfig, ParlerTTSDecoderConfig, ParlerTTSForConditionalGeneration
    from transformers import GenerationConfig, T5Config

    model_dir, description_dir = root / "model", root / "description-tokenizer"
    description_tokenizer = _train_tokenizer(description_dir, 48, _CORPUS[:3])
    prompt_tokenizer = _train_tokenizer(model_dir, 160, _CORPUS * 4)
    assert len(prompt_tokenizer) > len(description_tokenizer) + 20, "the two vocabularies must differ"

    text_encoder = T5Config(
        vocab_size=len(description_tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4
    )
    text_encoder._name_or_path = str(description_dir)
    audio_encoder = DACConfig(
        num_codebooks=NUM_CODEBOOKS,
        codebook_size=CODEBOOK_SIZE,
        latent_dim=64,
        frame_rate=FRAME_RATE_HZ,
        sampling_rate=SAMPLE_RATE_HZ,
    )
    special = {"pad_token_id": CODEBOOK_SIZE, "eos_token_id": CODEBOOK_SIZE, "bos_token_id": CODEBOOK_SIZE + 1}
    decoder = ParlerTTSDecoderConfig(
        vocab_size=CODEBOOK_SIZE + 1,
        max_position_embeddings=1024,
        num_hidden_layers=2,
        ffn_dim=64,
        num_attention_heads=4,
        hidden_size=32,
        num_codebooks=NUM_CODEBOOKS,
        decoder_start_token_id=CODEBOOK_SIZE + 1,
        **special,
    )
    config = ParlerTTSConfig.from_sub_models_config(
        text_encoder,
        audio_encoder,
        decoder,
        vocab_size=len(prompt_tokenizer),  # the prompt embedding table
        pad_token_id=CODEBOOK_SIZE,
        decoder_start_token_id=CODEBOOK_SIZE + 1,
    )
    torch.manual_seed(0)
    model = ParlerTTSForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=CODEBOOK_SIZE + 1,
        do_sample=True,
        max_length=2580,
        min_new_tokens=MIN_NEW_TOKENS,
        **special,
    )
    model.save_pretrained(model_dir)
    return model_dir
