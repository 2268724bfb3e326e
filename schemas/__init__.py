"""Message contracts shared by producers, workers and the monitor."""

from schemas.messages import (
    LABELS,
    DeadLetter,
    Label,
    ModelAssignment,
    ModelRole,
    Post,
    PostDeletion,
    SentimentResult,
    TrendBucket,
)

__all__ = ["LABELS", "DeadLetter", "Label", "ModelAssignment", "ModelRole", "Post", "PostDeletion", "SentimentResult",
           "TrendBucket", "json_schemas"]


def json_schemas() -> dict[str, dict]:
    """JSON Schema of each wire message, for producers written in other languages (the model control topic's
    `ModelAssignment` included, for deploy tooling that writes it)."""
    return {model.__name__: model.model_json_schema()
            for model in (Post, PostDeletion, SentimentResult, DeadLetter, ModelAssignment)}
