"""The Spark session of a job, and the checks that say clearly why Spark cannot start here
(pyspark not installed, no Java 17+)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyspark is an optional extra
    from pyspark.sql import SparkSession

__all__ = [
    "INSTALL_HINT",
    "MIN_JAVA",
    "SparkUnavailableError",
    "check_java",
    "require_pyspark",
    "spark_session",
]

logger = logging.getLogger(__name__)

#: Spark 4 runs on Java 17 or newer.
MIN_JAVA = 17
INSTALL_HINT = "pip install 'plusone[spark]'"


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here: pyspark is not installed, or no Java 17+ is found."""


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailableError` naming the install command when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            f"the Spark engine needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from None


def check_java(*, minimum: int = MIN_JAVA) -> str:
    """The ``java`` Spark will start (``$JAVA_HOME/bin/java``, else ``java`` on PATH) and its
    version, checked to be at least ``minimum``; :class:`SparkUnavailableError` otherwise."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    where = f"JAVA_HOME={home}" if home else "PATH"
    if not java or not Path(java).is_file():
        raise SparkUnavailableError(
            f"the Spark engine needs Java {minimum} or newer and found no java on {where}: "
            f"install a JDK (e.g. apt-get install openjdk-{minimum}-jre-headless) or set JAVA_HOME"
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise SparkUnavailableError(f"cannot run {java} -version: {err}") from None
    text = out.stderr + out.stdout
    found = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not found:
        raise SparkUnavailableError(
            f"cannot tell the Java version of {java}: {text.strip()[:200]!r}"
        )
    major = int(found.group(1))
    if major == 1:  # "1.8.0_392" is Java 8
        major = int(found.group(2) or 0)
    if major < minimum:
        raise SparkUnavailableError(
            f"the Spark engine needs Java {minimum} or newer; {java} is Java {major}: "
            f"install openjdk-{minimum} or point JAVA_HOME at a newer JDK"
        )
    return f"{java}: Java {major}"


def _under_spark_submit() -> bool:
    """``spark-submit`` started this process and its JVM: the master and Java are its business."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


@contextlib.contextmanager
def spark_session(
    master: str | None = None, *, app_name: str = "plusone", conf: dict[str, str] | None = None
) -> Iterator[SparkSession]:
    """A SparkSession for a job; stopped at the end only if this call started it.

    ``master`` ``None`` means the one ``spark-submit`` gave, else ``local[*]``. An active
    session (a test's, a notebook's) is used as it is. Executors get single-threaded BLAS and
    OpenMP: Spark already runs one task per core. With a ``local`` master the Python workers
    are this interpreter (``PYSPARK_PYTHON`` unless set); on a cluster they are whatever
    ``PYSPARK_PYTHON`` / ``spark.pyspark.python`` names, with ``plusone`` installed.
    """
    require_pyspark()
    # pyspark 4.x warns on every pandas conversion that pandas 3 is new to it; we convert via Arrow
    warnings.filterwarnings(
        "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
    )
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        if master is not None and active.sparkContext.master != master:
            logger.warning(
                "using the active Spark session (master %s), not %s",
                active.sparkContext.master,
                master,
            )
        yield active
        return
    builder = SparkSession.builder.appName(app_name)
    if not _under_spark_submit():
        logger.info("%s", check_java())
        master = master or "local[*]"
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    elif master is not None:
        builder = builder.master(master)
    settings = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "true" if sys.stderr.isatty() else "false",
        "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
        "spark.executorEnv.OMP_NUM_THREADS": "1",
        "spark.executorEnv.MKL_NUM_THREADS": "1",
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info(
        "Spark %s, master %s, %d default partitions",
        spark.version,
        spark.sparkContext.master,
        spark.sparkContext.defaultParallelism,
    )
    try:
        yield spark
    finally:
        spark.stop()
