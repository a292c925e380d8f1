"""Malformed input tables, as data: what a careless or hostile user plausibly hands ``recsys
train --data``, and what the error must say.

A case is ``(id, edit, file, line, fragment)``: the edit turns the valid network
(:mod:`tests.corpus.network`) into the bad one; the error must name ``file`` (and ``line``, as
an editor numbers it, where there is one; ``row`` for Parquet) and contain ``fragment``. Every
one must exit 2, leave no model and no MLflow run RUNNING (``test_corpus.py``).

``ACCEPTED`` lists what is normalised instead (README, "Train on your own tables"): each must
load to the same network as the valid one.
"""

from __future__ import annotations

import pandas as pd

from .edits import (
    bom,
    both,
    bytes_at_line,
    crlf,
    gzip_as,
    gzip_to,
    insert_line,
    remove,
    rename,
    replace_line,
    substitute,
    to_parquet,
    write_bytes,
    write_text,
)

MEM, INT, CON = "members.csv", "interests.csv", "connections.csv"
INTRO = "introductions.csv"
INTRODUCTIONS = "member_a,member_b,accepted,created_at,broker\nm00,m05,1,1600000000,m02\n"


def _introductions(*rows: str) -> str:
    return INTRODUCTIONS + "".join(row + "\n" for row in rows)


def _float_ids(values: list[float]):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame["member_id"] = values + [float(i) for i in range(len(values), len(frame))]
        return frame

    return change


