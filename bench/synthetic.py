"""A synthetic collection shaped like SigLIP image embeddings, written straight into the tables.

Real image embeddings are unit vectors with a low intrinsic dimension, grouped by subject and
style, and all share a common direction (SigLIP's embeddings sit in a narrow cone). So: a few
hundred cluster centres in a small latent space, points scattered around them, projected to 768
dimensions, plus a shared mean direction and a little isotropic noise, then normalised.
Everything is a pure function of (n, seed): the exact-search matrix is regenerated in memory
instead of being read back from the database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

DIMENSIONS = 768
LATENT = 32
CLUSTERS = 300
# Relative sizes of the parts of each vector (before normalisation). Chosen so that nearest
# neighbours have cosine ~0.85-0.95 and random pairs ~0.3-0.5, as with real SigLIP image vectors.
MEAN_WEIGHT = 0.8
SPREAD = 0.55
NOISE = 0.25  # norm of the isotropic part

CLASSIFICATIONS = (
    ("painting", 0.40),
    ("print", 0.25),
    ("drawing", 0.15),
    ("photograph", 0.10),
    ("sculpture", 0.05),
    ("textile", 0.05),
)
SOURCES = (("nga", 0.6), ("aic", 0.25), ("local", 0.15))
_FIRST = [
    "Jan",
    "Pieter",
    "Anna",
    "Maria",
    "Claude",
    "Edgar",
    "Mary",
    "Rosa",
    "Giovanni",
    "Francesco",
    "Camille",
    "Berthe",
    "Winslow",
    "Thomas",
    "John",
    "Elisabeth",
    "Rembrandt",
    "Vincent",
    "Paul",
    "Henri",
    "Gustave",
    "Edouard",
    "Jacopo",
    "Sofonisba",
    "Artemisia",
    "Frans",
    "Albrecht",
    "Hans",
    "Joseph",
    "Katsushika",
    "Utagawa",
    "Georgia",
    "Edward",
    "Alice",
    "Louise",
    "Judith",
    "Clara",
]
_LAST = [
    "Vermeer",
    "Bruegel",
    "Monet",
    "Degas",
    "Cassatt",
    "Bonheur",
    "Bellini",
    "Guardi",
    "Pissarro",
    "Morisot",
    "Homer",
    "Cole",
    "Constable",
    "Vigee",
    "Turner",
    "Gogh",
    "Cezanne",
    "Matisse",
    "Courbet",
    "Manet",
    "Tintoretto",
    "Anguissola",
    "Gentileschi",
    "Hals",
    "Durer",
    "Holbein",
    "Wright",
    "Hokusai",
    "Hiroshige",
    "OKeeffe",
    "Hopper",
    "Neel",
    "Bourgeois",
    "Leyster",
    "Peeters",
]
_SUBJECTS = [
    "portrait",
    "landscape",
    "still",
    "life",
    "seascape",
    "river",
    "harbor",
    "village",
    "church",
    "garden",
    "flowers",
    "fruit",
    "madonna",
    "saint",
    "woman",
    "man",
    "girl",
    "boy",
    "child",
    "horse",
    "dog",
    "cat",
    "bird",
    "ship",
    "boat",
    "bridge",
    "mountain",
    "forest",
    "street",
    "market",
    "dancer",
    "bathers",
    "musician",
    "reader",
    "sleeper",
    "storm",
    "winter",
    "snow",
    "moonlight",
    "sunset",
]
_QUALIFIERS = [
    "with a red hat",
    "in blue",
    "at dusk",
    "in winter",
    "by the sea",
    "with flowers",
    "near a mill",
    "at night",
    "in the rain",
    "with a dog",
    "on a terrace",
    "in an interior",
    "with a book",
    "under trees",
    "in spring",
]
_MEDIA = (
    "oil on canvas",
    "oil on panel",
    "tempera on panel",
    "watercolor on paper",
    "etching",
    "lithograph",
    "graphite on paper",
    "gelatin silver print",
    "bronze",
    "wool and silk",
)


@dataclass(frozen=True)
class Spec:
    n: int
    seed: int = 0

    def key(self) -> str:
        return f"n={self.n} seed={self.seed} d={DIMENSIONS} latent={LATENT} clusters={CLUSTERS} v=1"


@dataclass(frozen=True)
class Space:
    """The generator's fixed parts: cluster centres, projection and mean direction."""

    centres: np.ndarray  # (CLUSTERS, LATENT)
    projection: np.ndarray  # (LATENT, DIMENSIONS)
    mean: np.ndarray  # (DIMENSIONS,)


