"""Batched against sequential speech recognition: speed by stage, word error rate, word times.

``preprocessing/asr.py`` decodes speech one of two ways (``DECODINGS``): ``batched`` (the
default: speech chunks of up to 30 s, one encoder window each, decoded without timestamp
tokens, words timed by the alignment pass) and ``sequential`` (the path before: faster-whisper
seeking window by window with timestamp tokens). This script runs both on the same audio in
alternating rounds, on one loaded model (Whisper tiny.en int8 from the store, the pipeline's
1 CTranslate2 thread unless ``--threads``)::

    .venv/bin/python bench/asr_paths.py                     # 30 s bench clip + test sentences
    .venv/bin/python bench/asr_paths.py --rounds 5 --pipeline 3 --json out.json

Per decoding and media: wall and CPU seconds, and per CTranslate2 call (``encode``,
``generate``, ``align``) the calls, encoder windows and wall seconds; word error rate against
the sentences spoken (espeak-ng), and against each other; for words both paths found
(matched in order), the difference of their start and end times (median, 90th percentile,
max). ``--pipeline N`` also runs the whole preprocessing (``Analyzer.preprocess`` with
predict and postprocess) N rounds per decoding, alternating, and reports the stage timings
and how far the clip results moved (A/H probability per frame and per clip, labels).
Steal time and load are recorded per measurement (``bench_machine``).
"""

from __future__ import annotations

import argparse
import difflib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ahmer.models.contract import SAMPLE_RATE

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "tests"))
from analyze import bench_clip_text, make_bench_clip  # noqa: E402
from bench_machine import BenchMachine  # noqa: E402 (the machine header of every bench)

__all__ = ["main", "word_time_differences"]

SENTENCE_PADS = (0.3, 0.3)  # silence before and after each test sentence


class _Timed:
    """CTranslate2's Whisper with its ``encode``/``generate``/``align`` calls timed."""

    def __init__(self, model) -> None:
        self._model = model
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, dict[str, float]] = {}

    def __getattr__(self, name):
        attr = getattr(self._model, name)
        if name not in ("encode", "generate", "align"):
            return attr

        def timed(*args, **kwargs):
            t = time.perf_counter()
            out = attr(*args, **kwargs)
            row = self.calls.setdefault(name, {"calls": 0, "wall_s": 0.0, "windows": 0})
            row["calls"] += 1
            row["wall_s"] += time.perf_counter() - t
            if name == "encode":
                row["windows"] += int(args[0].shape[0])
            return out

        return timed


