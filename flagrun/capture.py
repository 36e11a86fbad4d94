"""Automatic Keras capture inside the training process (being written now)."""


def install() -> None:
    """Arrange for Keras metrics to be captured; placeholder until capture lands."""
