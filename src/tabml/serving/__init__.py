"""The scoring service's parts: request contract, inference, prediction log, metrics."""
