"""Command line of the bench: sizes, the order of the sections, and the output."""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy

import actortoken_store
from actortoken_store.bench import audit, bulk, imports, latency
from actortoken_store.bench.database import (
    bench_database,
    empty_tables,
    libpq_url,
    server_version,
)
from actortoken_store.bench.report import Results, Row
from actortoken_store.bench.synthetic import NOW_MS, SyntheticTokens
from actortoken_store.bench.timing import median, percentile

__all__ = ["Sizes", "main"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sizes:
    """How much work each section does."""

    bulk_rows: int = 50_000
    repeats: int = 3
    samples: int = 2_000
    import_rows: int = 100_000
    import_rows_large: int = 1_000_000
    audit_repeats: int = 20


QUICK = Sizes(
    bulk_rows=2_000,
    repeats=1,
    samples=100,
    import_rows=2_000,
    import_rows_large=5_000,
    audit_repeats=2,
)
"""Sizes of ``--quick``: a smoke run of every section in seconds, numbers not meaningful."""


def build_parser() -> argparse.ArgumentParser:
    defaults = Sizes()
    parser = argparse.ArgumentParser(
        prog="python -m actortoken_store.bench",
        description=(
            "Benchmark the store against raw psycopg on the same table. Creates and drops "
            "its own database on the server."
        ),
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=(
            "URL of any database on the server to use; the user must be allowed to create "
            "databases. Default: $ACTORTOKEN_STORE_DATABASE_URL, else the embedded server"
        ),
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the results here")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run (ignores size options)"
    )
    parser.add_argument(
        "--bulk-rows",
        type=int,
        default=defaults.bulk_rows,
        metavar="N",
        help="tokens per bulk load (default %(default)s)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=defaults.repeats,
        metavar="N",
        help="bulk loads per method (default %(default)s)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=defaults.samples,
        metavar="N",
        help="timed calls per point method (default %(default)s)",
    )
    parser.add_argument(
        "--import-rows",
        type=int,
        default=defaults.import_rows,
        metavar="N",
        help="lines of the smaller import file (default %(default)s)",
    )
    parser.add_argument(
        "--import-rows-large",
        type=int,
        default=defaults.import_rows_large,
        metavar="N",
        help="lines of the larger import file (default %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress at INFO level")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.quick:
        sizes = QUICK
    else:
        sizes = Sizes(
            bulk_rows=args.bulk_rows,
            repeats=args.repeats,
            samples=args.samples,
            import_rows=args.import_rows,
            import_rows_large=args.import_rows_large,
        )
    needed = 2 * (sizes.samples + latency.WARMUP)
    if sizes.bulk_rows < needed:
        print(
            f"bench: --bulk-rows must be at least {needed} for {sizes.samples} samples, "
            "because every transition needs its own pending token",
            file=sys.stderr,
        )
        return 2

    results = Results()
    with bench_database(args.database_url) as url:
        results.versions = _versions(url)
        population = run_bulk(url, sizes, results)
        run_latency(url, population, sizes, results)
        with tempfile.TemporaryDirectory(prefix="actortoken-bench-") as folder:
            large = run_imports(url, Path(folder), sizes, results)
        run_audit(url, large, sizes, results)

    results.print_table(sys.stdout)
    if args.json is not None:
        results.write_json(args.json)
    return 0


def run_bulk(url: sqlalchemy.URL, sizes: Sizes, results: Results) -> SyntheticTokens:
    """Time each bulk loader ``repeats`` times into an empty table, in rotating order.

    The table keeps the last load, every token pending, for the later sections.
    """
    population = SyntheticTokens(
        count=sizes.bulk_rows, users=max(1, sizes.bulk_rows // 50), actors=50
    )
    tokens = population.tokens()
    values = bulk.copy_values(tokens)
    names = list(bulk.LOADERS)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(sizes.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            empty_tables(libpq_url(url))
            elapsed_ns = bulk.LOADERS[name](url, tokens, values)
            rates[name].append(len(tokens) / (elapsed_ns / 1e9))
            logger.info("bulk %s: %.0f rows/s", name, rates[name][-1])
    copy = median(rates["copy"])
    save_many = median(rates["save_many"])
    orm = median(rates["orm_add_all"])
    results.set("copy_rows_per_s", copy)
    results.set("save_many_rows_per_s", save_many)
    results.set("orm_add_all_rows_per_s", orm)
    results.row_counts["bulk"] = len(tokens)
    results.row_counts["bulk_repeats"] = sizes.repeats
    results.rows.append(
        Row(
            "save_many rows/s (median)",
            f"{save_many:,.0f}",
            f"COPY {copy:,.0f}",
            f"{save_many / copy:.2f}x",
            ">= 0.70x",
        )
    )
    results.rows.append(
        Row(
            "ORM add_all rows/s (median)",
            f"{orm:,.0f}",
            f"save_many {save_many:,.0f}",
            f"{save_many / orm:.2f}x",
            "save_many >= 3x",
        )
    )
    return population


def run_latency(
    url: sqlalchemy.URL, population: SyntheticTokens, sizes: Sizes, results: Results
) -> None:
    """Time get, list_for_user and accept against their raw references.

    The table contains ``population`` from the bulk section, every token pending.
    """
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE actor_tokens")
    ids = [record["id"] for record in population.records()]
    reads = latency.measure_reads(url, ids, population.user_ids(), sizes.samples)
    transitions = latency.measure_transitions(url, ids, sizes.samples, NOW_MS)
    samples = {**reads.samples, **transitions.samples}
    results.row_counts["reads"] = population.count
    results.row_counts["samples"] = sizes.samples
    for name, label in (
        ("get", "get"),
        ("list_for_user", f"list_for_user (page of {latency.LIST_PAGE})"),
        ("transition", "transition (accept + commit)"),
    ):
        store_p50 = percentile(samples[name], 0.5) / 1000
        raw_p50 = percentile(samples[f"raw_{name}"], 0.5) / 1000
        store_p99 = percentile(samples[name], 0.99) / 1000
        raw_p99 = percentile(samples[f"raw_{name}"], 0.99) / 1000
        results.set(f"{name}_p50_us", store_p50)
        results.set(f"raw_{name}_p50_us", raw_p50)
        results.rows.append(
            Row(
                f"{label} p50 / p99 µs",
                f"{store_p50:,.0f} / {store_p99:,.0f}",
                f"{raw_p50:,.0f} / {raw_p99:,.0f}",
                f"{store_p50 / raw_p50:.2f}x",
                "p50 <= 1.50x",
            )
        )


def run_imports(
    url: sqlalchemy.URL, folder: Path, sizes: Sizes, results: Results
) -> SyntheticTokens:
    """Import a small and a large JSON Lines file, each into an empty table.

    The small import gives the rate; the two peak memories show whether memory grows
    with the input. The large import's tokens stay for the audit section.
    """
    runs = {}
    populations = {}
    for label, count, seed in (
        ("small", sizes.import_rows, 11),
        ("large", sizes.import_rows_large, 12),
    ):
        population = SyntheticTokens(
            count=count, users=max(1, count // 50), actors=50, seed=seed, settled=True
        )
        populations[label] = population
        path = folder / f"{label}.jsonl"
        imports.write_jsonl(population, path)
        empty_tables(libpq_url(url))
        runs[label] = imports.run_import(url, path)
        path.unlink()
        logger.info("import %s: %s", label, runs[label])

    small, large = runs["small"], runs["large"]
    copy = results.values["copy_rows_per_s"]
    results.set("import_rows_per_s", small.rows_per_s)
    results.set("import_peak_rss_mb_100k", small.peak_rss_mb)
    results.set("import_peak_rss_mb_1m", large.peak_rss_mb)
    results.row_counts["import_small"] = small.records
    results.row_counts["import_large"] = large.records
    results.rows.append(
        Row(
            f"import rows/s ({small.records:,} lines)",
            f"{small.rows_per_s:,.0f}",
            "" if copy is None else f"COPY {copy:,.0f}",
            "" if copy is None else f"{small.rows_per_s / copy:.2f}x",
            ">= 0.60x",
        )
    )
    results.rows.append(
        Row(
            f"import peak RSS MB ({small.records:,} / {large.records:,} lines)",
            f"{small.peak_rss_mb:,.1f} / {large.peak_rss_mb:,.1f}",
            "",
            f"+{large.peak_rss_mb - small.peak_rss_mb:,.1f} MB",
            "<= +50 MB",
        )
    )
    return populations["large"]


def run_audit(
    url: sqlalchemy.URL, population: SyntheticTokens, sizes: Sizes, results: Results
) -> None:
    """Time the audit queries on the large import's tokens and events."""
    timings = audit.measure_audit(url, population, sizes.audit_repeats)
    if timings is None:
        results.rows.append(Row("audit queries", "not measured: no audit queries here"))
        return
    results.set("actor_summary_30d_ms", timings[audit.SUMMARY])
    results.row_counts["audit_tokens"] = population.count
    for name, milliseconds in timings.items():
        if name == audit.SUMMARY:
            label, target = "actor summary, one actor, 30 days, ms", "< 50 ms"
        else:
            label, target = f"audit {name} first page ms", "< 10 ms"
        results.rows.append(Row(label, f"{milliseconds:,.1f}", target=target))


def _versions(url: sqlalchemy.URL) -> dict[str, str]:
    return {
        "actortoken_store": actortoken_store.__version__,
        "postgresql": server_version(libpq_url(url)),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "psycopg": psycopg.__version__,
        "libpq": str(psycopg.pq.version()),
    }
