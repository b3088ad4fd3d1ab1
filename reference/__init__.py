"""The reference implementation of the chat protocol: codec, server, clients, targets."""

__version__ = "0.1.0"
