"""The reference implementation of the chat protocol: codec, server, clients, targets.

The version is the package metadata's (``reference.version.package_version()``).
"""