def _cpu_s() -> float:
    """CPU seconds of this process, all threads (CTranslate2 computes in its own)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _norm(text: str) -> str:
    return "".join(c.lower() if c.isalnum() or c in " '" else " " for c in text).strip()


def word_time_differences(a: list, b: list) -> dict:
    """Words of ``a`` and ``b`` (``Word`` lists) matched in order by their text; the start and
    end time differences of the matched pairs, in seconds."""
    ta = [_norm(w.text) for w in a]
    tb = [_norm(w.text) for w in b]
    starts, ends = [], []
    for block in difflib.SequenceMatcher(a=ta, b=tb, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            wa, wb = a[block.a + k], b[block.b + k]
            starts.append(abs(wa.start - wb.start))
            ends.append(abs(wa.end - wb.end))

    def stats(xs: list[float]) -> dict:
        if not xs:
            return {"median": None, "p90": None, "max": None}
        return {
            "median": float(np.median(xs)),
            "p90": float(np.percentile(xs, 90)),
            "max": float(max(xs)),
        }

    return {"matched": len(starts), "start": stats(starts), "end": stats(ends)}


def _media(tmp: Path, duration: float) -> list[tuple[str, np.ndarray, str]]:
    """(name, 16 kHz audio, reference text, when the reference ends or None) and the clip:
    the bench clip's audio as the pipeline decodes it, and each test sentence of
    ``tests/test_asr.py`` with a little silence around it."""
    from media import CONFIDENT, HEDGING, read_wav, speak
    from scipy.signal import resample_poly

    from ahmer.preprocessing.media import load_audio

    clip = make_bench_clip(tmp / "bench.mp4", duration=duration)
    text, end = bench_clip_text(clip)
    items = [(f"bench clip {duration:g} s", load_audio(clip), text, end)]
    sentences = {
        "hedging": HEDGING,
        "confident": CONFIDENT,
        "conflicted": "Part of me wants to stop, but honestly I really enjoy it.",
        "fillers": "Um, uh, I really don't know, um, what to say.",
    }
    for name, text in sentences.items():
        audio, rate = read_wav(speak(text, tmp / f"{name}.wav"))
        audio = resample_poly(audio[:, 0], 320, 441).astype(np.float32)  # 22.05 -> 16 kHz
        pad = [np.zeros(int(p * 16000), np.float32) for p in SENTENCE_PADS]
        items.append((name, np.concatenate([pad[0], audio, pad[1]]), text, None))
    return items, clip


def run_asr(transcriber, timed: _Timed, items, rounds: int, window: float = 0.0) -> dict:
    """Each decoding of :data:`DECODINGS` (and, with ``window``, the batched decoding with
    that encoder window, as ``"window"``) on every item, in alternating rounds."""
    from media import word_error_rate

    from ahmer.preprocessing.asr import DECODINGS, AsrOptions
    from ahmer.preprocessing.host import CpuMeter
    from ahmer.preprocessing.vad import run_vad

    speech = {name: run_vad(audio).segments for name, audio, _, _ in items}
    variants = {d: AsrOptions(language="en", decoding=d) for d in DECODINGS}
    if window:
        variants["window"] = AsrOptions(language="en", window_s=window)
    out: dict = {}
    for r in range(rounds):
        for decoding, options in variants.items():
            for name, audio, ref, ref_end in items:
                timed.reset()
                cpu = _cpu_s()
                with CpuMeter() as meter:
                    t = time.perf_counter()
                    got = transcriber.transcribe_window(audio, options, speech[name])
                    wall = time.perf_counter() - t
                row = out.setdefault(name, {}).setdefault(decoding, {"runs": []})
                row["runs"].append(
                    {
                        "wall_s": wall,
                        "cpu_s": _cpu_s() - cpu,
                        "calls": timed.calls,
                        "steal_pct": meter.usage.steal_pct,
                        "load": meter.usage.load_end,
                    }
                )
                # the words of sentences spoken whole (a clip may cut its last one)
                said = [w.text for w in got.words if ref_end is None or w.start < ref_end]
                row["wer"] = word_error_rate(ref, " ".join(said)) if ref else float("nan")
                row["words"] = got.words
        print(f"  ASR round {r + 1}/{rounds} done ({meter.usage.line()})", flush=True)

    def text(row: dict) -> str:
        return " ".join(w.text for w in row["words"])

    for by in out.values():
        new, old = by["batched"], by["sequential"]
        by["wer_between"] = word_error_rate(text(old), text(new))
        by["word_times"] = word_time_differences(old["words"], new["words"])
        if "window" in by:  # the short window against the 30 s one
            short = by["window"]
            by["window_wer_between"] = word_error_rate(text(new), text(short))
            by["window_word_times"] = word_time_differences(new["words"], short["words"])
            by["window_words"] = [text(new), text(short)]
        for row in [by[k] for k in variants]:
            row["n_words"] = len(row.pop("words"))
            runs = row["runs"]
            row["wall_s"] = statistics.median(x["wall_s"] for x in runs)
            row["cpu_s"] = statistics.median(x["cpu_s"] for x in runs)
            for call in ("encode", "generate", "align"):
                got = [x["calls"].get(call, {"wall_s": 0.0, "windows": 0}) for x in runs]
                row[f"{call}_s"] = statistics.median(g["wall_s"] for g in got)
                if call == "encode":
                    row["encoder_windows"] = got[0]["windows"]
        by["cpu_ratio"] = old["cpu_s"] / new["cpu_s"] if new["cpu_s"] else None
        by["cpu_ratio_rounds"] = [
            a["cpu_s"] / b["cpu_s"] for a, b in zip(old["runs"], new["runs"], strict=True)
        ]
        if "window" in by:
            by["window_cpu_ratio"] = new["cpu_s"] / by["window"]["cpu_s"]
    return out


def excerpts(audio: np.ndarray, count: int, seed: int = 0) -> list:
    """``count`` excerpts of 2-12 s from random places of ``audio`` (16 kHz): what a live
    pass decodes (a buffer of a few seconds, often cut in the middle of a word)."""
    rng = np.random.default_rng(seed)
    total = len(audio) / SAMPLE_RATE
    out = []
    for k in range(count):
        length = float(rng.uniform(2.0, 12.0))
        start = float(rng.uniform(0.0, max(0.0, total - length)))
        piece = audio[int(start * SAMPLE_RATE) : int((start + length) * SAMPLE_RATE)]
        out.append((f"excerpt {k} {start:.1f}+{length:.1f}s", piece, "", None))
    return out


def run_pipeline(analyzer, clip: Path, rounds: int) -> dict:
    from ahmer.preprocessing.asr import DECODINGS
    from ahmer.preprocessing.host import CpuMeter

    out: dict = {d: {"runs": []} for d in DECODINGS}
    results = {}
    for r in range(rounds):
        for decoding in DECODINGS:
            analyzer.transcriber.decoding = decoding
            with CpuMeter() as meter:
                cpu, t = _cpu_s(), time.perf_counter()
                tl = analyzer.preprocess(clip)
                pred = analyzer.predict(tl)
                result = analyzer.postprocess(tl, pred)
                wall = time.perf_counter() - t
            out[decoding]["runs"].append(
                {
                    "wall_s": wall,
                    "cpu_s": _cpu_s() - cpu,
                    "timings": {k: float(v) for k, v in result.timings.items()},
                    "steal_pct": meter.usage.steal_pct,
                    "load": meter.usage.load_end,
                }
            )
            results[decoding] = result
        print(f"  pipeline round {r + 1}/{rounds} done ({meter.usage.line()})", flush=True)
    analyzer.transcriber.decoding = "batched"
    for row in out.values():
        runs = row["runs"]
        row["wall_s"] = statistics.median(x["wall_s"] for x in runs)
        row["cpu_s"] = statistics.median(x["cpu_s"] for x in runs)
        keys = sorted({k for x in runs for k in x["timings"]})
        row["stages"] = {k: statistics.median(x["timings"].get(k, 0.0) for x in runs) for k in keys}
    duration = results["batched"].media.get("duration") or 0.0
    for row in out.values():
        row["rtf"] = duration / row["wall_s"] if duration else None
    new, old = results["batched"], results["sequential"]
    out["cpu_ratio_rounds"] = [
        a["cpu_s"] / b["cpu_s"]
        for a, b in zip(out["sequential"]["runs"], out["batched"]["runs"], strict=True)
    ]
    out["wall_ratio_rounds"] = [
        a["wall_s"] / b["wall_s"]
        for a, b in zip(out["sequential"]["runs"], out["batched"]["runs"], strict=True)
    ]
    probs = [
        abs(a.ah_probability - b.ah_probability)
        for a, b in zip(new.frames, old.frames, strict=True)
    ]
    out["results"] = {
        "clip_ah_probability": [old.clip.ah_probability, new.clip.ah_probability],
        "clip_ah_label_same": old.clip.ah_label == new.clip.ah_label,
        "frame_ah_probability_max_diff": max(probs) if probs else 0.0,
        "frame_ah_label_differs": sum(
            a.ah_label != b.ah_label for a, b in zip(new.frames, old.frames, strict=True)
        ),
        "frames": len(new.frames),
        "words": [len(old.transcript), len(new.transcript)],
    }
    return out


def print_report(doc: dict) -> None:
    print()
    print(f"ASR: batched against sequential  {doc['machine']['date_utc']}")
    print(f"threads {doc['threads']}, rounds {doc['rounds']} (medians; wall and CPU seconds)")
    head = f"  {'media':<18}{'decoding':<11}{'wall':>7}{'CPU':>7}{'enc win':>8}{'encode':>8}"
    print(head + f"{'generate':>9}{'align':>7}{'words':>6}{'WER':>6}")
    for name, by in doc["asr"].items():
        for decoding in ("sequential", "batched", "window"):
            if decoding not in by:  # "window": only with --window
                continue
            r = by[decoding]
            print(
                f"  {name:<18}{decoding:<11}{r['wall_s']:>7.2f}{r['cpu_s']:>7.2f}"
                f"{r['encoder_windows']:>8}{r['encode_s']:>8.2f}{r['generate_s']:>9.2f}"
                f"{r['align_s']:>7.2f}{r['n_words']:>6}{r['wer']:>6.2f}"
            )
        if "window" in by:
            ww = by["window_word_times"]
            print(
                f"    batched/window CPU {by['window_cpu_ratio']:.2f}x; WER between "
                f"{by['window_wer_between']:.3f}; start diff max "
                + ("n/a" if ww["start"]["max"] is None else f"{ww['start']['max']:.3f} s")
            )
        wt = by["word_times"]
        rounds = ", ".join(f"{x:.2f}" for x in by["cpu_ratio_rounds"])
        med = wt["start"]["median"]
        print(
            f"    sequential/batched CPU {by['cpu_ratio']:.2f}x (rounds {rounds}); WER between "
            f"{by['wer_between']:.3f}; {wt['matched']} words matched, start diff median "
            + (
                "n/a"
                if med is None
                else f"{med:.3f} s, p90 {wt['start']['p90']:.3f}, "
                f"max {wt['start']['max']:.3f}; end diff median {wt['end']['median']:.3f}, "
                f"max {wt['end']['max']:.3f}"
            )
        )
    pipe = doc.get("pipeline")
    if pipe:
        print()
        print("whole clip (preprocess + predict + postprocess), medians")
        keys = [
            k
            for k in ("decode", "faces", "audio_decode", "vad", "asr", "prosody", "emotion", "text")
            if k in pipe["batched"]["stages"]
        ]
        print(f"  {'decoding':<11}" + "".join(f"{k:>13}" for k in keys) + f"{'wall':>8}{'RTF':>7}")
        for decoding in ("sequential", "batched"):
            r = pipe[decoding]
            print(
                f"  {decoding:<11}"
                + "".join(f"{r['stages'][k]:>13.3f}" for k in keys)
                + f"{r['wall_s']:>8.2f}{r['rtf']:>7.1f}"
            )
        rounds = ", ".join(f"{x:.2f}" for x in pipe["wall_ratio_rounds"])
        res = pipe["results"]
        cpu = ", ".join(f"{x:.2f}" for x in pipe["cpu_ratio_rounds"])
        print(
            f"  CPU-s per clip: sequential {pipe['sequential']['cpu_s']:.2f}, batched "
            f"{pipe['batched']['cpu_s']:.2f}; sequential/batched CPU per round: {cpu}"
        )
        print(f"  sequential/batched wall per round: {rounds}")
        print(
            f"  results: clip A/H probability {res['clip_ah_probability'][0]:.4f} -> "
            f"{res['clip_ah_probability'][1]:.4f} (label same: {res['clip_ah_label_same']}), "
            f"frame A/H probability max diff {res['frame_ah_probability_max_diff']:.4f}, "
            f"frame labels differing {res['frame_ah_label_differs']}/{res['frames']}, "
            f"words {res['words'][0]} -> {res['words'][1]}"
        )
    print(
        f"  machine: {doc['machine']['host']['model']}, "
        f"{' '.join(doc['machine']['host']['flags'])}; {doc['machine_run']}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of ASR alone (3)")
    p.add_argument(
        "--pipeline",
        type=int,
        default=0,
        metavar="N",
        help="also N alternating rounds of the whole clip analysis (0)",
    )
    p.add_argument("--duration", type=float, default=30.0, help="bench clip length (30 s)")
    p.add_argument("--threads", type=int, default=1, help="CTranslate2 threads (1)")
    p.add_argument(
        "--window",
        type=float,
        default=0.0,
        metavar="S",
        help="also the batched decoding with an S-second encoder window (live passes: 15)",
    )
    p.add_argument(
        "--excerpts",
        type=int,
        default=0,
        metavar="N",
        help="also N excerpts of 2-12 s of the bench clip (what live passes decode)",
    )
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.pipeline < 0 or args.threads < 1:
        p.error("--rounds and --threads must be >= 1, --pipeline >= 0")
    machine = BenchMachine.start()
    from ahmer.models.store.model_store import ModelStore
    from ahmer.preprocessing.asr import Transcriber

    with tempfile.TemporaryDirectory(prefix="ahmer-asr-") as tmp:
        items, clip = _media(Path(tmp), args.duration)
        transcriber = Transcriber(ModelStore().path("whisper_tiny_en"), cpu_threads=args.threads)
        transcriber.load()
        timed = _Timed(transcriber._whisper.model)
        transcriber._whisper.model = timed
        transcriber.transcribe(items[1][1])  # warm-up, untimed
        doc = {"threads": args.threads, "rounds": args.rounds}
        items += excerpts(items[0][1], args.excerpts)
        doc["window"] = args.window
        doc["asr"] = run_asr(transcriber, timed, items, args.rounds, args.window)
        if args.pipeline:
            from ahmer.models.analyzer import Analyzer, AnalyzerConfig

            analyzer = Analyzer(AnalyzerConfig(asr_threads=args.threads)).load()
            try:
                analyzer.preprocess(clip)  # warm-up, untimed
                doc["pipeline"] = run_pipeline(analyzer, clip, args.pipeline)
            finally:
                analyzer.close()
    doc["machine"] = machine.finish()
    doc["machine_run"] = machine.meter.usage.line()
    print_report(doc)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
