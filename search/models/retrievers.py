from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from search.config import ConfigError, RetrieverConfig, parse_config


def check_config(data: Any) -> RetrieverConfig:
    """`parse_config`, and every feature URI resolved against the collections (ConfigError
    naming the search, e.g. "parameters.searches.0.feature_uri: no collection has ...")."""
    from search.feature_uris import UnknownFeatureURI, check_feature_uri

    config = parse_config(data)
    problems = []
    for number, search in enumerate(config.parameters.searches):
        if search.feature_uri is None:
            continue
        try:
            check_feature_uri(search.feature_uri)
        except (UnknownFeatureURI, ValueError) as exc:
            problems.append(f"parameters.searches.{number}.feature_uri: {exc}")
    if problems:
        raise ConfigError("; ".join(problems))
    return config


class Retriever(models.Model):
    """A named, stored retriever configuration (schema: search/config.py).

    The configuration is validated on `clean()` (the admin form) and again on `save()`, so an
    invalid one never reaches the database through the ORM; that includes its feature URIs,
    each of which must name a feature of some collection.
    """

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    config = models.JSONField(help_text="A feature_search stage; see search/config.py.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        try:
            check_config(self.config)
        except ConfigError as exc:
            raise ValidationError({"config": str(exc)}) from exc

    @property
    def parsed(self) -> RetrieverConfig:
        return parse_config(self.config)
