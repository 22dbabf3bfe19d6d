from search.models.embeddings import Embedding, EmbeddingFailure, Feature
from search.models.retrievers import Retriever

__all__ = ["Embedding", "EmbeddingFailure", "Feature", "Retriever"]