def space(seed: int) -> Space:
    rng = np.random.default_rng([seed, 1])
    centres = rng.standard_normal((CLUSTERS, LATENT)).astype(np.float32)
    projection = rng.standard_normal((LATENT, DIMENSIONS)).astype(np.float32) / np.sqrt(LATENT)
    mean = rng.standard_normal(DIMENSIONS).astype(np.float32)
    return Space(centres=centres, projection=projection, mean=mean / np.linalg.norm(mean))


def _sample(sp: Space, rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    # Zipf-like cluster sizes: some subjects (portraits, landscapes) are far more common.
    weights = 1.0 / np.arange(1, CLUSTERS + 1) ** 0.7
    clusters = rng.choice(CLUSTERS, size=count, p=weights / weights.sum())
    latent = sp.centres[clusters] + SPREAD * rng.standard_normal((count, LATENT)).astype(np.float32)
    x = latent @ sp.projection
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noise = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    x += MEAN_WEIGHT * sp.mean + NOISE / np.sqrt(DIMENSIONS) * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), clusters


def vectors(spec: Spec) -> np.ndarray:
    """The collection's (n, 768) float32 unit vectors, row i for artwork id i + 1."""
    sp = space(spec.seed)
    rng = np.random.default_rng([spec.seed, 2])
    out = np.empty((spec.n, DIMENSIONS), dtype=np.float32)
    for start in range(0, spec.n, 20_000):
        stop = min(spec.n, start + 20_000)
        out[start:stop], _ = _sample(sp, rng, stop - start)
    return out


def fresh_queries(spec: Spec, count: int, *, gap: float = 0.0) -> np.ndarray:
    """New points from the collection's distribution (not in it). `gap` > 0 shifts them along a
    fixed direction, like the text-image "modality gap" of real CLIP/SigLIP text queries."""
    sp = space(spec.seed)
    rng = np.random.default_rng([spec.seed, 3, int(gap * 1000)])
    q, _ = _sample(sp, rng, count)
    if gap:
        direction = np.random.default_rng([spec.seed, 4]).standard_normal(DIMENSIONS)
        direction = (direction / np.linalg.norm(direction)).astype(np.float32)
        q = q + gap * direction
        q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.astype(np.float32)


def metadata(spec: Spec) -> dict[str, np.ndarray]:
    """Per-artwork metadata columns (arrays of length n)."""
    rng = np.random.default_rng([spec.seed, 5])
    n = spec.n
    artists = np.array([f"{f} {last}" for f in _FIRST for last in _LAST], dtype=object)
    artist = artists[rng.integers(0, len(artists), n)]
    names = [name for name, _ in CLASSIFICATIONS]
    p = [share for _, share in CLASSIFICATIONS]
    classification = np.array(names, dtype=object)[rng.choice(len(names), size=n, p=p)]
    snames = [name for name, _ in SOURCES]
    sp = [share for _, share in SOURCES]
    source = np.array(snames, dtype=object)[rng.choice(len(snames), size=n, p=sp)]
    begin = rng.integers(1300, 2000, n)
    end = begin + rng.integers(0, 6, n)
    subj = np.array(_SUBJECTS, dtype=object)
    qual = np.array(_QUALIFIERS, dtype=object)
    title = [
        f"{a.capitalize()} {b}" if c else f"{a.capitalize()} and {d}"
        for a, b, c, d in zip(
            subj[rng.integers(0, len(subj), n)],
            qual[rng.integers(0, len(qual), n)],
            rng.random(n) < 0.7,
            subj[rng.integers(0, len(subj), n)],
            strict=True,
        )
    ]
    medium = np.array(_MEDIA, dtype=object)[rng.integers(0, len(_MEDIA), n)]
    return {
        "title": np.array(title, dtype=object),
        "artist": artist,
        "classification": classification,
        "source": source,
        "begin_year": begin,
        "end_year": end,
        "medium": medium,
    }