ERRORS = [
    # -- the shape of the file: separators, headers, encodings
    ("semicolons", substitute(MEM, ",", ";"), MEM, 1, "separated by semicolons"),
    ("semicolons-connections", substitute(CON, ",", ";"), CON, 1, "separated by semicolons"),
    ("tabs", substitute(INT, ",", "\t"), INT, 1, "separated by tabs"),
    (
        "index-column",
        both(
            substitute(MEM, "member_id,", ",member_id,", 1),
            *[substitute(MEM, f"\nm{i:02d},", f"\n{i},m{i:02d},", 1) for i in range(30)],
        ),
        MEM,
        1,
        "column 1 has no name: it looks like a DataFrame index",
    ),
    (
        "pandas-unnamed-index",
        both(
            substitute(MEM, "member_id,", "Unnamed: 0,member_id,", 1),
            *[substitute(MEM, f"\nm{i:02d},", f"\n{i},m{i:02d},", 1) for i in range(30)],
        ),
        MEM,
        1,
        "column 1 has no name",
    ),
    ("empty-column-name", substitute(MEM, "gender,", ",", 1), MEM, 1, "column 2 has no name"),
    ("repeated-column", substitute(MEM, "region,", "gender,", 1), MEM, 1, "repeated column name"),
    ("no-member-id-column", substitute(MEM, "member_id,", "id,", 1), MEM, 1, "'member_id'"),
    ("no-interest-column", substitute(INT, "interest,", "topic,", 1), INT, 1, "'interest'"),
    ("no-member-b-column", substitute(CON, "member_b,", "member_2,", 1), CON, 1, "'member_b'"),
    ("bad-byte-line-5", bytes_at_line(MEM, 5, b"\xe9"), MEM, 5, "not UTF-8 text (byte 0xe9)"),
    ("bad-byte-header", bytes_at_line(CON, 1, b"\xff"), CON, 1, "not UTF-8 text (byte 0xff)"),
    ("bad-byte-deep", bytes_at_line(INT, 40, b"\xc3("), INT, 40, "not UTF-8"),
    (
        "binary-file",
        write_bytes(MEM, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20),
        MEM,
        1,
        "UTF-8",
    ),
    ("gzip-named-csv", gzip_as(CON), CON, 1, "not UTF-8"),
    ("empty-file", write_bytes(MEM, b""), MEM, 1, "file is empty"),
    ("only-blank-lines", write_text(MEM, "\n\n\n"), MEM, 1, "file is empty"),
    (
        "header-only-connections",
        write_text(CON, "member_a,member_b\n"),
        CON,
        None,
        "no connections",
    ),
    ("header-only-members", write_text(MEM, "member_id\n"), MEM, None, "no members"),
    ("too-many-fields", replace_line(CON, 6, "m00,m05,1600000000,x"), CON, 6, "got 4"),
    ("whitespace-only-line", replace_line(CON, 8, "   "), CON, 8, "got 1"),
    # -- ids
    ("unknown-member", replace_line(CON, 10, "m00,m99,1600000000"), CON, 10, "'m99' is not in"),
    ("unknown-interest-member", replace_line(INT, 3, "x1,topic:1,1"), INT, 3, "'x1' is not in"),
    ("duplicate-member", replace_line(MEM, 7, "m00,f,r0,yes,,"), MEM, 7, "first on line 2"),
    ("duplicate-after-strip", replace_line(MEM, 9, " m00 ,f,r0,yes,,"), MEM, 9, "'m00'"),
    ("id-differs-by-case", replace_line(CON, 4, "M00,m19,1600007200"), CON, 4, "'M00' is not in"),
    ("self-connection", replace_line(CON, 7, "m04,m04,1600000000"), CON, 7, "self-connection"),
    ("empty-member-id", replace_line(MEM, 4, ",f,r0,yes,,"), MEM, 4, "empty member_id"),
    ("blank-member-id", replace_line(MEM, 6, "   ,f,r0,yes,,"), MEM, 6, "empty member_id"),
    ("empty-member-a", replace_line(CON, 5, ",m19,1600007200"), CON, 5, "empty member_a"),
    ("empty-interest", replace_line(INT, 5, "m01,,1"), INT, 5, "empty interest"),
    # -- line numbers as an editor shows them
    (
        "blank-lines-before-error",
        both(insert_line(CON, 4, ""), insert_line(CON, 4, ""), replace_line(CON, 12, "m00,m99,1")),
        CON,
        12,
        "'m99' is not in",
    ),
    (
        "quoted-newline-before-error",
        both(
            replace_line(MEM, 3, 'm01,m,"r1\nstill r1",yes,,'), replace_line(MEM, 9, "m00,f,,,,")
        ),
        MEM,
        9,
        "duplicate member_id 'm00'",
    ),
    (
        "crlf-with-error",
        both(replace_line(CON, 9, "m02,m02,1600028800"), crlf(CON)),
        CON,
        9,
        "self-connection",
    ),
    # -- values
    (
        "weight-text",
        replace_line(INT, 4, "m00,topic:3,heavy"),
        INT,
        4,
        "non-numeric weight 'heavy'",
    ),
    ("weight-nan", replace_line(INT, 4, "m00,topic:3,NaN"), INT, 4, "non-numeric weight 'NaN'"),
    ("weight-na", replace_line(INT, 6, "m01,topic:7,NA"), INT, 6, "non-numeric weight 'NA'"),
    ("weight-zero", replace_line(INT, 4, "m00,topic:3,0"), INT, 4, "finite number > 0"),
    ("weight-negative", replace_line(INT, 4, "m00,topic:3,-1"), INT, 4, "finite number > 0"),
    ("weight-inf", replace_line(INT, 4, "m00,topic:3,inf"), INT, 4, "finite number > 0"),
    ("created-at-words", replace_line(CON, 3, "m00,m18,last tuesday"), CON, 3, "cannot parse"),
    (
        "created-at-inf",
        replace_line(CON, 3, "m00,m18,inf"),
        CON,
        3,
        "cannot parse created_at 'inf'",
    ),
    ("created-at-millis", replace_line(CON, 3, "m00,m18,1600000000000"), CON, 3, "milliseconds"),
    ("created-at-bool", replace_line(CON, 3, "m00,m18,true"), CON, 3, "cannot parse created_at"),
    ("capacity-negative", replace_line(MEM, 8, "m06,f,r2,yes,,-5"), MEM, 8, "at least 0"),
    ("capacity-fraction", replace_line(MEM, 8, "m06,f,r2,yes,,2.5"), MEM, 8, "whole number"),
    ("capacity-text", replace_line(MEM, 8, "m06,f,r2,yes,,lots"), MEM, 8, "must be a number"),
    ("open-to-intros-maybe", replace_line(MEM, 5, "m03,f,r3,maybe,,"), MEM, 5, "yes/no"),
    ("plus-one-sometimes", replace_line(MEM, 5, "m03,f,r3,yes,sometimes,"), MEM, 5, "yes/no"),
    # -- the directory
    ("two-members-tables", to_parquet(MEM, keep=True), None, None, "more than one members table"),
    ("no-connections-table", remove(CON), None, None, "no connections table"),
    (
        "misspelled-optional",
        write_text("introductons.csv", INTRODUCTIONS),
        None,
        None,
        "introductions.csv?",
    ),
    ("misspelled-required", rename(CON, "conections.csv"), None, None, "did you mean connections"),
    (
        "table-is-directory",
        both(remove(MEM), lambda root: (root / MEM).mkdir()),
        None,
        None,
        "no members table",
    ),
    (
        "parquet-not-parquet",
        both(remove(MEM), write_text("members.parquet", "member_id\nm00\n")),
        "members.parquet",
        None,
        "cannot read Parquet",
    ),
    (
        "parquet-inf-id",
        to_parquet(MEM, _float_ids([0.0, float("inf")])),
        "members.parquet",
        2,
        "member_id inf is not an id",
    ),
    (
        "parquet-fraction-id",
        to_parquet(MEM, _float_ids([0.0, 1.0, 2.5])),
        "members.parquet",
        3,
        "2.5 is not an id",
    ),
    (
        "parquet-no-member-b",
        to_parquet(CON, lambda f: f.drop(columns=["member_b"])),
        "connections.parquet",
        None,
        "'member_b'",
    ),
    # -- too small to train
    (
        "two-members",
        both(
            write_text(MEM, "member_id\nm00\nm01\n"),
            write_text(INT, "member_id,interest\nm00,a\n"),
            write_text(CON, "member_a,member_b\nm00,m01\n"),
        ),
        MEM,
        None,
        "2 members; training needs at least 10",
    ),
    (
        "five-connections",
        write_text(CON, "member_a,member_b\n" + "".join(f"m0{i},m0{i + 1}\n" for i in range(5))),
        CON,
        None,
        "5 distinct connections",
    ),
    # -- introductions
    (
        "accepted-empty",
        write_text(INTRO, _introductions("m01,m06,,1600000000,")),
        INTRO,
        3,
        "empty accepted",
    ),
    (
        "accepted-two",
        write_text(INTRO, _introductions("m01,m06,2,1600000000,")),
        INTRO,
        3,
        "must be 0 or 1, got '2'",
    ),
    (
        "broker-is-member-a",
        write_text(INTRO, _introductions("m01,m06,1,1600000000,m01")),
        INTRO,
        3,
        "is one of the two members",
    ),
    (
        "unknown-broker",
        write_text(INTRO, _introductions("m01,m06,1,1600000000,m77")),
        INTRO,
        3,
        "broker 'm77' is not in",
    ),
    (
        "introduced-to-themself",
        write_text(INTRO, _introductions("m01,m01,1,1600000000,")),
        INTRO,
        3,
        "to themself",
    ),
]

#: Options that break an otherwise valid directory: ``(id, extra train arguments, file, line,
#: fragment)``.
OPTION_ERRORS = [
    ("sensitive-not-a-column", ["--set", "data.sensitive_attributes=[age]"], MEM, 1, "'age'"),
]

#: Normalised, not refused: each loads to the valid network.
ACCEPTED = [
    ("crlf", both(crlf(MEM), crlf(INT), crlf(CON))),
    ("bom", both(bom(MEM), bom(CON))),
    ("upper-case-extension", both(rename(MEM, "members.CSV"), rename(CON, "connections.Csv"))),
    ("spaces-around-ids", substitute(CON, "\nm01,m03,", "\n m01 ,m03  ,", 1)),
    (
        "blank-lines",
        both(insert_line(CON, 3, ""), insert_line(MEM, 2, ""), insert_line(INT, 9, "")),
    ),
    ("empty-weight-is-one", substitute(INT, "\nm00,topic:2,1\n", "\nm00,topic:2,\n", 1)),
    ("parquet-index", to_parquet(MEM, lambda f: f.set_index("member_id"), index=True)),
    ("parquet-tables", both(to_parquet(MEM), to_parquet(INT), to_parquet(CON))),
    ("gzipped", gzip_to(MEM)),
]
