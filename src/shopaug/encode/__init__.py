"""Text encoders that turn item texts and queries into normalised vectors, with an on-disk cache."""

from shopaug.encode.text_encoder import TextEncoder, default_model_path

__all__ = ["TextEncoder", "default_model_path"]
