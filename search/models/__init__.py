from search.models.embeddings import Embedding, EmbeddingFailure, Feature

__all__ = ["Embedding", "EmbeddingFailure", "Feature"]
