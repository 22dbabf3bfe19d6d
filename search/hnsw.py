"""The HNSW index's parameters: the model's index (search/models/embeddings.py) and the
benchmarks' builds (bench/synthetic.py) read them here.

12 neighbours per node rather than pgvector's 16 build the index faster at nearly the same
recall (the README's cost against N); a halfvec(768) node fills a page's quarter either way, so
the index is as large. A migration rebuilds the index when they change.
"""

HNSW_M = 12
HNSW_EF_CONSTRUCTION = 64
