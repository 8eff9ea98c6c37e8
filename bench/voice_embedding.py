"""What the voice embedding costs: Whisper's encoder over 30 s windows, pooled to frames.

Speaks a few espeak-ng sentences, repeats them to clips of several lengths (speech all
through, so every 30 s window is encoded), and times
:func:`ahmer.preprocessing.voice.voice_embedding` with the store's Whisper tiny.en (int8) at
1 and 2 CPU threads (CTranslate2's ``cpu_threads``; the analyzer uses ``asr_threads``,
default 1). Prints seconds per clip and per audio-second (median of ``--repeat`` runs).

    .venv/bin/python bench/voice_embedding.py [--repeat 3] [--lengths 6,30,120]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SENTENCES = (
    "I guess maybe I could try, but I'm not sure, um, I don't know.",
    "I will definitely quit smoking next week.",
    "Part of me wants to exercise more, but it is hard to find the time.",
)


def speech(seconds: float) -> np.ndarray:
    from media import read_wav, speak
    from scipy.signal import resample_poly

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(SENTENCES):
            audio, rate = read_wav(speak(text, Path(tmp) / f"{i}.wav"))
            parts.append(resample_poly(audio[:, 0], 16000, rate).astype(np.float32))
    one = np.concatenate(parts)
    reps = int(np.ceil(seconds * 16000 / len(one)))
    return np.tile(one, reps)[: int(seconds * 16000)]


def main() -> None:
    from ahmer.models.contract import VOICE_EMBED_DIM
    from ahmer.models.store.model_store import ModelStore
    from ahmer.preprocessing.asr import Transcriber
    from ahmer.preprocessing.timeline import Segment
    from ahmer.preprocessing.voice import voice_embedding

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lengths", default="6,30,120", help="clip lengths in seconds")
    args = parser.parse_args()
    from bench_machine import BenchMachine  # the machine header of every bench

    machine = BenchMachine.start()
    lengths = [float(x) for x in args.lengths.split(",")]
    model = ModelStore().path("whisper_tiny_en")
    fps = 5.0
    print("threads  audio_s  s_per_clip  s_per_audio_s")
    for threads in (1, 2):
        asr = Transcriber(model, cpu_threads=threads).load()
        asr.encoder_width()  # the one-off width probe is not part of a clip's cost
        for seconds in lengths:
            audio = speech(seconds)
            times = np.arange(int(seconds * fps)) / fps
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                voice_embedding(asr, audio, times, fps, [Segment(0.0, seconds)], VOICE_EMBED_DIM)
                runs.append(time.perf_counter() - t)
            cost = statistics.median(runs)
            print(f"{threads:7d}  {seconds:7.0f}  {cost:10.3f}  {cost / seconds:13.4f}")
    machine.finish()


if __name__ == "__main__":
    main()