# Loading -----------------------------------------------------------------------------------------
META_TABLE = "bench_dataset"


def _ensure_meta(cursor: Any) -> None:
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (id int PRIMARY KEY, key text)")
    # The load and build timings stay beside the data, so a later run that reuses the data (or
    # the index) still reports what they cost.
    cursor.execute(
        f"ALTER TABLE {META_TABLE} ADD COLUMN IF NOT EXISTS figures jsonb NOT NULL DEFAULT '{{}}'"
    )


def loaded_key(cursor: Any) -> str | None:
    _ensure_meta(cursor)
    cursor.execute(f"SELECT key FROM {META_TABLE} WHERE id = 1")
    row = cursor.fetchone()
    return row[0] if row else None


def recorded(connection: Any) -> dict[str, Any]:
    """The figures recorded with the loaded data (load timings, the last index build)."""
    with connection.cursor() as cur:
        _ensure_meta(cur)
        cur.execute(f"SELECT figures FROM {META_TABLE} WHERE id = 1")
        row = cur.fetchone()
    if row is None:
        return {}
    return row[0] if isinstance(row[0], dict) else json.loads(row[0])


def record(connection: Any, **figures: Any) -> None:
    """Merge `figures` into those recorded with the loaded data."""
    with connection.cursor() as cur:
        _ensure_meta(cur)
        cur.execute(
            f"UPDATE {META_TABLE} SET figures = figures || %s::jsonb WHERE id = 1",
            [json.dumps(figures)],
        )


def load(connection: Any, *, spec: Spec, feature_name: str, model_name: str) -> dict[str, float]:
    """Replace the collection with `spec`'s artworks and embeddings (COPY, binary vectors), with
    one active feature named `feature_name`. Returns timings. Drops the HNSW index (rebuilt by
    the caller, which times it)."""
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    from gallery.models import default_collection_id

    timings: dict[str, float] = {}
    collection_id = default_collection_id()  # every artwork belongs to a collection
    raw = connection.connection  # the psycopg connection under Django's
    register_vector(raw)
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    vecs = vectors(spec)
    meta = metadata(spec)
    timings["generate_s"] = time.perf_counter() - t0
    with raw.cursor() as cur:
        cur.execute("SET statement_timeout = 0")  # COPY of 120,000 rows outlasts the app's 30 s
        _ensure_meta(cur)
        cur.execute(f"DELETE FROM {META_TABLE}")
        cur.execute("DROP INDEX IF EXISTS embedding_vector_hnsw")
        cur.execute("DROP INDEX IF EXISTS bench_embedding_halfvec_hnsw")
        cur.execute("TRUNCATE gallery_artwork, search_embedding, search_feature CASCADE")
        cur.execute(
            "INSERT INTO search_feature (name, model_name, is_active, created_at, activated_at)"
            " VALUES (%s, %s, true, %s, %s) RETURNING id",
            [feature_name, model_name, now, now],
        )
        feature_id = cur.fetchone()[0]
        t0 = time.perf_counter()
        columns = (
            "id, source, external_id, title, artist, display_date, begin_year, end_year, medium, "
            "dimensions, classification, credit_line, description, alt_text, source_url, "
            "license, image, thumbnail, width, height, image_sha256, created_at, updated_at, "
            "collection_id"
        )
        with cur.copy(f"COPY gallery_artwork ({columns}) FROM STDIN") as copy:
            for i in range(spec.n):
                b, e = int(meta["begin_year"][i]), int(meta["end_year"][i])
                copy.write_row(
                    (
                        i + 1,
                        meta["source"][i],
                        f"bench-{i + 1}",
                        meta["title"][i],
                        meta["artist"][i],
                        str(b) if b == e else f"{b}-{e}",
                        b,
                        e,
                        meta["medium"][i],
                        "",
                        meta["classification"][i],
                        "",
                        f"A {meta['classification'][i]} by {meta['artist'][i]}.",
                        "",
                        "",
                        "",
                        "",
                        "",
                        None,
                        None,
                        "",
                        now,
                        now,
                        collection_id,
                    )
                )
        cur.execute("SELECT setval(pg_get_serial_sequence('gallery_artwork', 'id'), %s)", [spec.n])
        timings["copy_artworks_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with cur.copy(
            "COPY search_embedding (artwork_id, feature_id, vector, image_sha256, created_at) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            # Embedding.vector is halfvec(768) (search/migrations/0004).
            copy.set_types(["bigint", "bigint", "halfvec", "varchar", "timestamptz"])
            for i in range(spec.n):
                copy.write_row((i + 1, feature_id, HalfVector(vecs[i]), "", now))
        timings["copy_embeddings_s"] = time.perf_counter() - t0
        cur.execute(f"INSERT INTO {META_TABLE} (id, key) VALUES (1, %s)", [spec.key()])
    raw.commit() if not raw.autocommit else None
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("VACUUM ANALYZE gallery_artwork")
        cur.execute("VACUUM ANALYZE search_embedding")
        cur.execute("RESET statement_timeout")
    timings["vacuum_analyze_s"] = time.perf_counter() - t0
    timings["total_s"] = sum(timings.values())
    record(connection, load={k: round(v, 2) for k, v in timings.items()})
    return timings


def build_hnsw(
    connection: Any,
    *,
    m: int = 16,
    ef_construction: int = 64,
    workers: int | None = None,
    maintenance_work_mem: str = "2GB",
    name: str = "embedding_vector_hnsw",
    halfvec: bool = True,
) -> float:
    """Drop and rebuild an HNSW cosine index on search_embedding; returns the build seconds.
    The default name and parameters are the model's own index (search/models/embeddings.py).
    `workers`: parallel maintenance workers, by default one fewer than the cores, since the
    leader builds too (one process per core; more only take turns on the cores)."""
    if workers is None:
        workers = max(1, (os.cpu_count() or 2) - 1)
    raw = connection.connection
    with raw.cursor() as cur:
        cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute("SET statement_timeout = 0")  # the app's 30 s limit is for queries
        cur.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
        cur.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
        # The column is halfvec(768) since search/migrations/0004: `halfvec` is the model's own
        # index; `halfvec=False` indexes the float32 cast, the old storage's index, to compare.
        target = (
            "(vector halfvec_cosine_ops)"
            if halfvec
            else f"((vector::vector({DIMENSIONS})) vector_cosine_ops)"
        )
        t0 = time.perf_counter()
        cur.execute(
            f"CREATE INDEX {name} ON search_embedding USING hnsw {target} "
            f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
        seconds = time.perf_counter() - t0
        cur.execute("RESET maintenance_work_mem")
        cur.execute("RESET max_parallel_maintenance_workers")
        cur.execute("RESET statement_timeout")
    return seconds


def sizes(connection: Any) -> dict[str, float]:
    """Table, index and total sizes in MB."""
    mb = 1024 * 1024
    with connection.cursor() as cur:
        cur.execute(
            "SELECT pg_table_size('search_embedding'), "
            "coalesce((SELECT pg_relation_size('embedding_vector_hnsw') "
            "WHERE to_regclass('embedding_vector_hnsw') IS NOT NULL), 0), "
            "pg_total_relation_size('search_embedding'), "
            "pg_total_relation_size('gallery_artwork')"
        )
        table, hnsw, total, artworks = cur.fetchone()
    return {
        "embedding_table_mb": table / mb,
        "hnsw_index_mb": hnsw / mb,
        "embedding_total_mb": total / mb,
        "artwork_total_mb": artworks / mb,
    }
