"""The corpus's one valid network, as CSV text: 30 members in two planted groups, small enough
that a train on it takes a few seconds, valid in every column a case then breaks."""

from __future__ import annotations

import random
from pathlib import Path

N_MEMBERS = 30


def member_id(i: int) -> str:
    return f"m{i:02d}"


def base_tables() -> dict[str, str]:
    """``{file name: CSV text}`` of the valid network (Unix line endings, no blank lines)."""
    rng = random.Random(7)
    members = ["member_id,gender,region,open_to_intros,plus_one,capacity"]
    for i in range(N_MEMBERS):
        gender = ("f", "m", "")[i % 3]
        members.append(f"{member_id(i)},{gender},r{i % 4},yes,{'true' if i % 5 == 0 else ''},")
    interests = ["member_id,interest,weight"]
    for i in range(N_MEMBERS):
        for topic in sorted({(i % 2) * 5 + rng.randrange(5) for _ in range(3)}):
            interests.append(f"{member_id(i)},topic:{topic},{1 + rng.randrange(3)}")
    edges: set[tuple[int, int]] = set()
    for i in range(N_MEMBERS):  # a ring inside each group, and a few chords
        j = (i + 2) % N_MEMBERS
        edges.add((min(i, j), max(i, j)))
    while len(edges) < 60:
        a, b = rng.sample(range(N_MEMBERS), 2)
        edges.add((min(a, b), max(a, b)))
    connections = ["member_a,member_b,created_at"]
    for n, (a, b) in enumerate(sorted(edges)):
        connections.append(f"{member_id(a)},{member_id(b)},{1_600_000_000 + 3600 * n}")
    return {
        "members.csv": "\n".join(members) + "\n",
        "interests.csv": "\n".join(interests) + "\n",
        "connections.csv": "\n".join(connections) + "\n",
    }


def write_base(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in base_tables().items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory
