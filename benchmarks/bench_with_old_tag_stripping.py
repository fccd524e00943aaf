"""``shopaug bench ...`` with the ingest's tag stripping as it was before issue 20.

The old cleaning removed anything between ``<`` and ``>`` (``<[^<>]{0,200}>``), which also ate
text such as ``for < 1.50mm ... for > 3.20mm`` in 7 Scientific descriptions. Running a benchmark
with the old rule and the current code shows how much of a result's change came from that
text alone. Use a ``--work-dir`` of its own, so the old-rule ingest is not mixed up with the
current one:

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_with_old_tag_stripping.py bench rec \\
        --data ../shared/data/amazon-scientific --protocol W --seeds 3 --work-dir /tmp/oldtags \\
        --model first-order=markov -p first-order.order=1 -p first-order.smoothing=10 \\
        --model content --out runs/issue25/W-content-oldtags.json
"""

import re
import sys

import shopaug.data.cleaning as cleaning

cleaning._TAG = re.compile(r"<[^<>]{0,200}>")

from shopaug.cli import app  # noqa: E402  (after the rule is replaced)

if __name__ == "__main__":
    sys.argv = ["shopaug", *sys.argv[1:]]
    app()
