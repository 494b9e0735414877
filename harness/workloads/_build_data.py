"""Regenerates the bundled workload files (deterministic): python -m harness.workloads._build_data

* ``data/sharegpt_mini.jsonl``: 300 conversations in ShareGPT's shape
  (``{"id", "conversations": [{"from": "human"|"gpt", "value"}]}``), one to four turns each,
  with replies from one sentence to several paragraphs, so prompt and output lengths vary the
  way chat traffic does. Every sentence is written here from templates and common knowledge;
  no third-party text is used.
* ``data/trace_mini.jsonl``: 120 requests in Mooncake's trace layout (``timestamp`` in ms,
  ``input_length``, ``output_length``, ``hash_ids`` of 512-token blocks), bursty arrivals over
  about 60 s, half of them sharing leading blocks, for trace-replay tests and demos.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "data"

TOPICS = {
    "water": ("Water boils at 100 degrees Celsius at sea level", "it freezes at 0 degrees"),
    "light": (
        "Light travels at about 300,000 kilometres per second",
        "it reaches Earth from the Sun in about eight minutes",
    ),
    "bread": (
        "Bread rises because yeast produces carbon dioxide",
        "the gas is trapped by the gluten network",
    ),
    "tides": ("Tides are caused mainly by the Moon's gravity", "the Sun adds a smaller effect"),
    "rainbows": (
        "A rainbow appears when sunlight is refracted inside raindrops",
        "each colour bends by a slightly different angle",
    ),
    "sleep": ("Adults usually need seven to nine hours of sleep", "regular sleep times help the body clock"),
    "batteries": (
        "A battery stores energy as chemical potential",
        "it releases it as a current when the circuit closes",
    ),
    "volcanoes": (
        "Volcanoes form where molten rock reaches the surface",
        "many lie along the edges of tectonic plates",
    ),
    "compilers": (
        "A compiler translates source code into machine code",
        "it checks the program before it runs",
    ),
    "caches": (
        "A cache keeps recently used data close to where it is needed",
        "a hit avoids a slow trip to the main store",
    ),
    "vaccines": (
        "A vaccine trains the immune system with a harmless signal",
        "the body then recognises the real threat faster",
    ),
    "bridges": (
        "Suspension bridges hang their deck from cables",
        "the towers carry the load down to the ground",
    ),
    "bees": (
        "Bees communicate the direction of flowers with a dance",
        "the angle of the dance points relative to the Sun",
    ),
    "interest": ("Compound interest adds interest to the principal", "growth speeds up over time"),
    "seasons": ("Seasons come from the tilt of Earth's axis", "not from its distance to the Sun"),
    "sorting": ("Merge sort splits a list, sorts the halves and merges them", "it takes n log n comparisons"),
    "clouds": ("Clouds are tiny water droplets or ice crystals", "they form when moist air cools"),
    "magnets": ("Magnets have a north and a south pole", "opposite poles attract each other"),
    "coffee": (
        "Coffee contains caffeine, which blocks adenosine receptors",
        "that is why it makes people feel alert",
    ),
    "gardening": ("Tomatoes need full sun and regular watering", "mulch keeps the soil moist"),
}
ASKS = (
    "Can you explain {t} to me?",
    "Why does this happen with {t}?",
    "I have a question about {t}. What is the main idea?",
    "Give me a short summary about {t}.",
    "My friend asked me about {t} and I did not know what to say. How would you explain it simply?",
    "Write a detailed explanation of {t} for a curious student, with an example.",
)
FOLLOW_UPS = (
    "Can you say more about that?",
    "Why is that?",
    "Could you give an example?",
    "How would you explain it to a child?",
    "What is a common misunderstanding here?",
    "Can you make that shorter?",
)
FILLERS = (
    "This is easy to check with a simple experiment at home.",
    "Scientists measured this carefully over many years.",
    "It is one of those facts that surprises many people the first time.",
    "The same idea shows up in many other places once you look for it.",
    "A good way to remember it is to picture it step by step.",
    "Teachers often use a drawing to make this clearer.",
    "There are exceptions, but the rule holds in everyday life.",
    "Engineers rely on this when they design everyday things.",
)


def _reply(rng: random.Random, topic: str, depth: int) -> str:
    fact, detail = TOPICS[topic]
    n = rng.choice((1, 1, 2, 3, 5, 8, 12)) + depth
    sentences = [f"{fact}, and {detail}."] + [rng.choice(FILLERS) for _ in range(n)]
    if n > 6:  # a long answer in paragraphs
        mid = len(sentences) // 2
        return " ".join(sentences[:mid]) + "\n\n" + " ".join(sentences[mid:])
    return " ".join(sentences)


def conversations(count: int = 300, seed: int = 7) -> list[dict[str, object]]:
    rng = random.Random(seed)
    names = sorted(TOPICS)
    out: list[dict[str, object]] = []
    for i in range(count):
        topic = rng.choice(names)
        turns = rng.choice((1, 1, 2, 3, 4))
        conv: list[dict[str, str]] = []
        for k in range(turns):
            ask = rng.choice(ASKS).format(t=topic) if k == 0 else rng.choice(FOLLOW_UPS)
            conv.append({"from": "human", "value": ask})
            conv.append({"from": "gpt", "value": _reply(rng, topic, k)})
        out.append({"id": f"mini-{i:04d}", "conversations": conv})
    return out


def trace(count: int = 120, seed: int = 11) -> list[dict[str, object]]:
    rng = random.Random(seed)
    t_ms = 0.0
    rows = []
    shared = [list(range(100 * g, 100 * g + 3)) for g in range(4)]  # four popular 3-block prefixes
    for i in range(count):
        t_ms += (
            rng.expovariate(1 / 150.0) if rng.random() < 0.8 else rng.uniform(1500, 4000)
        )  # bursts, then gaps
        n_in = rng.choice((96, 160, 256, 384, 600, 900, 1400))
        n_out = rng.choice((16, 32, 64, 128, 200))
        blocks = -(-n_in // 512)
        if i % 2 == 0:
            head = shared[rng.randrange(len(shared))][:blocks]
            hashes = head + [10_000 + i * 10 + k for k in range(blocks - len(head))]
        else:
            hashes = [10_000 + i * 10 + k for k in range(blocks)]
        rows.append(
            {"timestamp": int(t_ms), "input_length": n_in, "output_length": n_out, "hash_ids": hashes}
        )
    return rows


def main() -> None:
    HERE.mkdir(exist_ok=True)
    with (HERE / "sharegpt_mini.jsonl").open("w") as fh:
        for row in conversations():
            fh.write(json.dumps(row) + "\n")
    with (HERE / "trace_mini.jsonl").open("w") as fh:
        for row in trace():
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
