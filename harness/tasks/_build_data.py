"""Regenerates the bundled offline task data (deterministic): python -m harness.tasks._build_data

The items are written by us from common knowledge and simple arithmetic, so they carry no
licence of a third-party data set. Distractors are drawn with a fixed seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "the United Kingdom": "London",
    "Ireland": "Dublin",
    "Belgium": "Brussels",
    "the Netherlands": "Amsterdam",
    "Austria": "Vienna",
    "Switzerland": "Bern",
    "Poland": "Warsaw",
    "Czechia": "Prague",
    "Hungary": "Budapest",
    "Greece": "Athens",
    "Sweden": "Stockholm",
    "Norway": "Oslo",
    "Denmark": "Copenhagen",
    "Finland": "Helsinki",
    "Iceland": "Reykjavik",
    "Russia": "Moscow",
    "Ukraine": "Kyiv",
    "Romania": "Bucharest",
    "Bulgaria": "Sofia",
    "Serbia": "Belgrade",
    "Croatia": "Zagreb",
    "Turkey": "Ankara",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Nigeria": "Abuja",
    "Ethiopia": "Addis Ababa",
    "Morocco": "Rabat",
    "Ghana": "Accra",
    "Senegal": "Dakar",
    "South Korea": "Seoul",
    "Japan": "Tokyo",
    "China": "Beijing",
    "India": "New Delhi",
    "Pakistan": "Islamabad",
    "Bangladesh": "Dhaka",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "Indonesia": "Jakarta",
    "the Philippines": "Manila",
    "Malaysia": "Kuala Lumpur",
    "Iran": "Tehran",
    "Iraq": "Baghdad",
    "Saudi Arabia": "Riyadh",
    "Israel": "Jerusalem",
    "Afghanistan": "Kabul",
    "Nepal": "Kathmandu",
    "Canada": "Ottawa",
    "the United States": "Washington",
    "Mexico": "Mexico City",
    "Cuba": "Havana",
    "Argentina": "Buenos Aires",
    "Chile": "Santiago",
    "Peru": "Lima",
    "Colombia": "Bogota",
    "Venezuela": "Caracas",
    "Australia": "Canberra",
    "New Zealand": "Wellington",
    "Lebanon": "Beirut",
    "Syria": "Damascus",
    "Jordan": "Amman",
    "Qatar": "Doha",
    "Cambodia": "Phnom Penh",
    "Mongolia": "Ulaanbaatar",
    "Uruguay": "Montevideo",
    "Ecuador": "Quito",
    "Estonia": "Tallinn",
    "Latvia": "Riga",
    "Lithuania": "Vilnius",
    "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana",
    "Tunisia": "Tunis",
    "Algeria": "Algiers",
    "Sudan": "Khartoum",
    "Uganda": "Kampala",
    "Zimbabwe": "Harare",
    "Cyprus": "Nicosia",
}

OPPOSITES = [
    ("hot", "cold"),
    ("big", "small"),
    ("up", "down"),
    ("day", "night"),
    ("fast", "slow"),
    ("happy", "sad"),
    ("open", "closed"),
    ("light", "dark"),
    ("old", "young"),
    ("tall", "short"),
    ("rich", "poor"),
    ("early", "late"),
    ("full", "empty"),
    ("strong", "weak"),
    ("hard", "soft"),
    ("wet", "dry"),
    ("high", "low"),
    ("good", "bad"),
    ("loud", "quiet"),
    ("clean", "dirty"),
    ("thick", "thin"),
    ("heavy", "light"),
    ("push", "pull"),
    ("win", "lose"),
    ("buy", "sell"),
    ("true", "false"),
    ("inside", "outside"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("first", "last"),
    ("love", "hate"),
    ("friend", "enemy"),
    ("begin", "end"),
    ("above", "below"),
    ("before", "after"),
    ("cheap", "expensive"),
    ("deep", "shallow"),
    ("near", "far"),
    ("sweet", "sour"),
    ("alive", "dead"),
    ("question", "answer"),
    ("remember", "forget"),
    ("arrive", "leave"),
    ("accept", "reject"),
    ("increase", "decrease"),
    ("maximum", "minimum"),
    ("positive", "negative"),
    ("entrance", "exit"),
    ("summer", "winter"),
    ("black", "white"),
    ("wide", "narrow"),
    ("safe", "dangerous"),
    ("easy", "difficult"),
    ("always", "never"),
    ("more", "less"),
    ("asleep", "awake"),
    ("laugh", "cry"),
    ("sunrise", "sunset"),
    ("top", "bottom"),
    ("front", "back"),
    ("male", "female"),
    ("guilty", "innocent"),
    ("polite", "rude"),
    ("brave", "cowardly"),
    ("public", "private"),
    ("ancient", "modern"),
    ("import", "export"),
    ("victory", "defeat"),
    ("borrow", "lend"),
    ("smooth", "rough"),
    ("awake", "asleep"),
    ("sharp", "dull"),
    ("wild", "tame"),
    ("generous", "selfish"),
    ("tight", "loose"),
]


def _mc(rng: random.Random, answer: str, pool: list[str], k: int = 4) -> tuple[list[str], int]:
    distractors = rng.sample([p for p in pool if p != answer], k - 1)
    choices = [*distractors, answer]
    rng.shuffle(choices)
    return choices, choices.index(answer)


def build() -> dict[str, int]:
    rng = random.Random(20261126)
    counts = {}
    cities = sorted(set(CAPITALS.values()))
    rows = []
    for country, city in CAPITALS.items():
        choices, gold = _mc(rng, city, cities)
        rows.append({"country": country, "choices": choices, "gold": gold})
    counts["capitals"] = _write("harness_capitals/capitals.jsonl", rows)

    words = sorted({b for _, b in OPPOSITES} | {a for a, _ in OPPOSITES})
    rows = []
    for word, opposite in OPPOSITES:
        pool = [w for w in words if w != word]
        choices, gold = _mc(rng, opposite, pool)
        rows.append({"word": word, "choices": choices, "gold": gold})
    counts["opposites"] = _write("harness_opposites/opposites.jsonl", rows)

    rows = []
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    rng.shuffle(pairs)
    for a, b in pairs[:60]:
        rows.append({"question": f"What is {a} plus {b}?", "answer": str(a + b)})
    subs = [(a, b) for a in range(2, 10) for b in range(1, a)]
    rng.shuffle(subs)
    for a, b in subs[:40]:
        rows.append({"question": f"What is {a} minus {b}?", "answer": str(a - b)})
    rng.shuffle(rows)
    counts["arithmetic"] = _write("harness_arithmetic/arithmetic.jsonl", rows)
    return counts


def _write(rel: str, rows: list[dict]) -> int:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return len(rows)


if __name__ == "__main__":
    print(build())
