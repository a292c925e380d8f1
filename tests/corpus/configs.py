"""Malformed configs and command lines, as data.

``TRAIN_ERRORS``: ``(id, config file bytes or None, extra train arguments, where, fragment)``;
the message must contain ``where`` (the config file and line, or ``--set KEY``, or the option)
and ``fragment``; ``TMP`` stands for the test's directory. ``COMMAND_ERRORS``: ``(id, argv,
where, fragment)`` for the other commands (``MODEL`` is a saved model). Each exits 2 before a
model is loaded or an MLflow run started.
"""

from __future__ import annotations

CONFIG = "TMP/config.yaml"

TRAIN_ERRORS = [
    ("k-a-million", None, ["--set", "evaluation.k=1000000"], "--set evaluation.k", "1000"),
    ("k-zero", None, ["--set", "evaluation.k=0"], "--set evaluation.k", "greater than or equal"),
    ("k-text", None, ["--set", "evaluation.k=twenty"], "--set evaluation.k", "integer"),
    ("k-fraction", None, ["--set", "evaluation.k=2.5"], "--set evaluation.k", "integer"),
    (
        "pool-huge",
        None,
        ["--set", "candidates.pool_size=100000000"],
        "--set candidates.pool_size",
        "10000",
    ),
    (
        "source-huge",
        None,
        ["--set", "candidates.als.n=99999999"],
        "--set candidates.als.n",
        "10000",
    ),
    (
        "holdout-above-one",
        None,
        ["--set", "split.holdout_fraction=1.5"],
        "--set split.holdout_fraction",
        "less than 1",
    ),
    (
        "synthetic-billion",
        None,
        ["--set", "synthetic.members=1000000000"],
        "--set synthetic.members",
        "10000000",
    ),
    ("unknown-key", None, ["--set", "evaluation.kk=3"], "--set evaluation.kk", "unknown key"),
    ("section-set", None, ["--set", "evaluation=3"], "--set evaluation", "is a section"),
    ("no-equals", None, ["--set", "evaluation.k"], "--set 'evaluation.k'", "KEY=VALUE"),
    ("bad-yaml-value", None, ["--set", "evaluation.k=[1"], "--set evaluation.k", "not valid YAML"),
    (
        "binary-config",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        [],
        CONFIG + ", line 1",
        "not UTF-8",
    ),
    ("latin1-config", b"evaluation:\n  k: 10\n# caf\xe9\n", [], CONFIG + ", line 3", "not UTF-8"),
    (
        "yaml-syntax",
        b"evaluation:\n  k: 10\nrerank:\n  enabled: [true\n",
        [],
        CONFIG + ", line 5",
        "not valid YAML",
    ),
    ("yaml-tab-indent", b"evaluation:\n\tk: 10\n", [], CONFIG + ", line 2", "not valid YAML"),
    ("top-level-list", b"- evaluation\n- rerank\n", [], CONFIG, "mapping of sections"),
    ("unknown-section", b"evalution:\n  k: 10\n", [], CONFIG + ": evalution", "unknown key"),
    ("k-too-big-in-file", b"evaluation:\n  k: 5000\n", [], CONFIG + ": evaluation.k", "1000"),
    ("section-is-scalar", b"evaluation: 10\n", [], CONFIG + ": evaluation", "valid dictionary"),
    (
        "bound-not-sensitive",
        b"rerank:\n  bound_attribute: gender\n",
        [],
        CONFIG,
        "must be one of data.sensitive_attributes",
    ),
    ("config-missing", None, ["--config", "TMP/nope.yaml"], "TMP/nope.yaml", "cannot read config"),
    ("config-is-directory", None, ["--config", "TMP"], "cannot read config", "directory"),
    ("output-is-file", None, ["--output", "TMP/a-file"], "--output TMP/a-file", "is a file"),
    (
        "output-under-file",
        None,
        ["--output", "TMP/a-file/out"],
        "--output TMP/a-file/out",
        "is a file",
    ),
    ("data-missing", None, ["--data", "TMP/nowhere"], "TMP/nowhere", "does not exist"),
]

COMMAND_ERRORS = [
    (
        "rank-k-a-million",
        ["rank", "--model", "TMP/none", "--member", "m00", "--k", "1000000"],
        "--k",
        "at most 1000",
    ),
    (
        "rank-k-zero",
        ["rank", "--model", "MODEL", "--member", "m00", "--k", "0"],
        "--k",
        "at least 1",
    ),
    (
        "broker-k-huge",
        ["broker", "--model", "MODEL", "--member", "m00", "--k", "5000"],
        "--k",
        "at most 1000",
    ),
    (
        "rank-unknown-member",
        ["rank", "--model", "MODEL", "--member", "zz"],
        "unknown member 'zz'",
        "not in the model",
    ),
    (
        "rank-members-not-utf8",
        [
            "rank",
            "--model",
            "MODEL",
            "--members",
            "TMP/bad-members.txt",
            "--k",
            "5",
            "--output",
            "TMP/s.csv",
        ],
        "TMP/bad-members.txt, line 4",
        "not UTF-8",
    ),
    (
        "rank-members-unknown",
        [
            "rank",
            "--model",
            "MODEL",
            "--members",
            "TMP/members.txt",
            "--k",
            "5",
            "--output",
            "TMP/s.csv",
        ],
        "TMP/members.txt, line 4",
        "unknown member 'm99'",
    ),
    (
        "rank-model-missing",
        ["rank", "--model", "TMP/none", "--member", "m00"],
        "TMP/none",
        "no model directory",
    ),
    (
        "rank-model-is-data",
        ["rank", "--model", "TMP", "--member", "m00"],
        "TMP",
        "no manifest.json",
    ),
    (
        "generate-billion",
        ["generate", "--members", "1000000000", "--output", "TMP/g"],
        "--members",
        "10,000,000",
    ),
    ("serve-bad-cache-env", ["serve", "--model", "MODEL"], "PLUSONE_CACHE_SIZE", "whole number"),
    (
        "serve-bad-workers-env",
        ["serve", "--model", "MODEL", "--port", "1"],
        "PLUSONE_WORKERS",
        "at least 1",
    ),
]

#: Environment for a command case, keyed by "command:where".
COMMAND_ENV = {
    "serve:PLUSONE_CACHE_SIZE": {"PLUSONE_CACHE_SIZE": "lots"},
    "serve:PLUSONE_WORKERS": {"PLUSONE_WORKERS": "0"},
}
